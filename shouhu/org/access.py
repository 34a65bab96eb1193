"""The one place that decides what a user may do and see.

* Capabilities: what a role may do at all (route level). Every page declares the capabilities
  it needs with `@allow(...)` (or `@public`); `AccessMiddleware` refuses any view that declares
  nothing, and the API refuses to register an operation without a declaration.
* Scope: which records a user may see (object level): the user's organisation's regions (a
  prefix match on the 12-digit code) for the civil-affairs line, plus the children explicitly
  shared with the organisation (`registry.ChildShare`: a referral, a task, a report it filed).
  `shouhu.registry.selectors.children_visible_to` applies it; out of scope is a 404.
* Clearances: which sensitivity labels a role may read (e.g. a parent in prison).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _

from shouhu.org.models import PREFIX_LENGTH, RegionLevel, Role, User


class Cap(enum.StrEnum):
    HOME = "home"
    LEDGER_VIEW = "ledger.view"
    LEDGER_EDIT = "ledger.edit"
    UNMASK = "child.unmask"
    AUDIT_VIEW = "audit.view"
    STATS_VIEW = "stats.view"
    ORG_ADMIN = "org.admin"
    ROLE_ADMIN = "role.admin"
    API_TOKEN = "api.token"
    POLICY_CONFIRM = "policy.confirm"  # confirm or reject the engine's proposals, set manual categories
    POLICY_SETTINGS = "policy.settings"  # the district's versioned policy parameters
    TASKS = "tasks"  # the organisation's inbox
    NOTIFICATIONS = "notifications"  # one's own notifications (every role)
    VISITS = "visits"  # home visits: due lists, visit records, risk levels (in the role's regions)
    VISIT_REVIEW = "visits.review"  # a town's visit coverage, directors' workload, returning a record
    REPORT_FILE = "reports.file"  # file a mandatory report; follow one's organisation's reports
    REPORTS_HANDLE = "reports.handle"  # the police: accept, dispatch, measures, notify the town
    REPORTS_TOWN = "reports.town"  # the town: reports in its area (never who reported), assessment
    REPORTS_ALL = "reports.all"  # the district office: every report, the reporter, placements
    REPORTS_SUPERVISE = "reports.supervise"  # the procuratorate: timelines and response times only
    CASES = "cases"  # case management (个案): open, assess, plan, refer, close, in the role's regions
    CASES_APPROVE = "cases.approve"  # the district office: approve closing a red/orange case


class Label(enum.StrEnum):
    """Sensitivity labels a record or a fact can carry."""

    JUDICIAL = "judicial"  # a parent imprisoned, in compulsory rehab, deprived of guardianship, deported
    ABUSE = "abuse"  # suspected or confirmed harm
    HEALTH = "health"  # diagnoses


LABEL_NAMES = {Label.JUDICIAL: _("司法信息"), Label.ABUSE: _("侵害信息"), Label.HEALTH: _("健康信息")}

ROLE_CAPS: dict[str, frozenset[Cap]] = {
    Role.SYSTEM_ADMIN: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.ORG_ADMIN}),
    Role.SECURITY_ADMIN: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.ROLE_ADMIN}),
    Role.AUDIT_ADMIN: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.AUDIT_VIEW}),
    Role.DISTRICT_OFFICER: frozenset(
        {
            Cap.HOME,
            Cap.NOTIFICATIONS,
            Cap.LEDGER_VIEW,
            Cap.LEDGER_EDIT,
            Cap.UNMASK,
            Cap.AUDIT_VIEW,
            Cap.STATS_VIEW,
            Cap.API_TOKEN,
            Cap.POLICY_CONFIRM,
            Cap.POLICY_SETTINGS,
            Cap.TASKS,
            Cap.VISITS,
            Cap.VISIT_REVIEW,
            Cap.REPORT_FILE,
            Cap.REPORTS_ALL,
            Cap.CASES,
            Cap.CASES_APPROVE,
        }
    ),
    Role.TOWN_SUPERVISOR: frozenset(
        {
            Cap.HOME,
            Cap.NOTIFICATIONS,
            Cap.LEDGER_VIEW,
            Cap.LEDGER_EDIT,
            Cap.UNMASK,
            Cap.STATS_VIEW,
            Cap.POLICY_CONFIRM,
            Cap.TASKS,
            Cap.VISITS,
            Cap.VISIT_REVIEW,
            Cap.REPORT_FILE,
            Cap.REPORTS_TOWN,
            Cap.CASES,
        }
    ),
    Role.VILLAGE_DIRECTOR: frozenset(
        {
            Cap.HOME,
            Cap.NOTIFICATIONS,
            Cap.LEDGER_VIEW,
            Cap.LEDGER_EDIT,
            Cap.UNMASK,
            Cap.TASKS,
            Cap.VISITS,
            Cap.REPORT_FILE,
        }
    ),
    # Member units, reporters and providers see only what is shared with their organisation.
    Role.UNIT_STAFF: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.LEDGER_VIEW, Cap.TASKS, Cap.REPORT_FILE}),
    Role.REPORTER: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.REPORT_FILE}),
    # A contracted social-work organisation also works the cases it is assigned (shouhu.cases).
    Role.PROVIDER: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.LEDGER_VIEW, Cap.TASKS, Cap.REPORT_FILE, Cap.CASES}),
    Role.LEADER: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.STATS_VIEW}),
    # The police station (and the district police) answer reports; the procuratorate supervises.
    Role.POLICE: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.TASKS, Cap.REPORTS_HANDLE}),
    Role.PROCURATOR: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.REPORTS_SUPERVISE}),
}

# Roles that must log in with a second factor when SHOUHU_MFA_REQUIRED is on (shouhu.org.mfa).
PRIVILEGED_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN, Role.DISTRICT_OFFICER})

# Roles whose ledger scope is their organisation's regions (the civil-affairs line).
REGION_SCOPED_ROLES = frozenset({Role.DISTRICT_OFFICER, Role.TOWN_SUPERVISOR, Role.VILLAGE_DIRECTOR})

ROLE_CLEARANCES: dict[str, frozenset[Label]] = {
    Role.DISTRICT_OFFICER: frozenset(Label),
    Role.TOWN_SUPERVISOR: frozenset(Label),
    Role.VILLAGE_DIRECTOR: frozenset({Label.JUDICIAL, Label.HEALTH}),
    Role.UNIT_STAFF: frozenset({Label.HEALTH}),
}


@dataclass(frozen=True)
class Scope:
    caps: frozenset[Cap]
    prefixes: tuple[str, ...]  # region code prefixes the user's ledger covers
    organization_id: int | None
    clearances: frozenset[Label]

    def can(self, cap: Cap) -> bool:
        return cap in self.caps

    def covers_region(self, code: str) -> bool:
        return any(code.startswith(p) for p in self.prefixes)

    def cleared(self, label: str | None) -> bool:
        return not label or label in self.clearances


EMPTY_SCOPE = Scope(caps=frozenset(), prefixes=(), organization_id=None, clearances=frozenset())


def _minimal_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Drop prefixes already covered by a shorter one, so the SQL has as few ORs as possible."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes), key=len):
        if not any(prefix.startswith(k) for k in kept):
            kept.append(prefix)
    return tuple(sorted(kept))


def scope_for(user: User | AnonymousUser | None) -> Scope:
    """The user's capabilities, region prefixes and clearances; cached on the user object."""
    if user is None or not user.is_authenticated or not user.is_active:
        return EMPTY_SCOPE
    cached = getattr(user, "_scope_cache", None)
    if cached is not None:
        return cached
    assert isinstance(user, User)
    roles = user.role_set
    caps: set[Cap] = set()
    clearances: set[Label] = set()
    for role in roles:
        caps |= ROLE_CAPS.get(role, frozenset())
        clearances |= ROLE_CLEARANCES.get(role, frozenset())
    prefixes: tuple[str, ...] = ()
    if roles & REGION_SCOPED_ROLES and user.organization_id:
        regions = user.organization.regions.all() if user.organization else []
        prefixes = _minimal_prefixes(r.code[: PREFIX_LENGTH[RegionLevel(r.level)]] for r in regions)
    scope = Scope(
        caps=frozenset(caps), prefixes=prefixes, organization_id=user.organization_id, clearances=frozenset(clearances)
    )
    user._scope_cache = scope
    return scope


@dataclass(frozen=True)
class AccessRule:
    public: bool
    caps: frozenset[Cap]  # the user needs at least one of these

    def permits(self, scope: Scope) -> bool:
        return self.public or bool(self.caps & scope.caps)


F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "shouhu_access"


def allow(*caps: Cap) -> Callable[[F], F]:
    """Declare the capabilities a view or API operation needs (any one of them)."""
    if not caps:
        raise ValueError("allow() needs at least one capability; use @public for open views")

    def decorate(view: F) -> F:
        setattr(view, ACCESS_ATTR, AccessRule(public=False, caps=frozenset(caps)))
        return view

    return decorate


def public(view: F) -> F:
    setattr(view, ACCESS_ATTR, AccessRule(public=True, caps=frozenset()))
    return view


def rule_of(view: Any) -> AccessRule | None:
    for candidate in (view, getattr(view, "view_class", None), getattr(view, "cls", None)):
        rule = getattr(candidate, ACCESS_ATTR, None) if candidate is not None else None
        if rule is not None:
            return rule
    return None
