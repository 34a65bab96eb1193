"""Writes for visits: plans, risk levels, visit records, the town's return, and help requests.

Every service takes `actor=` first, runs in one transaction and writes its audit event there.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.registry.models import Child, LedgerStatus
from shouhu.registry.services import StaleEdit
from shouhu.visits.models import (
    RiskAssessment,
    Visit,
    VisitPhoto,
    VisitPlan,
    VisitState,
)
from shouhu.visits.schedule import plan

PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MAX_PER_VISIT = 6
_PHOTO_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))

# Fields of a visit the form writes.
VISIT_FIELDS = (
    "visited_on",
    "mode",
    "met",
    "checklist",
    "child_lives_alone",
    "parents_contact_weekly",
    "parents_last_contact",
    "carer_performance",
    "guardianship_assessment",
    "notes",
    "location",
)


# ----- plans ---------------------------------------------------------------------------------------


def refresh_plans(child_ids: Iterable[Any], *, today: date | None = None) -> int:
    """Recompute the visit plan of these children (a few queries per 1,000 children). A child no
    longer in the ledger loses its plan. Returns the number of plans written."""
    today = today or timezone.localdate()
    ids = list(child_ids)
    written = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        computed, gone = plans_computed(chunk, today=today)
        if gone:
            VisitPlan.objects.filter(child_id__in=gone).delete()
        existing = VisitPlan.objects.in_bulk(list(computed))
        create, update = [], []
        for pk, values in computed.items():
            row = existing.get(pk)
            if row is None:
                create.append(VisitPlan(child_id=pk, **values))
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                update.append(row)
        VisitPlan.objects.bulk_create(create)
        VisitPlan.objects.bulk_update(
            update,
            [
                "region_id",
                "risk_level",
                "interval_days",
                "next_due",
                "first_visit",
                "basis",
                "last_visit_on",
                "updated_at",
            ],
        )
        written += len(create) + len(update)
    return written


def plans_for_created(children: list[Child], *, today: date | None = None) -> int:
    """Write the plans of children created in this transaction without signals (a survey import's
    new rows, `registry.services.children_create_bulk`), which have none yet: what `refresh_plans`
    would write, the children read from memory rather than queried back, the plans inserted with
    COPY on PostgreSQL. Returns the number of plans written."""
    from shouhu.lib.bulkcopy import Builder, insert_in_bulk

    today = today or timezone.localdate()
    written = 0
    new_plan = None
    for start in range(0, len(children), 1000):
        chunk = children[start : start + 1000]
        rows = [(c.pk, c.status, c.region_id, c.registered_at) for c in chunk]
        computed, _gone = plans_computed([c.pk for c in chunk], today=today, rows=rows, fresh=True)
        create = []
        for pk, values in computed.items():
            new_plan = new_plan or Builder(VisitPlan, ["child_id", *values])
            create.append(new_plan({"child_id": pk, **values}))
        insert_in_bulk(VisitPlan, create)
        written += len(create)
    return written


def plans_computed(
    child_ids: list[Any],
    *,
    today: date,
    rows: list[tuple[Any, str, str, Any]] | None = None,
    fresh: bool = False,
) -> tuple[dict[Any, dict[str, Any]], set[Any]]:
    """What the plans of these children (at most a few thousand) should say today, without writing:
    ({child id: plan fields} for the children in the ledger, the ids of those no longer in it).
    `rows`, when the caller holds them: each child's (id, status, village, registered_at).
    `fresh`: the children were created in this transaction, so they have no categories, risk
    assessments or visits yet, and those are not looked for (three queries per thousand children)."""
    from shouhu.policy.models import ChildCategory
    from shouhu.policy.selectors import params_on

    params = params_on(today)
    children = (
        rows
        if rows is not None
        else list(Child.objects.filter(pk__in=child_ids).values_list("pk", "status", "region_id", "registered_at"))
    )
    gone = set(child_ids) - {pk for pk, status, _r, _t in children if status == LedgerStatus.ACTIVE}
    active = [c for c in children if c[1] == LedgerStatus.ACTIVE]
    pks = [c[0] for c in active]
    cats: dict[Any, set[str]] = {}
    risks: dict[Any, str] = {}
    last: dict[Any, Any] = {}
    if not fresh:
        for child_id, code in (
            ChildCategory.objects.filter(child_id__in=pks, valid_from__lte=today)
            .exclude(valid_to__lt=today)
            .values_list("child_id", "code")
        ):
            cats.setdefault(child_id, set()).add(code)
        risks = latest_risks(pks)
        last = dict(
            Visit.objects.filter(child_id__in=pks, state=VisitState.SUBMITTED)
            .values("child_id")
            .annotate(last=Max("visited_on"))
            .values_list("child_id", "last")
        )
    computed: dict[Any, dict[str, Any]] = {}
    zone = timezone.get_current_timezone()  # once, not per child
    # A plan depends on nothing but these four (and today's parameters): children registered on
    # one day share all of them, so each different plan is worked out once (`add_workdays`
    # counting the days and the reason's translation were a twentieth of an import's own time).
    plans: dict[tuple[Any, ...], Any] = {}
    for pk, _status, region_id, registered_at in active:
        registered_on = timezone.localtime(registered_at, zone).date()
        key = (registered_on, last.get(pk), frozenset(cats.get(pk, ())), risks.get(pk, ""))
        p = plans.get(key)
        if p is None:
            p = plans[key] = plan(
                registered_on=registered_on,
                last_visit_on=key[1],
                categories=key[2],
                risk_level=key[3],
                params=params,
            )
        computed[pk] = {
            "region_id": region_id,
            "risk_level": risks.get(pk, ""),
            "interval_days": p.interval_days,
            "next_due": p.next_due,
            "first_visit": p.first_visit,
            "basis": p.basis[:200],
            "last_visit_on": last.get(pk),
        }
    return computed, gone


def plan_preview(child_id: Any, *, today: date | None = None) -> VisitPlan | None:
    """The child's plan as it would be computed now, unsaved (a page reading a plan that the commit
    hook or the nightly refresh has not written yet does not write it); None outside the ledger."""
    computed, _gone = plans_computed([child_id], today=today or timezone.localdate())
    values = computed.get(child_id)
    return VisitPlan(child_id=child_id, **values) if values is not None else None


def latest_risks(child_ids: list[Any]) -> dict[Any, str]:
    """Each child's current risk level (its latest assessment), '' for none."""
    out: dict[Any, str] = {}
    rows = (
        RiskAssessment.objects.filter(child_id__in=child_ids)
        .order_by("child_id", "-set_at", "-id")
        .values_list("child_id", "level")
    )
    for child_id, level in rows:
        out.setdefault(child_id, level)
    return out


def schedule_refresh(child_id: Any) -> None:
    """Refresh one child's plan when the current transaction commits (at once in autocommit)."""
    from shouhu.visits.signals import schedule

    schedule(child_id)


# ----- risk ----------------------------------------------------------------------------------------


@transaction.atomic
def risk_set(*, actor: Any, child: Child, level: str, reason: str, visit: Visit | None = None) -> RiskAssessment:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("请写明调整风险等级的理由。")]})
    item = RiskAssessment(child=child, level=level, reason=reason[:1000], set_by=actor, visit=visit)
    item.full_clean()
    item.save()
    # Not the reason: it may describe the family. The assessment row (by id) keeps it.
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=child.pk,
        detail={"risk_level": level, "risk_assessment": item.pk},
    )
    schedule_refresh(child.pk)
    return item


# ----- visits --------------------------------------------------------------------------------------


def _check_photo(data: bytes) -> str:
    if len(data) > PHOTO_MAX_BYTES:
        raise ValidationError({"photos": [_("照片不能超过%(n)d MB。") % {"n": PHOTO_MAX_BYTES // (1024 * 1024)}]})
    for magic, content_type in _PHOTO_MAGIC:
        if data.startswith(magic):
            return content_type
    raise ValidationError({"photos": [_("照片只能是 JPG 或 PNG 图片。")]})


@transaction.atomic
def visit_save(
    *,
    actor: Any,
    child: Child,
    data: dict[str, Any],
    key: uuid.UUID | str,
    submit: bool,
    visit: Visit | None = None,
    version: int | None = None,
    photos: list[bytes] | None = None,
    request: Any = None,
) -> tuple[Visit, bool]:
    """Create (or, with `visit`, edit) a visit record; `submit` finishes it, otherwise a draft.

    `key` is the form's idempotency key: the same key sent again returns the visit it made, with
    `created=False`, and changes nothing — a form resent after a dropped connection is not a second
    visit. Editing needs the version the user started from (StaleEdit otherwise).
    Returns (visit, created_or_changed)."""
    key = uuid.UUID(str(key))
    if visit is None:
        existing = Visit.objects.select_for_update().filter(idempotency_key=key).first()
        if existing is not None:
            if existing.child_id != child.pk or existing.visitor_id != getattr(actor, "pk", None):
                raise PermissionDenied
            return existing, False
        visit = Visit(
            child=child, visitor=actor, organization=getattr(actor, "organization", None), idempotency_key=key
        )
        action = Action.CREATE
    else:
        visit = Visit.objects.select_for_update().get(pk=visit.pk)
        if visit.visitor_id != getattr(actor, "pk", None):
            raise PermissionDenied(_("只能修改自己的走访记录。"))
        if visit.state == VisitState.SUBMITTED:
            raise ValidationError(_("已提交的走访记录不能修改；如需更正，请联系镇（街道）督导员退回。"))
        if version is None or visit.version != version:
            raise StaleEdit(visit.version)
        visit.version += 1
        action = Action.UPDATE
    for name in VISIT_FIELDS:
        if name in data:
            setattr(visit, name, data[name])
    if visit.visited_on and visit.visited_on > timezone.localdate():
        raise ValidationError({"visited_on": [_("走访日期不能晚于今天。")]})
    if submit:
        visit.state = VisitState.SUBMITTED
        visit.submitted_at = timezone.now()
    elif visit.state != VisitState.RETURNED:
        visit.state = VisitState.DRAFT
    visit.full_clean()
    if action == Action.CREATE:
        try:
            with transaction.atomic():  # the same key sent twice at once: the second finds the first
                visit.save(force_insert=True)
        except IntegrityError:
            existing = Visit.objects.filter(idempotency_key=key).first()
            if existing is None or existing.child_id != child.pk or existing.visitor_id != getattr(actor, "pk", None):
                raise
            return existing, False
    else:
        visit.save()
    stored = visit.photos.count()
    for content in photos or []:
        if stored >= PHOTO_MAX_PER_VISIT:
            raise ValidationError({"photos": [_("每次走访最多%(n)d张照片。") % {"n": PHOTO_MAX_PER_VISIT}]})
        content_type = _check_photo(content)
        VisitPhoto.objects.create(
            visit=visit, content_type=content_type, size=len(content), content=base64.b64encode(content).decode("ascii")
        )
        stored += 1
    record(
        actor=actor,
        action=action,
        object_type="visit",
        object_id=visit.pk,
        request=request,
        detail={"child": str(child.pk), "state": visit.state, "photos": len(photos or [])},
    )
    if submit:
        schedule_refresh(child.pk)
    return visit, True


@transaction.atomic
def visit_return(*, actor: Any, visit: Visit, comment: str, request: Any = None) -> Visit:
    """The town supervisor sends a submitted visit back to its visitor with a comment."""
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": [_("请填写退回意见。")]})
    current = Visit.objects.select_for_update().get(pk=visit.pk)
    if current.state != VisitState.SUBMITTED:
        raise ValidationError(_("只能退回已提交的走访记录。"))
    current.state, current.returned_comment = VisitState.RETURNED, comment[:300]
    current.returned_by, current.returned_at = actor, timezone.now()
    current.version += 1
    current.save()
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="visit",
        object_id=current.pk,
        request=request,
        detail={"child": str(current.child_id), "returned": True},
    )
    from shouhu.notify.services import notify

    if current.visitor_id:
        notify(
            recipients=[current.visitor],
            kind="visit_returned",
            title=_("有一条走访记录被退回"),
            body=_("镇（街道）督导员退回了您的一条走访记录，请查看退回意见并修改后重新提交。"),
            url=f"/visits/{current.pk}/",
            dedupe_key=f"visit_returned:{current.pk}:{current.version}",
        )
    schedule_refresh(current.child_id)  # a returned visit no longer counts as the last visit
    return current


# ----- help from a member unit ---------------------------------------------------------------------


@transaction.atomic
def help_request(*, actor: Any, child: Child, need_code: str, note: str, visit: Visit | None = None) -> Any:
    """Ask the unit the duty catalogue names for this need (e.g. dropped out → education bureau) for
    help: a task in its inbox with a deadline (15 working days), sharing the child with it."""
    from shouhu.lib.workdays import workday_deadline
    from shouhu.org.models import NeedType
    from shouhu.policy.entitlements import LOCAL_UNITS
    from shouhu.policy.selectors import local_unit, routes
    from shouhu.tasks.models import TaskKind
    from shouhu.tasks.services import task_open

    need = NeedType.objects.filter(code=need_code).first()
    if need is None:
        raise ValidationError({"need": [_("请选择需要帮助的事项。")]})
    unit_code = LOCAL_UNITS.get(need_code) or routes().get(need_code, "civil_affairs")
    owner = local_unit(child, unit_code)
    if owner is None:
        raise ValidationError(
            {"need": [_("目录中没有承办“%(n)s”的单位，请联系区民政局（联席办）。") % {"n": need.name}]}
        )
    source_id = f"{visit.pk if visit else 'child'}:{child.pk}:{need_code}"
    return task_open(
        actor=actor,
        owner=owner,
        kind=TaskKind.REFERRAL,
        child=child,
        need_type=need,
        title=_("走访发现：%(n)s") % {"n": need.name},
        detail=(note or "").strip()[:1000],
        due_at=workday_deadline(15),
        source_type="visit_help",
        source_id=source_id,
    )


def overdue_days(next_due: date | None, today: date | None = None) -> int:
    if next_due is None:
        return 0
    return max(((today or timezone.localdate()) - next_due).days, 0)


def week_end(today: date) -> date:
    return today + timedelta(days=6 - today.weekday())
