"""The authorization matrix: every URL pattern and every API operation, with every demo account,
against an in-scope child (a 湖塘镇 village) and an out-of-scope child (a 牛塘镇 village).

The expected outcome of each request comes from the tables below, written independently of
the code they check:

* `ROLE_CAPS` mirrors `shouhu.org.access.ROLE_CAPS` (a change of rights must be made in both);
* `ACCOUNTS` says which of the two children each demo account sees and may edit;
* `ROUTES`, `ADMIN_MODELS` and `API_OPERATIONS` say what each URL pattern and API operation needs.

A URL pattern or API operation that the tables do not list fails `test_every_route_is_declared`,
so a new route cannot slip in undeclared; a view that declares no access rule is refused by
`AccessMiddleware`, and an API operation without one cannot even be registered.
"""

from __future__ import annotations

import re
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, include, path
from django.utils import timezone

from shouhu.api.api import api
from shouhu.api.auth import GuardedRouter
from shouhu.org import access
from shouhu.org.access import Cap, allow, rule_of
from shouhu.org.models import Duty, NeedRoute, NeedType, Organization, Region, Role, User
from shouhu.registry.demo import DEMO_ACCOUNTS

# ----- who may do what ---------------------------------------------------------------------------

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
    Role.UNIT_STAFF: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.LEDGER_VIEW, Cap.TASKS, Cap.REPORT_FILE}),
    Role.REPORTER: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.REPORT_FILE}),
    Role.PROVIDER: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.LEDGER_VIEW, Cap.TASKS, Cap.REPORT_FILE, Cap.CASES}),
    Role.LEADER: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.STATS_VIEW}),
    Role.POLICE: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.TASKS, Cap.REPORTS_HANDLE}),
    Role.PROCURATOR: frozenset({Cap.HOME, Cap.NOTIFICATIONS, Cap.REPORTS_SUPERVISE}),
}

IN, OUT = "in", "out"  # the child in a 湖塘镇 village, the child in a 牛塘镇 village


@dataclass(frozen=True)
class Account:
    sees: frozenset[str] = frozenset()  # which of the two children are in the account's scope
    edits: frozenset[str] = frozenset()  # ... and in its own regions (shares are read-only)
    owns_task: bool = False  # the matrix's task is in the inbox of the account's organisation


BOTH = frozenset({IN, OUT})
ACCOUNTS: dict[str, Account] = {
    "admin": Account(),
    "security": Account(),
    "auditor": Account(),
    "district": Account(sees=BOTH, edits=BOTH),
    "leader": Account(),
    "town_hutang": Account(sees=frozenset({IN}), edits=frozenset({IN})),
    "town_niutang": Account(sees=frozenset({OUT}), edits=frozenset({OUT})),
    "village_hutang": Account(sees=frozenset({IN}), edits=frozenset({IN}), owns_task=True),
    "village_niutang": Account(sees=frozenset({OUT}), edits=frozenset({OUT})),
    "police": Account(),
    "police_hutang": Account(sees=frozenset({IN})),  # the 湖塘 child is shared with its station (ChildShare)
    "education": Account(),
    "school_hutang": Account(),
    "procurator": Account(),
    "social_worker": Account(),  # sees a child only while assigned to its case (shouhu.cases)
}
ANONYMOUS = "anonymous"


def caps_of(username: str) -> frozenset[Cap]:
    if username == ANONYMOUS:
        return frozenset()
    roles = next(roles for name, _, _, roles in DEMO_ACCOUNTS if name == username)
    return frozenset().union(*(ROLE_CAPS[r] for r in roles))


# ----- outcomes ----------------------------------------------------------------------------------

OK = "ok"  # 2xx, a redirect elsewhere than the login page, or 400/409/422 for the minimal input sent
FORBIDDEN = "403"
NOT_FOUND = "404"
LOGIN = "login"  # a redirect to the login page (pages) or 401 (API)


def outcome(response: HttpResponse, *, authenticated: bool) -> str:
    status = response.status_code
    if status >= 500 or status == 405:
        return f"HTTP {status}"
    if status == 401:
        return LOGIN
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return NOT_FOUND
    if status in (301, 302, 303, 307):
        target = urlsplit(response["Location"]).path
        if target == "/login/":
            return LOGIN
        if target == "/admin/login/":
            # The admin site sends a refused user to its login view, which answers 403 to anyone
            # logged in (the route "admin/login/" below) and sends the anonymous to /login/.
            return FORBIDDEN if authenticated else LOGIN
    return OK


# ----- routes ------------------------------------------------------------------------------------

Expect = Callable[[str, str | None], str]  # (username, child "in"/"out"/None) -> outcome


@dataclass(frozen=True)
class Route:
    caps: frozenset[Cap] = frozenset()  # any one of them
    public: bool = False
    login: bool = False  # any logged-in user
    child: str = ""  # "view": the child must be in scope; "edit": in the actor's own regions
    task: bool = False  # the task must belong to the actor's organisation
    method: str = "get"
    data: dict[str, Any] = field(default_factory=dict)
    url: str = ""  # a concrete URL for regex routes
    admin: bool = False  # behind the admin site (ORG_ADMIN or ROLE_ADMIN) before `caps`
    admin_result: str = OK  # what a permitted administrator gets
    logs_out: bool = False
    expect: Expect | None = None  # a hand-written rule for the odd route
    api: bool = False  # an API operation route: checked by the API operation walk

    def expected(self, username: str, child: str | None) -> str:
        if self.expect is not None:
            return self.expect(username, child)
        if self.public:
            return OK
        if username == ANONYMOUS:
            return LOGIN
        caps = caps_of(username)
        if self.admin and not caps & {Cap.ORG_ADMIN, Cap.ROLE_ADMIN}:
            return FORBIDDEN
        if self.login:
            return OK
        if not caps & self.caps:
            return FORBIDDEN
        if self.admin:
            return self.admin_result
        account = ACCOUNTS[username]
        if self.child == "view" and child not in account.sees:
            return NOT_FOUND
        if self.child == "edit" and child not in account.edits:
            return NOT_FOUND
        if self.task and not account.owns_task:
            return NOT_FOUND
        return OK


def _caps(*caps: Cap) -> frozenset[Cap]:
    return frozenset(caps)


VIEW, EDIT, UNMASK = _caps(Cap.LEDGER_VIEW), _caps(Cap.LEDGER_EDIT), _caps(Cap.UNMASK)
CONFIRM = _caps(Cap.POLICY_CONFIRM)
ADMINS = _caps(Cap.ORG_ADMIN, Cap.ROLE_ADMIN)
NOBODY: frozenset[Cap] = frozenset()


def _no_import_expect(username: str, child: str | None) -> str:
    if username == ANONYMOUS:
        return LOGIN
    return NOT_FOUND if Cap.LEDGER_EDIT in caps_of(username) else FORBIDDEN


def _no_object_expect(cap: Cap) -> Expect:
    """A route about an object that does not exist: 404 for whoever holds `cap`, 403 for the rest."""

    def expect(username: str, child: str | None) -> str:
        if username == ANONYMOUS:
            return LOGIN
        return NOT_FOUND if cap in caps_of(username) else FORBIDDEN

    return expect


def _no_report_expect(*caps: Cap) -> Expect:
    """A report route about a report that does not exist: 404 for whoever holds one of `caps`."""

    def expect(username: str, child: str | None) -> str:
        if username == ANONYMOUS:
            return LOGIN
        return NOT_FOUND if caps_of(username) & set(caps) else FORBIDDEN

    return expect


REPORT_READERS = (Cap.REPORT_FILE, Cap.REPORTS_HANDLE, Cap.REPORTS_TOWN, Cap.REPORTS_ALL, Cap.REPORTS_SUPERVISE)


def _report_route(tail: str, *caps: Cap, method: str = "post") -> Route:
    return Route(caps=_caps(*caps), url=f"/reports/999999999/{tail}", method=method, expect=_no_report_expect(*caps))


def _no_notification_expect(username: str, child: str | None) -> str:
    # Everyone has notifications; a notification that is not one's own (here: none) is a 404.
    return LOGIN if username == ANONYMOUS else NOT_FOUND


def _no_scan_expect(username: str, child: str | None) -> str:
    if username == ANONYMOUS:
        return LOGIN
    return NOT_FOUND if Cap.UNMASK in caps_of(username) else FORBIDDEN


def _logout_expect(username: str, child: str | None) -> str:
    return LOGIN  # everyone, logged in or not, ends on the login page


def _admin_login_expect(username: str, child: str | None) -> str:
    if username == ANONYMOUS:
        return LOGIN
    return OK if caps_of(username) & ADMINS else FORBIDDEN


def _admin_logout_expect(username: str, child: str | None) -> str:
    # Administrators are logged out (and land on the login page); for anybody else the admin
    # site answers with a harmless redirect to its index and logs nobody out.
    return LOGIN if caps_of(username) & ADMINS else OK


ROUTES: dict[str, Route] = {
    "": Route(caps=_caps(Cap.HOME)),
    "login/": Route(public=True),
    "logout/": Route(public=True, method="post", logs_out=True, expect=_logout_expect),
    # The second factor: public views that send the anonymous to the login page themselves.
    "login/verify/": Route(login=True),
    "login/mfa-setup/": Route(login=True),
    "i18n/setlang/": Route(public=True, method="post", data={"language": "zh-hans", "next": "/"}),
    "stats/": Route(caps=_caps(Cap.STATS_VIEW)),
    "audit/": Route(caps=_caps(Cap.AUDIT_VIEW)),
    # The ledger. POST-only views get a minimal body: invalid input (400) counts as allowed.
    "children/": Route(caps=VIEW),
    "children/search/": Route(caps=VIEW, method="post", data={"q": "zs"}),
    "children/new/": Route(caps=EDIT),
    "children/<uuid:pk>/": Route(caps=VIEW, child="view"),
    "children/<uuid:pk>/edit/": Route(caps=EDIT, child="edit"),
    "children/<uuid:pk>/household/": Route(caps=EDIT, child="edit"),
    "children/<uuid:pk>/family/new/": Route(caps=EDIT, child="edit"),
    "children/<uuid:pk>/family/<int:member_id>/": Route(caps=EDIT, child="edit"),
    "children/<uuid:pk>/family/<int:member_id>/delete/": Route(caps=EDIT, child="edit", method="post"),
    "children/<uuid:pk>/entrustment/new/": Route(caps=EDIT, child="edit"),
    "children/<uuid:pk>/entrustment/<int:entrustment_id>/": Route(caps=EDIT, child="edit"),
    "children/<uuid:pk>/entrustment/<int:entrustment_id>/renew/": Route(caps=EDIT, child="edit"),
    # The matrix's carers have no scan: whoever may unmask gets 404 (missing and out of scope alike);
    # downloads in and out of scope are tested in shouhu/registry/tests/test_entrustment.py.
    "children/<uuid:pk>/entrustment/<int:entrustment_id>/scan/": Route(
        caps=UNMASK, child="edit", expect=_no_scan_expect
    ),
    "children/<uuid:pk>/exit/": Route(caps=EDIT, child="edit", method="post"),
    "children/<uuid:pk>/reenter/": Route(caps=EDIT, child="edit", method="post"),
    "children/<uuid:pk>/unmask/": Route(caps=UNMASK, child="edit", method="post", data={"field": "nothing"}),
    # Categories and entitlements (policy): confirming needs the child in the actor's own regions;
    # recording an entitlement needs that too, or the entitlement's responsible unit (none here).
    "children/<uuid:pk>/policy/": Route(caps=VIEW, child="view"),
    "children/<uuid:pk>/policy/proposals/<int:proposal_id>/": Route(caps=CONFIRM, child="edit", method="post"),
    "children/<uuid:pk>/policy/manual/": Route(caps=CONFIRM, child="edit", method="post"),
    "children/<uuid:pk>/policy/entitlements/<int:entitlement_id>/": Route(
        caps=_caps(Cap.LEDGER_VIEW, Cap.TASKS), child="edit", method="post"
    ),
    "proposals/": Route(caps=CONFIRM),
    "policy/parameters/": Route(caps=_caps(Cap.POLICY_SETTINGS)),
    # The unit's inbox; a task is closed only by its owner organisation.
    "tasks/": Route(caps=_caps(Cap.TASKS)),
    # The referrals the organisation asked for; the late tasks of the units it supervises (no child data).
    "tasks/requested/": Route(caps=_caps(Cap.TASKS)),
    "tasks/supervision/": Route(caps=_caps(Cap.TASKS)),
    # The joint-meeting view and its workbook: numbers for the district (a town supervisor: their town).
    "tasks/meeting/": Route(caps=_caps(Cap.STATS_VIEW)),
    "tasks/meeting.xlsx": Route(caps=_caps(Cap.STATS_VIEW)),
    "tasks/<int:task_id>/close/": Route(caps=_caps(Cap.TASKS), task=True, method="post"),
    # A task's page: its owner and the organisation that asked (the matrix's task has none) read it;
    # only the owner answers (the minimal input sent is empty: a message and a redirect).
    "tasks/<int:task_id>/": Route(caps=_caps(Cap.TASKS), task=True),
    "tasks/<int:task_id>/answers/": Route(caps=_caps(Cap.TASKS), task=True),
    "tasks/<int:task_id>/accept/": Route(caps=_caps(Cap.TASKS), task=True, method="post"),
    "tasks/<int:task_id>/decline/": Route(caps=_caps(Cap.TASKS), task=True, method="post"),
    "tasks/<int:task_id>/progress/": Route(caps=_caps(Cap.TASKS), task=True, method="post"),
    "tasks/<int:task_id>/complete/": Route(caps=_caps(Cap.TASKS), task=True, method="post"),
    # Spreadsheets out (intake): the ledger list for whoever sees a ledger (scoped inside, so an
    # account with nothing in scope gets an empty workbook); the statistics tables, numbers only.
    "intake/export/ledger.xlsx": Route(caps=VIEW),
    "intake/export/stats.xlsx": Route(caps=_caps(Cap.STATS_VIEW)),
    # A long list written by the worker: its requester's only (the matrix's accounts asked for none: 404).
    "intake/exports/<int:export_id>/": Route(
        caps=VIEW, url="/intake/exports/999999999/", expect=_no_object_expect(Cap.LEDGER_VIEW)
    ),
    "intake/exports/<int:export_id>/download/": Route(
        caps=VIEW, url="/intake/exports/999999999/download/", expect=_no_object_expect(Cap.LEDGER_VIEW)
    ),
    "intake/exports/<int:export_id>/retry/": Route(
        caps=VIEW, url="/intake/exports/999999999/retry/", method="post", expect=_no_object_expect(Cap.LEDGER_VIEW)
    ),
    # The survey template: whoever registers children, for a region in scope.
    "intake/template.xlsx": Route(caps=_caps(Cap.LEDGER_EDIT)),
    # Survey import pages: whoever registers children. A previewed file is its uploader's only and an
    # import its organisation's only: the matrix's accounts own none, so a permitted account gets 404.
    "intake/import/": Route(caps=EDIT),
    "intake/import/<int:import_id>/errors.xlsx": Route(
        caps=EDIT, url="/intake/import/999999999/errors.xlsx", expect=_no_import_expect
    ),
    "intake/import/<int:import_id>/confirm/": Route(
        caps=EDIT, url="/intake/import/999999999/confirm/", method="post", expect=_no_import_expect
    ),
    "intake/imports/": Route(caps=EDIT),
    # Files uploaded together: the uploader's only (the matrix's accounts uploaded none: 404).
    "intake/batches/<uuid:batch>/": Route(
        caps=EDIT, url="/intake/batches/00000000-0000-4000-8000-000000000000/", expect=_no_import_expect
    ),
    "intake/batches/<uuid:batch>/confirm/": Route(
        caps=EDIT,
        url="/intake/batches/00000000-0000-4000-8000-000000000000/confirm/",
        method="post",
        expect=_no_import_expect,
    ),
    # An import's status page and its 重新开始 (background imports): the uploader's only.
    "intake/imports/<int:import_id>/": Route(caps=EDIT, url="/intake/imports/999999999/", expect=_no_import_expect),
    "intake/imports/<int:import_id>/restart/": Route(
        caps=EDIT, url="/intake/imports/999999999/restart/", method="post", expect=_no_import_expect
    ),
    "intake/imports/<int:import_id>/undo/": Route(
        caps=EDIT, url="/intake/imports/999999999/undo/", method="post", expect=_no_import_expect
    ),
    # Home visits: due lists and records in the role's regions; a child out of view is a 404, and
    # so is a visit (the matrix's accounts have none: whoever holds the capability gets 404).
    "visits/": Route(caps=_caps(Cap.VISITS)),
    # The town's review: numbers for the reviewer's own regions (another town's ?town= is a 404,
    # tested in shouhu/visits/tests/test_review.py).
    "visits/review/": Route(caps=_caps(Cap.VISIT_REVIEW)),
    "visits/child/<uuid:pk>/": Route(caps=_caps(Cap.VISITS), child="view"),
    "visits/child/<uuid:pk>/new/": Route(caps=_caps(Cap.VISITS), child="view"),
    "visits/child/<uuid:pk>/risk/": Route(caps=_caps(Cap.VISITS), child="view", method="post"),
    "visits/<int:visit_id>/": Route(
        caps=_caps(Cap.VISITS), url="/visits/999999999/", expect=_no_object_expect(Cap.VISITS)
    ),
    "visits/<int:visit_id>/return/": Route(
        caps=_caps(Cap.VISIT_REVIEW),
        url="/visits/999999999/return/",
        method="post",
        expect=_no_object_expect(Cap.VISIT_REVIEW),
    ),
    "visits/<int:visit_id>/help/": Route(
        caps=_caps(Cap.VISITS), url="/visits/999999999/help/", method="post", expect=_no_object_expect(Cap.VISITS)
    ),
    "visits/photo/<int:photo_id>/": Route(
        caps=_caps(Cap.VISITS), url="/visits/photo/999999999/", expect=_no_object_expect(Cap.VISITS)
    ),
    # Case management: town supervisors and the district office; a case is a 404 to whoever holds
    # the capability (the matrix has none), the chronology follows the child's scope.
    "cases/": Route(caps=_caps(Cap.CASES)),
    "cases/new/": Route(caps=_caps(Cap.CASES), expect=_no_object_expect(Cap.CASES)),
    "cases/child/<uuid:pk>/chronology/": Route(caps=_caps(Cap.CASES), child="view"),
    "cases/<int:case_id>/": Route(caps=_caps(Cap.CASES), url="/cases/999999999/", expect=_no_object_expect(Cap.CASES)),
    "cases/<int:case_id>/assess/": Route(
        caps=_caps(Cap.CASES), url="/cases/999999999/assess/", expect=_no_object_expect(Cap.CASES)
    ),
    "cases/<int:case_id>/summary.pdf": Route(
        caps=_caps(Cap.CASES), url="/cases/999999999/summary.pdf", expect=_no_object_expect(Cap.CASES)
    ),
    "cases/<int:case_id>/assessment/<int:assessment_id>.pdf": Route(
        caps=_caps(Cap.CASES), url="/cases/999999999/assessment/999999999.pdf", expect=_no_object_expect(Cap.CASES)
    ),
    **{
        f"cases/<int:case_id>/{step}/": Route(
            caps=_caps(Cap.CASES), url=f"/cases/999999999/{step}/", method="post", expect=_no_object_expect(Cap.CASES)
        )
        for step in ("goal", "action", "refer", "service", "review", "close", "reopen", "worker")
    },
    "cases/<int:case_id>/approve/": Route(
        caps=_caps(Cap.CASES_APPROVE),
        url="/cases/999999999/approve/",
        method="post",
        expect=_no_object_expect(Cap.CASES_APPROVE),
    ),
    # One's own notifications (every role); another user's notification is as missing as none.
    "notifications/": Route(caps=_caps(Cap.NOTIFICATIONS)),
    "notifications/<int:notification_id>/": Route(
        caps=_caps(Cap.NOTIFICATIONS), url="/notifications/999999999/", expect=_no_notification_expect
    ),
    "notifications/<int:notification_id>/read/": Route(
        caps=_caps(Cap.NOTIFICATIONS),
        method="post",
        url="/notifications/999999999/read/",
        expect=_no_notification_expect,
    ),
    "notifications/read-all/": Route(caps=_caps(Cap.NOTIFICATIONS), method="post"),
    # Mandatory reports (pages): one list for every role that files, handles, assesses, oversees or
    # supervises; the matrix has no report, so a report's pages are a 404 to whoever may see reports
    # and a 403 to the rest; each step needs its own capability (403 without, even for a missing report).
    "reports/": Route(caps=_caps(*REPORT_READERS)),
    "reports/new/": Route(caps=_caps(Cap.REPORT_FILE)),
    "reports/new/villages/": Route(caps=_caps(Cap.REPORT_FILE), data={"place_town": "320412100000"}),
    "reports/new/children/": Route(caps=_caps(Cap.REPORT_FILE, Cap.REPORTS_TOWN), method="post", data={"q": "湖"}),
    "reports/<int:report_id>/": _report_route("", *REPORT_READERS, method="get"),
    "reports/<int:report_id>/receipt/": _report_route("receipt/", Cap.REPORT_FILE, method="get"),
    "reports/<int:report_id>/attachments/<int:attachment_id>/": _report_route(
        "attachments/1/", Cap.REPORTS_HANDLE, Cap.REPORTS_TOWN, Cap.REPORTS_ALL, method="get"
    ),
    "reports/<int:report_id>/accept/": _report_route("accept/", Cap.REPORTS_HANDLE),
    "reports/<int:report_id>/dispatch/": _report_route("dispatch/", Cap.REPORTS_HANDLE),
    "reports/<int:report_id>/measure/": _report_route("measure/", Cap.REPORTS_HANDLE),
    "reports/<int:report_id>/notify-town/": _report_route("notify-town/", Cap.REPORTS_HANDLE),
    "reports/<int:report_id>/result/": _report_route("result/", Cap.REPORTS_HANDLE),
    "reports/<int:report_id>/assess/": _report_route("assess/", Cap.REPORTS_TOWN),
    "reports/<int:report_id>/help/": _report_route("help/", Cap.REPORTS_TOWN, Cap.REPORTS_ALL),
    "reports/<int:report_id>/placement/": _report_route("placement/", Cap.REPORTS_ALL),
    "reports/<int:report_id>/placement/<int:placement_id>/end/": _report_route("placement/1/end/", Cap.REPORTS_ALL),
    "reports/<int:report_id>/commend/": _report_route("commend/", Cap.REPORTS_ALL),
    # The public report entrance (no account): the form, the receipt-code status look-up, the QR poster.
    "report/": Route(public=True),
    "report/status/": Route(public=True),
    "report/qr/": Route(public=True),
    # The API: the schema and its page for any logged-in user; the root redirects to the page.
    "api/v1/openapi.json": Route(login=True),
    "api/v1/docs": Route(login=True),
    "api/v1/": Route(expect=lambda username, child: NOT_FOUND),  # django-ninja's root: always 404
    "api/v1/children": Route(api=True),
    "api/v1/children/search": Route(api=True),
    "api/v1/children/<child_id>": Route(api=True),
    "api/v1/reports": Route(api=True),
    "api/v1/reports/<report_id>": Route(api=True),
    "api/v1/tasks": Route(api=True),
    "api/v1/tasks/<task_id>/accept": Route(api=True),
    "api/v1/tasks/<task_id>/decline": Route(api=True),
    "api/v1/tasks/<task_id>/progress": Route(api=True),
    "api/v1/tasks/<task_id>/complete": Route(api=True),
    # The admin site: system and security administrators only (三员分立).
    "admin/": Route(admin=True, caps=ADMINS),
    "admin/login/": Route(expect=_admin_login_expect),
    "admin/logout/": Route(method="post", logs_out=True, expect=_admin_logout_expect),
    "admin/password_change/": Route(admin=True, caps=ADMINS),
    "admin/password_change/done/": Route(admin=True, caps=ADMINS),
    "admin/jsi18n/": Route(admin=True, caps=ADMINS),
    # Organisations for the user form's organisation field: only who may view organisations.
    "admin/autocomplete/": Route(
        admin=True,
        caps=_caps(Cap.ORG_ADMIN),
        data={"app_label": "org", "model_name": "user", "field_name": "organization"},
    ),
    "admin/r/<path:content_type_id>/<path:object_id>/": Route(admin=True, caps=ADMINS, admin_result=NOT_FOUND),
    r"admin/^(?P<app_label>axes|org|otp_totp)/$": Route(admin=True, caps=ADMINS, url="/admin/org/"),
    "admin/(?P<url>.*)$": Route(admin=True, caps=ADMINS, url="/admin/no-such-page/", admin_result=NOT_FOUND),
}


@dataclass(frozen=True)
class AdminModel:
    view: frozenset[Cap]
    add: frozenset[Cap]
    change: frozenset[Cap]
    delete: frozenset[Cap]


ORG_ONLY = AdminModel(
    view=_caps(Cap.ORG_ADMIN), add=_caps(Cap.ORG_ADMIN), change=_caps(Cap.ORG_ADMIN), delete=_caps(Cap.ORG_ADMIN)
)
# Axes' logs use Django's model permissions, which no role grants.
CLOSED = AdminModel(view=NOBODY, add=NOBODY, change=NOBODY, delete=NOBODY)
# Lockouts and authenticators: the security administrator views and deletes (unlocks, resets).
SECURITY = AdminModel(
    view=_caps(Cap.ROLE_ADMIN), add=NOBODY, change=_caps(Cap.ROLE_ADMIN), delete=_caps(Cap.ROLE_ADMIN)
)

ADMIN_MODELS: dict[str, AdminModel] = {
    "org/region": ORG_ONLY,
    "org/organization": ORG_ONLY,
    "org/needtype": ORG_ONLY,
    "org/needroute": ORG_ONLY,
    "org/duty": ORG_ONLY,
    # The security administrator opens users to edit their roles; only the system
    # administrator creates, deletes or changes them (and sets their passwords).
    "org/user": AdminModel(view=ADMINS, add=_caps(Cap.ORG_ADMIN), change=ADMINS, delete=_caps(Cap.ORG_ADMIN)),
    "axes/accessattempt": SECURITY,
    "axes/accesslog": CLOSED,
    "axes/accessfailurelog": CLOSED,
    "otp_totp/totpdevice": SECURITY,
}
ADMIN_EXTRA_ROUTES: dict[str, Route] = {
    "admin/org/user/<id>/password/": Route(admin=True, caps=_caps(Cap.ORG_ADMIN)),
}


def _admin_model_routes() -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for model, rule in ADMIN_MODELS.items():
        base = f"admin/{model}/"
        routes[base] = Route(admin=True, caps=rule.view)
        routes[f"{base}add/"] = Route(admin=True, caps=rule.add)
        routes[f"{base}<path:object_id>/history/"] = Route(admin=True, caps=rule.view | rule.change)
        routes[f"{base}<path:object_id>/delete/"] = Route(admin=True, caps=rule.delete)
        routes[f"{base}<path:object_id>/change/"] = Route(admin=True, caps=rule.view | rule.change)
        # The old-style URL redirects to the change page for anybody the admin site lets in.
        routes[f"{base}<path:object_id>/"] = Route(admin=True, caps=ADMINS)
    return routes


ALL_ROUTES: dict[str, Route] = {**ROUTES, **_admin_model_routes(), **ADMIN_EXTRA_ROUTES}


@dataclass(frozen=True)
class ApiOperation:
    caps: frozenset[Cap]
    child: str = ""
    # Bodies that pass the schema (validated before the operation runs) but not the form:
    # the capability check answers first, then scope, then the form (422 counts as allowed).
    body: dict[str, Any] | None = None


API_OPERATIONS: dict[tuple[str, str], ApiOperation] = {
    ("GET", "/children"): ApiOperation(caps=VIEW),
    ("POST", "/children"): ApiOperation(
        caps=EDIT, body={"name": "测", "id_number": "1", "region": "320412100001", "school_stage": "primary"}
    ),
    ("POST", "/children/search"): ApiOperation(caps=VIEW, body={"q": "zs"}),
    ("GET", "/children/{child_id}"): ApiOperation(caps=VIEW, child="view"),
    ("PATCH", "/children/{child_id}"): ApiOperation(caps=EDIT, child="edit", body={"version": 1, "gender": "Q"}),
    # Reports: a body that passes the schema but names no region (422); the report walk's URL keeps its
    # "{report_id}" placeholder, which whoever may read reports gets back as a 422 (not a number).
    ("POST", "/reports"): ApiOperation(
        caps=_caps(Cap.REPORT_FILE),
        body={
            "situations": [4],
            "child": {"name": "测"},
            "found_at": "2026-01-01T08:00:00",
            "place_region_code": "000000000000",
            "place": "",
            "description": "矩阵测试",
            "danger_now": False,
        },
    ),
    ("GET", "/reports/{report_id}"): ApiOperation(
        caps=_caps(Cap.REPORT_FILE, Cap.REPORTS_HANDLE, Cap.REPORTS_TOWN, Cap.REPORTS_ALL, Cap.REPORTS_SUPERVISE)
    ),
    ("GET", "/tasks"): ApiOperation(caps=_caps(Cap.TASKS)),
    # The answers: the walk's URL keeps its "{task_id}" placeholder, a 422 for whoever holds TASKS.
    ("POST", "/tasks/{task_id}/accept"): ApiOperation(caps=_caps(Cap.TASKS), body={"handler": "矩阵"}),
    ("POST", "/tasks/{task_id}/decline"): ApiOperation(caps=_caps(Cap.TASKS), body={"reason": "矩阵"}),
    ("POST", "/tasks/{task_id}/progress"): ApiOperation(caps=_caps(Cap.TASKS), body={"note": "矩阵"}),
    ("POST", "/tasks/{task_id}/complete"): ApiOperation(caps=_caps(Cap.TASKS), body={"outcome": "矩阵"}),
}


def api_expected(op: ApiOperation, username: str, child: str | None) -> str:
    if username == ANONYMOUS:
        return LOGIN
    if not caps_of(username) & op.caps:
        return FORBIDDEN
    account = ACCOUNTS[username]
    if op.child == "view" and child not in account.sees:
        return NOT_FOUND
    if op.child == "edit" and child not in account.edits:
        return NOT_FOUND
    return OK


# ----- walking the project -----------------------------------------------------------------------


def url_patterns(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """(full route, pattern) for every URL pattern of the project, recursively."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_operations() -> Iterator[tuple[str, str, Any]]:
    """(method, path, operation) for every operation of the API, through every mounted router."""
    for router in api._get_bound_routers():
        for op_path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    yield method, (router.prefix.rstrip("/") + op_path) or "/", operation


ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass
class World:
    children: dict[str, str]  # "in"/"out" -> child id
    members: dict[str, int]
    entrustments: dict[str, int]
    proposals: dict[str, int]
    entitlements: dict[str, int]
    task_id: int
    admin_ids: dict[str, str]  # "org/region" -> an object id of that model
    content_type_id: int
    region_code: str
    user_id: int


def fill(route_path: str, route: Route, world: World, child: str | None) -> str:
    if route.url:
        return route.url
    model = "/".join(route_path.split("/")[1:3]) if route_path.startswith("admin/") else ""

    def value(match: re.Match[str]) -> str:
        name = match.group("name")
        if name == "pk" and child is not None:
            return world.children[child]
        if name == "member_id" and child is not None:
            return str(world.members[child])
        if name == "entrustment_id" and child is not None:
            return str(world.entrustments[child])
        if name == "proposal_id" and child is not None:
            return str(world.proposals[child])
        if name == "entitlement_id" and child is not None:
            return str(world.entitlements[child])
        if name == "task_id":
            return str(world.task_id)
        if name == "object_id" and model in world.admin_ids:
            return world.admin_ids[model]
        if name == "object_id":
            return world.region_code  # view_on_site
        if name == "content_type_id":
            return str(world.content_type_id)
        if name == "id":
            return str(world.user_id)
        if name == "pk":
            return world.admin_ids["otp_totp/totpdevice"]
        raise AssertionError(f"no value for <{name}> in {route_path}")

    return "/" + ROUTE_PARAM.sub(value, route_path)


def child_routes(route_path: str) -> bool:
    return "<uuid:pk>" in route_path


def _register(*, actor: User, region: Region, name: str, seq: int) -> Any:
    from shouhu.lib.idnumber import make_id_number, parse_id_number
    from shouhu.registry import services

    id_number = make_id_number("320481", date(2014, 5, 20), seq)
    info = parse_id_number(id_number)
    data = {
        "name": name,
        "id_number": id_number,
        "gender": info.gender,
        "birth_date": info.birth_date,
        "region": region,
        "school_stage": "primary",
        "ethnicity": "汉族",
        "hukou_type": "rural",
        "health": "healthy",
        "guardianship_type": "ordinary",
    }
    members = [
        {
            "relation": "father",
            "name": name[0] + "大伟",
            "is_guardian": True,
            "capacity": "none",
            "situations": [{"kind": "imprisoned", "since": date(2022, 1, 1)}],
        },
        {
            "relation": "mother",
            "name": "王丽",
            "is_guardian": True,
            "capacity": "full",
            "situations": [{"kind": "out_for_work", "since": date(2023, 3, 1)}],
        },
    ]
    entrustment = {"carer_name": name[0] + "老汉", "carer_relation": "grandfather_p", "since": date(2023, 3, 1)}
    return services.child_create(
        actor=actor, data=data, household={"address": "武进区示例路8号"}, members=members, entrustment=entrustment
    )


def _policy_rows(child: Any) -> tuple[int, int]:
    """A pending proposal and an entitlement for the child (the engine runs only after a commit)."""
    from shouhu.policy.models import CATEGORY_CHOICES, ChildEntitlement, Proposal

    proposal = Proposal.objects.create(
        child=child, kind="add", code=CATEGORY_CHOICES[0][0], explanation="矩阵测试", as_of=date.today()
    )
    entitlement = ChildEntitlement.objects.create(child=child, code="matrix", name="示例待遇", explanation="矩阵测试")
    return proposal.pk, entitlement.pk


def _closed_admin_objects() -> dict[str, str]:
    """A row of each model the admin lists but no role may open (so the refusal is not a 'missing')."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_totp.models import TOTPDevice

    now = timezone.now()
    common = {"username": "someone", "ip_address": "10.0.0.9", "user_agent": "test", "path_info": "/login/"}
    owner = User.objects.create(username="matrix_device_owner", is_active=False)
    return {
        "axes/accessattempt": str(
            AccessAttempt.objects.create(
                **common, http_accept="*/*", get_data="", post_data="", failures_since_start=1, attempt_time=now
            ).pk
        ),
        "axes/accesslog": str(AccessLog.objects.create(**common, http_accept="*/*", attempt_time=now).pk),
        "axes/accessfailurelog": str(
            AccessFailureLog.objects.create(**common, http_accept="*/*", attempt_time=now, locked_out=False).pk
        ),
        "otp_totp/totpdevice": str(TOTPDevice.objects.create(user=owner, name="phone", confirmed=False).pk),
    }


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[World]:
    """Two children (with parents and a carer), built once for the module and rolled back after.

    The module's tests run inside this outer transaction, each in its own savepoint, the way
    Django's `TestCase.setUpTestData` works.
    """
    from shouhu.registry.models import ChildShare
    from shouhu.tasks.models import Task

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            district = User.objects.get(username="district")
            hutang = Region.objects.filter(code__startswith="320412100", level=5).order_by("code").first()
            niutang = Region.objects.filter(code__startswith="320412102", level=5).order_by("code").first()
            assert hutang is not None and niutang is not None
            child_in = _register(actor=district, region=hutang, name="湖小明", seq=901)
            child_out = _register(actor=district, region=niutang, name="牛小红", seq=903)
            police_hutang = User.objects.get(username="police_hutang")
            ChildShare.objects.create(
                child=child_in, organization=police_hutang.organization, reason="矩阵测试：派出所受理的报告"
            )
            task = Task.objects.create(
                owner=User.objects.get(username="village_hutang").organization,
                kind="supervised_item",
                title="矩阵测试事项",
                due_at=timezone.now() + timedelta(days=3),
            )
            policy = {IN: _policy_rows(child_in), OUT: _policy_rows(child_out)}
            world = World(
                children={IN: str(child_in.pk), OUT: str(child_out.pk)},
                members={
                    IN: child_in.family.order_by("id").first().pk,
                    OUT: child_out.family.order_by("id").first().pk,
                },
                entrustments={IN: child_in.entrustments.get().pk, OUT: child_out.entrustments.get().pk},
                proposals={key: rows[0] for key, rows in policy.items()},
                entitlements={key: rows[1] for key, rows in policy.items()},
                task_id=task.pk,
                admin_ids={
                    "org/region": hutang.code,
                    "org/organization": str(Organization.objects.order_by("id").first().pk),
                    "org/needtype": str(NeedType.objects.order_by("id").first().pk),
                    "org/needroute": str(NeedRoute.objects.order_by("id").first().pk),
                    "org/duty": str(Duty.objects.order_by("id").first().pk),
                    "org/user": str(User.objects.get(username="leader").pk),
                    **_closed_admin_objects(),
                },
                content_type_id=ContentType.objects.get_for_model(Region).pk,
                region_code=hutang.code,
                user_id=User.objects.get(username="leader").pk,
            )
            yield world
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# ----- the tests ---------------------------------------------------------------------------------


def test_role_table_mirrors_the_access_module() -> None:
    assert ROLE_CAPS == access.ROLE_CAPS
    assert set(ACCOUNTS) == {name for name, _, _, _ in DEMO_ACCOUNTS}


def undeclared_routes() -> list[str]:
    return [route for route, _ in url_patterns() if route not in ALL_ROUTES]


def test_every_route_is_declared() -> None:
    assert undeclared_routes() == [], "URL patterns missing from the matrix's tables"
    listed = {route for route, _ in url_patterns()}
    assert set(ALL_ROUTES) - listed == set(), "the tables list routes that no longer exist"
    operations = {(method, op_path) for method, op_path, _ in api_operations()}
    assert operations == set(API_OPERATIONS), "API operations missing from (or stale in) API_OPERATIONS"


def test_page_views_declare_the_rule_the_table_expects() -> None:
    """The @allow / @public of each page view says what the table says (admin and API guard themselves)."""
    for route_path, pattern in url_patterns():
        route = ALL_ROUTES.get(route_path)
        if route is None or route.admin or route_path.startswith(("admin/", "api/")):
            continue
        rule = rule_of(pattern.callback)
        assert rule is not None, f"{route_path} declares no access rule"
        if route.caps:
            assert not rule.public and rule.caps == route.caps, route_path
        else:
            assert rule.public, route_path


def test_an_unlisted_route_fails_the_coverage_check() -> None:
    extra = types.ModuleType("shouhu_matrix_extra_urls")
    extra.urlpatterns = [path("", include("shouhu.urls")), path("sneaky/", allow(Cap.HOME)(_never))]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=extra):
        assert undeclared_routes() == ["sneaky/"]


def _never(request: HttpRequest) -> HttpResponse:
    raise AssertionError("an undeclared view must never run")


@pytest.mark.django_db
def test_a_view_without_a_declaration_is_refused(users: dict[str, User]) -> None:
    extra = types.ModuleType("shouhu_matrix_undeclared_urls")
    extra.urlpatterns = [path("undeclared/", _never), path("", include("shouhu.urls"))]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=extra):
        client = Client()
        assert client.get("/undeclared/").status_code == 403
        client.force_login(users["district"])  # every ledger capability, still refused
        response = client.get("/undeclared/")
        assert response.status_code == 403
        assert "未声明访问规则" in response.content.decode()


def test_an_api_operation_without_a_declaration_cannot_be_registered() -> None:
    router = GuardedRouter()
    with pytest.raises(ImproperlyConfigured):
        router.get("/undeclared")(lambda request: {})
    router.get("/declared")(allow(Cap.HOME)(lambda request: {}))  # a declared one is accepted


def test_every_api_router_and_operation_is_guarded() -> None:
    for router in api._get_bound_routers():
        assert isinstance(router.template, GuardedRouter), f"router at {router.prefix!r} is not a GuardedRouter"
    for method, op_path, operation in api_operations():
        assert rule_of(operation.view_func) is not None, f"{method} {op_path} declares no access rule"


def _client_for(username: str) -> Client:
    client = Client(REMOTE_ADDR="10.0.0.8")
    if username != ANONYMOUS:
        client.force_login(User.objects.get(username=username))
    return client


@pytest.mark.parametrize("username", [*ACCOUNTS, ANONYMOUS])
def test_authorization_matrix(world: World, username: str, db: None) -> None:
    client = _client_for(username)
    authenticated = username != ANONYMOUS
    mismatches: list[str] = []

    def check(method: str, url: str, expected: str, *, logs_out: bool = False, **kwargs: Any) -> None:
        try:
            response = getattr(client, method)(url, **kwargs)
        except Exception:  # noqa: BLE001 — a crash is a finding, reported with its traceback
            mismatches.append(f"{method.upper()} {url}: raised\n{traceback.format_exc(limit=-3)}")
            return
        got = outcome(response, authenticated=authenticated)
        if got != expected:
            mismatches.append(f"{method.upper()} {url}: expected {expected}, got {got} ({response.status_code})")
        if authenticated and not logs_out and "no-store" not in response.get("Cache-Control", ""):
            mismatches.append(f"{method.upper()} {url}: a logged-in user's response without Cache-Control: no-store")

    # Pages and the admin; the routes that log out come last.
    declared = [(route_path, ALL_ROUTES[route_path]) for route_path, _ in url_patterns() if route_path in ALL_ROUTES]
    mismatches += [f"{route_path}: not declared in the matrix's tables" for route_path in undeclared_routes()]
    for route_path, route in sorted(declared, key=lambda item: item[1].logs_out):
        if route.api:
            continue
        for child in (IN, OUT) if child_routes(route_path) else (None,):
            url = fill(route_path, route, world, child)
            check(route.method, url, route.expected(username, child), logs_out=route.logs_out, data=route.data)
            if route.logs_out and authenticated:
                client.force_login(User.objects.get(username=username))

    # Every API operation.
    for method, op_path, _ in api_operations():
        op = API_OPERATIONS.get((method, op_path))
        if op is None:
            mismatches.append(f"{method} {op_path}: not declared in API_OPERATIONS")
            continue
        for child in (IN, OUT) if "{child_id}" in op_path else (None,):
            url = "/api/v1" + op_path.replace("{child_id}", world.children[child] if child else "")
            kwargs: dict[str, Any] = {}
            if op.body is not None:
                kwargs = {"data": op.body, "content_type": "application/json"}
            check(method.lower(), url, api_expected(op, username, child), **kwargs)

    assert not mismatches, f"{username}:\n" + "\n".join(mismatches)
