"""Reads of the ledger, always scoped to the actor (shouhu.org.access)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

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
        ParentSituation.objects.filter(member__child_id__in=list(child_ids), kind__in=JUDICIAL_SITUATIONS)
        .values_list("member__child_id", flat=True)
    )


def child_get_for(actor: Any, pk: Any, *, request: HttpRequest | None = None, for_update: bool = False) -> Child:
    """The child if the actor may see it; otherwise 404 — the same for missing and not yours.

    A refused look-up is an audit event.
    """
    qs = children_visible_to(actor).select_related("region", "region__parent", "household")
    try:
        return qs.get(pk=pk)
    except (Child.DoesNotExist, ValueError, TypeError):
        record(actor=actor, action=Action.DENIED, object_type="child", object_id=str(pk)[:64], request=request,
               detail={"path": request.path[:200] if request else ""})
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
    return qs.filter(name__startswith=query) if len(query) == 1 else qs.filter(
        Q(name__startswith=query) | Q(name__contains=query)
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
        return qs[start:start + size]
    end = min(start + size, total)
    if start >= end:
        return qs.none()
    ids = qs.values("pk")
    ids = ids.reverse()[total - end:total - start] if total - end < start else ids[start:end]
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

    signed = Exists(Entrustment.objects.filter(child=OuterRef("pk"), agreement_signed=True).filter(
        Q(until__isnull=True) | Q(until__gte=today)))
    qs = (
        children_visible_to(actor)
        .filter(status="active")
        .filter(parent_out("father"), parent_out("mother"))
        .exclude(signed)
        .select_related("region")
        .order_by("region_id", "name_pinyin")
    )
    return [
        {"child": child, "text": _("父母均外出务工，尚未签订委托监护确认书")}
        for child in qs[:limit]
    ]
