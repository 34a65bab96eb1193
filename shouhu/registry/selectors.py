"""Reads of the ledger, always scoped to the actor (shouhu.org.access)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.crypto import blind_index
from shouhu.lib.idnumber import normalize_id_number
from shouhu.lib.text import normalize_text
from shouhu.org.access import Cap, scope_for
from shouhu.registry.models import Child, ChildShare


def children_visible_to(actor: Any) -> QuerySet[Child]:
    """Every child the actor may see: regions by prefix ∪ explicit shares with the organisation."""
    scope = scope_for(actor)
    if not scope.can(Cap.LEDGER_VIEW):
        return Child.objects.none()
    condition = Q()
    for prefix in scope.prefixes:
        condition |= Q(region__code__startswith=prefix)
    if scope.organization_id is not None:
        now = timezone.now()
        shares = ChildShare.objects.filter(organization_id=scope.organization_id).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
        if scope.prefixes:
            # Only pay for the OR when the organisation actually has shares.
            if shares.exists():
                condition |= Q(pk__in=shares.values("child_id"))
        else:
            condition = Q(pk__in=shares.values("child_id"))
    if not condition:
        return Child.objects.none()
    return Child.objects.filter(condition)


def active_counts_by_town() -> dict[str, int]:
    """Active children per town (the 9-digit prefix of the village code): numbers, never a name.

    District-wide: the caller decides which towns' numbers a user may see (statistics pages).
    """
    from django.db.models import Count
    from django.db.models.functions import Substr

    from shouhu.registry.models import LedgerStatus

    return dict(
        Child.objects.filter(status=LedgerStatus.ACTIVE)
        .annotate(town=Substr("region_id", 1, 9))
        .values_list("town")
        .annotate(n=Count("pk"))
        .values_list("town", "n")
    )


def children_with_restricted_facts(actor: Any, child_ids: Any) -> set[Any]:
    """The children among `child_ids` whose family facts carry a label the actor is not cleared for.

    Text derived from those facts (the policy engine's explanations, a task's detail) must then be
    withheld from the actor, as the facts themselves are on the child's page.
    """
    from shouhu.org.access import Label
    from shouhu.registry.models import JUDICIAL_SITUATIONS, ParentSituation

    if scope_for(actor).cleared(Label.JUDICIAL):
        return set()
    return set(
        ParentSituation.objects.filter(member__child_id__in=list(child_ids), kind__in=JUDICIAL_SITUATIONS).values_list(
            "member__child_id", flat=True
        )
    )


def child_get_for(actor: Any, pk: Any, *, request: HttpRequest | None = None, for_update: bool = False) -> Child:
    """The child if the actor may see it; otherwise 404 — the same for missing and not yours.

    A refused look-up is an audit event.
    """
    qs = children_visible_to(actor).select_related("region", "region__parent", "household")
    try:
        return qs.get(pk=pk)
    except (Child.DoesNotExist, ValueError, TypeError):
        record(
            actor=actor,
            action=Action.DENIED,
            object_type="child",
            object_id=str(pk)[:64],
            request=request,
            detail={"path": request.path[:200] if request else ""},
        )
        raise Http404 from None
    except Exception as exc:  # a malformed UUID raises ValidationError
        from django.core.exceptions import ValidationError

        if isinstance(exc, ValidationError):
            raise Http404 from None
        raise


AGE_BANDS = {
    "0-2": (0, 2),
    "3-5": (3, 5),
    "6-11": (6, 11),
    "12-14": (12, 14),
    "15-15": (15, 15),
    "16-17": (16, 17),
}


def birth_range_for_age(low: int, high: int, on: date) -> tuple[date, date]:
    """Birth dates of children aged low..high completed years on `on` (the birthday does not count yet)."""

    def shift(years: int) -> date:
        try:
            return on.replace(year=on.year - years)
        except ValueError:  # 29 February
            return on.replace(year=on.year - years, day=28)

    # age >= low  <=> birth < on - low years ; age <= high <=> birth >= on - (high+1) years
    from datetime import timedelta

    return shift(high + 1), shift(low) - timedelta(days=1)


@dataclass
class LedgerFilters:
    region: str = ""
    status: str = "active"
    age_band: str = ""
    school_stage: str = ""
    health: str = ""
    guardianship_type: str = ""
    gender: str = ""
    category: str = ""  # a confirmed category code (shouhu.policy)
    jiangsu: str = ""  # a confirmed Jiangsu class, "1".."6"
    work: str = ""  # "proposal": a proposal waits for confirmation; "gap": an entitlement is unserved
    sort: str = "name"

    @classmethod
    def from_mapping(cls, data: Any) -> LedgerFilters:
        def get(name: str, default: str = "") -> str:
            value = data.get(name, default)
            # PostgreSQL refuses NUL in text: a filter value carrying one must not become a 500.
            return str(value).replace("\x00", "")[:40] if value is not None else default

        return cls(
            region=re.sub(r"\D", "", get("region"))[:12],
            status=get("status", "active"),
            age_band=get("age_band"),
            school_stage=get("school_stage"),
            health=get("health"),
            guardianship_type=get("guardianship_type"),
            gender=get("gender"),
            category=get("category"),
            jiangsu=get("jiangsu")[:1],
            work=get("work"),
            sort=get("sort", "name"),
        )


SORTS = {
    "name": ("name_pinyin", "id"),
    "-name": ("-name_pinyin", "-id"),
    "birth": ("birth_date", "id"),
    "-birth": ("-birth_date", "-id"),
    "region": ("region_id", "name_pinyin", "id"),
    "updated": ("-updated_at", "id"),
}


def apply_filters(qs: QuerySet[Child], f: LedgerFilters, *, today: date | None = None) -> QuerySet[Child]:
    if f.region:
        qs = qs.filter(region__code__startswith=_region_prefix(f.region))
    if f.status in {"active", "exited"}:
        qs = qs.filter(status=f.status)
    if f.age_band in AGE_BANDS:
        low, high = AGE_BANDS[f.age_band]
        start, end = birth_range_for_age(low, high, today or timezone.localdate())
        qs = qs.filter(birth_date__gte=start, birth_date__lte=end)
    for name in ("school_stage", "health", "guardianship_type", "gender"):
        value = getattr(f, name)
        if value:
            qs = qs.filter(**{name: value})
    qs = _policy_filters(qs, f)
    return qs.order_by(*SORTS.get(f.sort, SORTS["name"]))


def _policy_filters(qs: QuerySet[Child], f: LedgerFilters) -> QuerySet[Child]:
    """Filters on what the policy engine and people decided (EXISTS subqueries on indexed columns)."""
    if not (f.category or f.jiangsu or f.work):
        return qs
    from django.db.models import Exists, OuterRef

    from shouhu.policy.models import (
        ChildCategory,
        ChildEntitlement,
        EntitlementState,
        Proposal,
        ProposalState,
    )

    current = ChildCategory.objects.filter(child=OuterRef("pk"), valid_to__isnull=True)
    if f.category:
        qs = qs.filter(Exists(current.filter(code=f.category)))
    if f.jiangsu:
        qs = qs.filter(Exists(current.filter(code=f"jiangsu_{f.jiangsu}")))
    if f.work == "proposal":
        qs = qs.filter(Exists(Proposal.objects.filter(child=OuterRef("pk"), state=ProposalState.PENDING)))
    elif f.work == "gap":
        qs = qs.filter(Exists(ChildEntitlement.objects.filter(child=OuterRef("pk"), state=EntitlementState.ELIGIBLE)))
    return qs


def _region_prefix(code: str) -> str:
    """A region code's prefix: strip the trailing zero groups of the 12-digit code."""
    code = code.ljust(12, "0")
    for length in (2, 4, 6, 9):
        if code[length:] == "0" * (12 - length):
            return code[:length]
    return code


ID_LIKE = re.compile(r"^[0-9]{15,17}[0-9Xx]?$")


def looks_like_id_number(query: str) -> bool:
    return bool(ID_LIKE.match(normalize_id_number(query)))


def apply_search(qs: QuerySet[Child], query: str) -> QuerySet[Child]:
    """One search box: name, full pinyin, pinyin initials, or a whole ID number."""
    query = normalize_text(query.replace("\x00", ""))[:40]  # PostgreSQL refuses NUL in text
    if not query:
        return qs
    compact = normalize_id_number(query)
    if ID_LIKE.match(compact) and len(compact) == 18:
        return qs.filter(id_number_index=blind_index(compact, purpose="child_id"))
    if re.fullmatch(r"[A-Za-z ]+", query):
        letters = query.replace(" ", "").lower()
        return qs.filter(Q(name_initials__startswith=letters) | Q(name_pinyin__startswith=letters))
    return (
        qs.filter(name__startswith=query)
        if len(query) == 1
        else qs.filter(Q(name__startswith=query) | Q(name__contains=query))
    )


def page_rows(qs: QuerySet[Child], start: int, size: int, total: int) -> QuerySet[Child]:
    """`qs[start:start + size]` — the same rows in the same order — read the cheap way.

    The page's ids are chosen in a subquery that the ledger index (`child_ledger_scope`) answers
    without touching a heap row; only those `size` rows are then read in full. Past the middle,
    the subquery walks the ordering backwards (`total` comes from the page's COUNT), so a deep
    page sorts the short end of the list. Both need a total order: every ledger sort ends with
    the id. Anything else (no ordering, annotations) takes the plain slice.
    """
    ordering = tuple(qs.query.order_by)
    if not ordering or ordering[-1] not in {"id", "-id", "pk", "-pk"} or qs.query.annotations:
        return qs[start : start + size]
    end = min(start + size, total)
    if start >= end:
        return qs.none()
    ids = qs.values("pk")
    ids = ids.reverse()[total - end : total - start] if total - end < start else ids[start:end]
    return Child.objects.filter(pk__in=ids).order_by(*ordering)


def findings_for(actor: Any, *, limit: int = 20) -> list[dict[str, Any]]:
    """Front-line work a child director should act on, computed from the ledger (never stored).

    For now: a left-behind situation (both parents out for work) with no signed entrustment
    agreement (未成年人保护法 art. 22-23; Jiangsu 委托监护责任确认书). Later capabilities add more.
    """
    from django.db.models import Exists, OuterRef
    from django.utils.translation import gettext as _

    from shouhu.registry.models import Entrustment, ParentSituation, SituationKind

    today = timezone.localdate()

    def parent_out(relation: str) -> Exists:
        return Exists(
            ParentSituation.objects.filter(
                member__child=OuterRef("pk"), member__relation=relation, kind=SituationKind.OUT_FOR_WORK
            ).filter(Q(until__isnull=True) | Q(until__gte=today))
        )

    signed = Exists(
        Entrustment.objects.filter(child=OuterRef("pk"), agreement_signed=True).filter(
            Q(until__isnull=True) | Q(until__gte=today)
        )
    )
    qs = (
        children_visible_to(actor)
        .filter(status="active")
        .filter(parent_out("father"), parent_out("mother"))
        .exclude(signed)
        .select_related("region")
        .order_by("region_id", "name_pinyin")
    )
    return [{"child": child, "text": _("父母均外出务工，尚未签订委托监护确认书")} for child in qs[:limit]]


# ----- entrusted care (委托照护, 未成年人保护法 art. 22-23; policy.md §1) -----------------------------

# A parent's situation that leaves the child without that parent's care at home (policy.md §1:
# out for work, or without guardianship capacity as the policy engine's left_behind rule reads it).
OUT_KIND = "out_for_work"
INCAPACITY_KINDS = frozenset({"severe_disability", "serious_illness", "no_capacity"})
# School stages with no school (幼儿园 counts as one: art. 23 names 学校、幼儿园).
NO_SCHOOL_STAGES = frozenset({"not_enrolled", "not_in_school", "dropped_out"})
PARENT_NAMES = {"father": gettext_lazy("父亲"), "mother": gettext_lazy("母亲")}


@dataclass(frozen=True)
class ParentSituationFact:
    relation: str  # "father" | "mother"
    kind: str  # a SituationKind code
    since: date | None = None
    until: date | None = None

    def active_on(self, day: date) -> bool:
        return (self.since is None or self.since <= day) and (self.until is None or self.until >= day)


@dataclass(frozen=True)
class AgreementFact:
    """One entrustment as the rules read it (see `AgreementFact.of`)."""

    since: date | None = None
    until: date | None = None
    agreement_signed: bool = False
    agreement_date: date | None = None
    carer_birth_date: date | None = None
    village_informed: bool = False
    school_informed: bool = False
    # field name -> the answer (None: not asked), for every field of models.ELIGIBILITY_FIELDS
    eligibility: tuple[tuple[str, bool | None], ...] = ()
    pk: int | None = None

    @classmethod
    def of(cls, ent: Any) -> AgreementFact:
        from shouhu.registry.models import ELIGIBILITY_FIELDS

        return cls(
            since=ent.since,
            until=ent.until,
            agreement_signed=ent.agreement_signed,
            agreement_date=ent.agreement_date,
            carer_birth_date=ent.carer_birth_date,
            village_informed=ent.village_informed,
            school_informed=ent.school_informed,
            eligibility=tuple((name, getattr(ent, name)) for name in ELIGIBILITY_FIELDS),
            pk=ent.pk,
        )

    def current_on(self, day: date) -> bool:
        return (self.since is None or self.since <= day) and (self.until is None or self.until >= day)


@dataclass(frozen=True)
class EntrustmentFacts:
    """What `entrustment_findings` needs to know about one child, on one day. No database."""

    today: date
    school_stage: str = ""
    agreements: tuple[AgreementFact, ...] = ()
    situations: tuple[ParentSituationFact, ...] = ()

    @classmethod
    def of(cls, child: Any, today: date) -> EntrustmentFacts:
        """From a child with `entrustments` and `family__situations` loaded (or loadable)."""
        situations = tuple(
            ParentSituationFact(member.relation, s.kind, s.since, s.until)
            for member in child.family.all()
            if member.relation in PARENT_NAMES
            for s in member.situations.all()
        )
        return cls(
            today=today,
            school_stage=child.school_stage,
            agreements=tuple(AgreementFact.of(e) for e in child.entrustments.all()),
            situations=situations,
        )

    def current_agreement(self) -> AgreementFact | None:
        """The agreement in force today: the latest-starting one whose period covers today."""
        current = [a for a in self.agreements if a.current_on(self.today)]
        return max(current, key=lambda a: (a.since or date.min, a.pk or 0)) if current else None


def _under_18(birth: date, today: date) -> bool:
    # 周岁 are reached the day after the birthday (policy.md §1): still under 18 on the 18th birthday.
    from shouhu.registry.models import Child

    return Child(birth_date=birth).age_on(today) < 18


def needs_renewal(facts: EntrustmentFacts, agreement: AgreementFact) -> list[tuple[str, str]]:
    """Why an agreement must be made anew because the parents' situation changed since it was made.

    The reference day is the signing date, else the start. A parent who came home (an absence or
    incapacity that ended between then and today), or a parent who left or lost capacity after
    it (a situation that began after it and still holds): the agreement was made for a family
    that no longer is. A change of carer cannot be recorded on a signed agreement at all (the form
    asks for a new one). Computed every time, never stored.
    """
    base = agreement.agreement_date or agreement.since
    if base is None:
        return []
    reasons: list[tuple[str, str]] = []
    for s in sorted(facts.situations, key=lambda s: (s.relation, s.since or date.min)):
        if s.kind != OUT_KIND and s.kind not in INCAPACITY_KINDS:
            continue
        who = PARENT_NAMES[s.relation]
        if s.until is not None and base <= s.until < facts.today:
            text = (
                gettext("%(who)s已于 %(d)s 结束外出务工，家庭情况已变化，请重新确认委托照护（新的委托或结束委托）。")
                if s.kind == OUT_KIND
                else gettext("%(who)s的无监护能力情形已于 %(d)s 结束，家庭情况已变化，请重新确认委托照护。")
            )
            reasons.append(("renewal_parent_returned", text % {"who": who, "d": s.until.isoformat()}))
        elif s.since is not None and s.since > base and s.active_on(facts.today):
            text = (
                gettext("%(who)s于 %(d)s 外出务工，晚于委托签订，请重新签订委托监护确认书。")
                if s.kind == OUT_KIND
                else gettext("%(who)s自 %(d)s 起无监护能力，晚于委托签订，请重新签订委托监护确认书。")
            )
            reasons.append(("renewal_parent_left", text % {"who": who, "d": s.since.isoformat()}))
    return reasons


def entrustment_findings(facts: EntrustmentFacts) -> list[tuple[str, str]]:
    """Why a (left-behind) child's entrusted care is not in order on `facts.today`: a list of
    (code, Chinese message), empty when a valid agreement is in force. Pure: no database.

    Codes: no_entrustment, entrustment_ended, not_signed, carer_minor, carer_barred,
    eligibility_unchecked, village_not_told, school_not_told, renewal_parent_returned,
    renewal_parent_left. Whether the child needs entrusted care at all (left-behind) is the
    caller's question (`children_needing_entrustment`).
    """
    today = facts.today
    current = facts.current_agreement()
    if current is None:
        ended = [a for a in facts.agreements if a.until is not None and a.until < today]
        if ended:
            last = max(ended, key=lambda a: a.until or date.min)
            return [
                (
                    "entrustment_ended",
                    gettext("委托照护已于 %(d)s 结束，尚无新的委托（未成年人保护法第二十二条）。")
                    % {"d": last.until.isoformat() if last.until else ""},
                )
            ]
        return [
            (
                "no_entrustment",
                gettext("未登记委托照护：父母外出时须委托有照护能力的成年人照护（未成年人保护法第二十二条）。"),
            )
        ]
    findings: list[tuple[str, str]] = []
    if not current.agreement_signed:
        findings.append(("not_signed", gettext("尚未签订委托监护确认书。")))
    if current.carer_birth_date is not None and _under_18(current.carer_birth_date, today):
        findings.append(("carer_minor", gettext("受委托人未满18周岁，不能担任受委托人（未成年人保护法第二十二条）。")))
    from shouhu.registry.models import ELIGIBILITY_QUESTIONS

    answers = dict(current.eligibility)
    if any(answers.get(name) is barring for name, barring in ELIGIBILITY_QUESTIONS.items()):
        findings.append(
            ("carer_barred", gettext("受委托人资格核查有不符合项，不得担任受委托人（未成年人保护法第二十二条）。"))
        )
    elif any(answers.get(name) is None for name in ELIGIBILITY_QUESTIONS):
        findings.append(("eligibility_unchecked", gettext("尚未核查受委托人资格（未成年人保护法第二十二条）。")))
    if not current.village_informed:
        findings.append(("village_not_told", gettext("父母尚未书面告知村（居）委会（未成年人保护法第二十三条）。")))
    if not current.school_informed and facts.school_stage not in NO_SCHOOL_STAGES:
        findings.append(("school_not_told", gettext("父母尚未书面告知学校（幼儿园）（未成年人保护法第二十三条）。")))
    findings.extend(needs_renewal(facts, current))
    return findings


@dataclass(frozen=True)
class EntrustmentNeed:
    """A left-behind child whose entrusted care is not in order, with why (`findings`)."""

    child: Child
    findings: list[tuple[str, str]]

    @property
    def reason(self) -> str:
        return "；".join(message for _code, message in self.findings)


def entrustment_issues_of(child: Child, today: date) -> list[tuple[str, str]]:
    """What is not in order with a child's entrusted care today (`entrustment_findings`) when the
    child is left-behind (`left_behind_filter`); nothing for any other child."""
    if not Child.objects.filter(pk=child.pk).filter(left_behind_filter(today)).exists():
        return []
    return entrustment_findings(EntrustmentFacts.of(child, today))


def left_behind_filter(today: date) -> Q:
    """Left-behind on `today` (policy.md §1), as a filter on children.

    A current confirmed `left_behind` category (shouhu.policy) says yes. A child with a
    `left_behind` category that a person ended and no current one is not. Any other child is
    judged on the registry's facts, as the policy engine's rule does: active, under 16, rural
    household registration, not living with the parents, and both parents out for work or one out
    and the other without guardianship capacity (a current situation).
    """
    from django.db.models import Exists, OuterRef

    from shouhu.policy.models import ChildCategory
    from shouhu.registry.models import HukouType, LedgerStatus, ParentSituation

    def current(qs: QuerySet[Any]) -> QuerySet[Any]:
        return qs.filter(Q(since__isnull=True) | Q(since__lte=today), Q(until__isnull=True) | Q(until__gte=today))

    def parent(relation: str, kinds: Any) -> Exists:
        return Exists(
            current(
                ParentSituation.objects.filter(
                    member__child=OuterRef("pk"), member__relation=relation, kind__in=list(kinds)
                )
            )
        )

    categories = ChildCategory.objects.filter(child=OuterRef("pk"), code="left_behind")
    confirmed = Exists(
        categories.filter(valid_from__lte=today).filter(Q(valid_to__isnull=True) | Q(valid_to__gte=today))
    )
    decided = Exists(categories)
    under_16_from, _ = birth_range_for_age(0, 15, today)
    father_out, mother_out = parent("father", [OUT_KIND]), parent("mother", [OUT_KIND])
    parents = (
        (father_out & mother_out)
        | (father_out & parent("mother", INCAPACITY_KINDS))
        | (mother_out & parent("father", INCAPACITY_KINDS))
    )
    by_facts = Q(birth_date__gte=under_16_from, hukou_type=HukouType.RURAL, lives_with_parents=False) & parents
    return Q(status=LedgerStatus.ACTIVE) & (confirmed | (~decided & by_facts))


def children_needing_entrustment(queryset: QuerySet[Child], today: date) -> list[EntrustmentNeed]:
    """The left-behind children of `queryset` with no valid entrusted-care agreement on `today`.

    `queryset` is the caller's scope: pass `children_visible_to(actor)` (or a narrower filter of
    it, e.g. one village); this function adds no scope of its own. Left-behind as in
    `left_behind_filter`. "No valid agreement" and the reasons are `entrustment_findings`: no
    current entrustment, or one not signed, with a carer under 18, with an eligibility bar
    answered yes, with eligibility not checked, with the school or the village committee not told
    in writing, or made for a family situation that has since changed.

    Returns one `EntrustmentNeed(child, findings)` per such child, ordered by village and name;
    four queries whatever the number of children (children, entrustments, family, situations).
    The scans of agreements are never loaded.
    """
    from django.db.models import Prefetch

    from shouhu.registry.models import Entrustment, FamilyMember

    children = (
        queryset.filter(left_behind_filter(today))
        .select_related("region")
        .prefetch_related(
            Prefetch("entrustments", queryset=Entrustment.objects.order_by("since", "id")),
            Prefetch(
                "family",
                queryset=FamilyMember.objects.filter(relation__in=list(PARENT_NAMES)).prefetch_related("situations"),
            ),
        )
        .order_by("region_id", "name_pinyin", "id")
    )
    needs = []
    for child in children:
        findings = entrustment_findings(EntrustmentFacts.of(child, today))
        if findings:
            needs.append(EntrustmentNeed(child=child, findings=findings))
    return needs
