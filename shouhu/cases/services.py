"""Every change to a case: one transaction each, with its audit event (never the family's facts
in the audit detail: ids, levels and states only)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action as AuditAction
from shouhu.audit.services import record
from shouhu.cases import rules
from shouhu.cases.models import (
    REFERRAL_SOURCE,
    Action,
    ActionMode,
    Assessment,
    Case,
    CaseEvent,
    CaseEventKind,
    CaseState,
    ClosureReason,
    Goal,
    OpenedFrom,
    Review,
    Service,
    evidence_dump,
)
from shouhu.org.access import Cap, scope_for
from shouhu.registry.models import Child

SCHOOL_NEEDS = frozenset({"schooling", "dropout", "education_aid", "boarding"})
# Organisations whose staff work cases for the owner (contracted social work), not own them.
WORKER_ORG_KINDS = frozenset({"social_work", "provider"})
WORKER_SHARE = "case_worker"  # ChildShare.source_type of the worker organisation's view of the child


def workers_available() -> Any:
    """Who may be assigned to work a case: active staff (the provider role) of contracted
    organisations."""
    from shouhu.org.models import Role, User

    return (
        User.objects.filter(
            is_active=True,
            organization__kind__in=WORKER_ORG_KINDS,
            organization__is_active=True,
            roles__role=Role.PROVIDER,
        )
        .select_related("organization")
        .distinct()
        .order_by("organization__name", "full_name", "username")
    )


def _share_with_worker(case: Case) -> None:
    """The worker's organisation sees the child while the case is open; any other share this case
    made (a previous worker's organisation) ends."""
    from shouhu.registry.models import ChildShare

    keep = case.worker.organization_id if case.state == CaseState.OPEN and case.worker is not None else None
    shares = ChildShare.objects.filter(source_type=WORKER_SHARE, source_id=str(case.pk))
    if keep is not None:
        shares = shares.exclude(organization_id=keep)
    shares.delete()
    if keep is not None:
        ChildShare.objects.get_or_create(
            child_id=case.child_id,
            organization_id=keep,
            source_type=WORKER_SHARE,
            source_id=str(case.pk),
            defaults={"reason": _("承接个案 #%(id)s") % {"id": case.pk}},
        )


def _end_worker_share(case: Case) -> None:
    from shouhu.registry.models import ChildShare

    ChildShare.objects.filter(source_type=WORKER_SHARE, source_id=str(case.pk)).delete()


@transaction.atomic
def case_assign_worker(*, actor: Any, case: Case, worker: Any) -> Case:
    """Assign (or, with None, withdraw) the contracted social worker who works the case. Their
    organisation sees the child while the case is open; the previous one's view ends."""
    from shouhu.notify.services import notify

    current = _locked_open(case)
    if worker is not None and not workers_available().filter(pk=worker.pk).exists():
        raise ValidationError({"worker": [_("只能指派承接服务的社会工作服务机构人员。")]})
    if (worker.pk if worker else None) == current.worker_id:
        return current
    current.worker = worker
    current.version += 1
    current.save(update_fields=["worker", "version"])
    _share_with_worker(current)
    note = f"{worker.organization.name} · {worker}" if worker else _("撤回指派")
    _event(current, CaseEventKind.ASSIGNED, actor, note)
    record(
        actor=actor,
        action=AuditAction.UPDATE,
        object_type="case",
        object_id=current.pk,
        detail={"worker": worker.pk if worker else None},
    )
    if worker is not None:
        notify(
            recipients=[worker],
            kind="case_assigned",
            url=f"/cases/{current.pk}/",
            title=_("您被指派承接个案 #%(id)s") % {"id": current.pk},
            body=_("请登录平台查看，详情不在通知中显示。"),
            dedupe_key=f"case_assigned:{current.pk}:{worker.pk}",
        )
    return current


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _event(case: Case, kind: str, actor: Any, note: str = "") -> CaseEvent:
    return CaseEvent.objects.create(case=case, kind=kind, actor=_user(actor), note=(note or "")[:500])


def _locked_open(case: Case) -> Case:
    current = Case.objects.select_for_update().get(pk=case.pk)
    if current.state != CaseState.OPEN:
        raise ValidationError(_("该个案已结案。"))
    return current


@transaction.atomic
def case_open(*, actor: Any, child: Child, opened_from: str = OpenedFrom.BY_HAND, source_ref: str = "") -> Case:
    """Open a case for the child, owned by the actor and the actor's organisation."""
    org = getattr(actor, "organization", None)
    if org is None:
        raise ValidationError(_("您的账号没有所属单位，不能立案。"))
    if org.kind in WORKER_ORG_KINDS:
        raise ValidationError(_("个案由镇（街道）或区民政局立案，再指派承接服务的社工。"))
    if Case.objects.filter(child=child, state=CaseState.OPEN).exists():
        raise ValidationError(_("该儿童已有在案的个案，请在原个案中继续工作。"))
    case = Case(
        child=child, owner_org=org, owner=_user(actor), opened_from=opened_from, source_ref=(source_ref or "")[:64]
    )
    case.full_clean(exclude=["child"])
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError:  # a concurrent opening won the race
        raise ValidationError(_("该儿童已有在案的个案，请在原个案中继续工作。")) from None
    _event(case, CaseEventKind.OPENED, actor, str(case.get_opened_from_display()))
    record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="case",
        object_id=case.pk,
        detail={"child": str(child.pk), "opened_from": opened_from},
    )
    return case


@transaction.atomic
def assessment_add(
    *,
    actor: Any,
    case: Case,
    scores: dict[str, Any],
    evidence: dict[str, str] | None = None,
    override_level: str = "",
    override_reason: str = "",
) -> Assessment:
    """Score the eight domains; the rule derives the level; the case's level, review date and the
    child's visit risk (shouhu.visits) follow the final level."""
    from shouhu.visits.services import risk_set

    current = _locked_open(case)
    try:
        clean = rules.validate_scores({k: _int(v) for k, v in scores.items()})
    except ValueError as exc:
        raise ValidationError(
            {"scores": [_("请为“%(d)s”选择1–4分。") % {"d": rules.DOMAIN_NAMES.get(str(exc), exc)}]}
        ) from None
    derived = rules.derive(clean)
    override_level = (override_level or "").strip()
    override_reason = (override_reason or "").strip()
    if override_level == derived.level:
        override_level = ""
    if override_level and not override_reason:
        raise ValidationError({"override_reason": [_("调整风险等级须写明理由。")]})
    item = Assessment(
        case=current,
        assessor=_user(actor),
        scores=clean,
        evidence_json=evidence_dump(evidence or {}),
        derived_level=derived.level,
        reasons=list(derived.reasons),
        rule_version=derived.version,
        override_level=override_level,
        override_reason=override_reason[:1000] if override_level else "",
    )
    item.full_clean()
    item.save()
    level = item.level
    previous_level = current.risk_level
    current.risk_level = level
    current.next_review_due = timezone.localdate() + timedelta(days=rules.review_days(level))
    current.version += 1
    current.save(update_fields=["risk_level", "next_review_due", "version"])
    reason = _("个案 #%(id)s 调查评估（%(v)s）：%(r)s") % {
        "id": current.pk,
        "v": derived.version,
        "r": "；".join(derived.reasons),
    }
    if override_level:
        reason += _("；人工调整：%(r)s") % {"r": override_reason}
    risk_set(actor=actor, child=current.child, level=level, reason=reason)
    if level != previous_level:
        _alert_level(actor, current, item)
    record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="case_assessment",
        object_id=item.pk,
        detail={
            "case": current.pk,
            "derived": derived.level,
            "level": level,
            "rule": derived.version,
            "override": bool(override_level),
        },
    )
    return item


def _alert_level(actor: Any, case: Case, item: Assessment) -> None:
    """Tell whom the level's alert table names (rules.alerted) that the case now stands at it; a
    link only, no child data in the message."""
    from shouhu.notify.services import Message, notify_many
    from shouhu.org.models import Role, User

    targets = rules.alerted(item.level)
    if not targets:
        return
    users: list[Any] = []
    if "owner" in targets:
        users += list(
            User.objects.filter(
                organization_id=case.owner_org_id,
                is_active=True,
                roles__role__in=[Role.TOWN_SUPERVISOR, Role.DISTRICT_OFFICER, Role.PROVIDER],
            ).distinct()
        )
    if "district" in targets:
        users += list(
            User.objects.filter(
                organization__code="civil_affairs", is_active=True, roles__role=Role.DISTRICT_OFFICER
            ).distinct()
        )
    me = getattr(actor, "pk", None)
    recipients = tuple(u for u in dict.fromkeys(users) if u.pk != me)
    if recipients:
        notify_many(
            [
                Message(
                    recipients=recipients,
                    kind="case_risk",
                    url=f"/cases/{case.pk}/",
                    title=_("个案 #%(id)s 经评估风险等级为%(level)s，请关注")
                    % {"id": case.pk, "level": item.get_level_display()},
                    body=_("请登录平台查看，详情不在通知中显示。"),
                    dedupe_key=f"case_risk:{item.pk}",
                )
            ]
        )


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


@transaction.atomic
def goal_add(*, actor: Any, case: Case, text: str) -> Goal:
    current = _locked_open(case)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("请填写目标。")]})
    goal = Goal(case=current, text=text[:200], created_by=_user(actor))
    goal.full_clean()
    goal.save()
    record(
        actor=actor, action=AuditAction.CREATE, object_type="case_goal", object_id=goal.pk, detail={"case": current.pk}
    )
    return goal


@transaction.atomic
def action_add(
    *, actor: Any, goal: Goal, text: str, mode: str = ActionMode.OWNER, need_code: str = "", note: str = ""
) -> Action:
    """An action under a goal; a referred action is referred at once (`referral_make`)."""
    from shouhu.org.models import NeedType

    _locked_open(goal.case)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("请填写措施。")]})
    need = NeedType.objects.filter(code=need_code).first() if need_code else None
    if mode == ActionMode.REFERRAL and need is None:
        raise ValidationError({"need": [_("转介请选择需求类型。")]})
    action = Action(
        goal=goal,
        text=text[:200],
        mode=mode,
        need_type=need if mode == ActionMode.REFERRAL else None,
        created_by=_user(actor),
    )
    action.full_clean()
    action.save()
    record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="case_action",
        object_id=action.pk,
        detail={"case": goal.case_id, "mode": mode, "need": need_code if need else ""},
    )
    if mode == ActionMode.REFERRAL:
        referral_make(actor=actor, action=action, note=note)
    return action


def referral_unit(child: Child, need_code: str) -> Any:
    """The member unit the duty catalogue names for the need (the child's own village/town for the
    local duties)."""
    from shouhu.policy.entitlements import LOCAL_UNITS
    from shouhu.policy.selectors import local_unit, routes

    unit_code = LOCAL_UNITS.get(need_code) or routes().get(need_code)
    return local_unit(child, unit_code) if unit_code else None


def child_school(child: Child) -> Any:
    """The child's school as an organisation, when the ledger's school name matches one (optional)."""
    from shouhu.org.models import Organization, OrgKind

    name = (child.school_name or "").strip()
    if not name:
        return None
    return Organization.objects.filter(kind=OrgKind.SCHOOL, name=name).first()


def referral_due(need_code: str) -> Any:
    from shouhu.lib.workdays import workday_deadline

    return workday_deadline(rules.service_days(need_code))


@transaction.atomic
def referral_make(*, actor: Any, action: Action, note: str = "") -> list[Any]:
    """Refer a referred action to the unit the catalogue names (and, for a school need, the
    child's school when known): a REFERRAL task each, asked by the case's organisation. Allowed
    again after a decline; refused while a referral of this action is still open."""
    from shouhu.tasks.models import OPEN_STATES, Task, TaskKind, TaskState
    from shouhu.tasks.services import task_open

    case = _locked_open(action.goal.case)
    if action.mode != ActionMode.REFERRAL or action.need_type is None:
        raise ValidationError(_("该措施由负责人自行落实，不需转介。"))
    if Task.objects.filter(
        source_type=REFERRAL_SOURCE, source_id__startswith=f"{action.pk}:", state__in=OPEN_STATES
    ).exists():
        raise ValidationError(_("该措施的转介仍在办理中。"))
    need = action.need_type
    child = case.child
    owners = []
    unit = referral_unit(child, need.code)
    if unit is None:
        raise ValidationError(
            {"need": [_("目录中没有承办“%(n)s”的单位，请联系区民政局（联席办）。") % {"n": need.name}]}
        )
    owners.append(unit)
    if need.code in SCHOOL_NEEDS:
        school = child_school(child)
        if school is not None and school.pk != unit.pk:
            owners.append(school)
    done = set(
        Task.objects.filter(
            source_type=REFERRAL_SOURCE, source_id__startswith=f"{action.pk}:", state=TaskState.DONE
        ).values_list("owner_id", flat=True)
    )
    owners = [o for o in owners if o.pk not in done] or owners[:1]  # a unit that completed is not asked again
    round_no = Task.objects.filter(source_type=REFERRAL_SOURCE, source_id__startswith=f"{action.pk}:").count()
    tasks = []
    for position, owner in enumerate(owners):
        task = task_open(
            actor=actor,
            owner=owner,
            kind=TaskKind.REFERRAL,
            child=child,
            need_type=need,
            title=_("个案转介：%(n)s") % {"n": need.name},
            detail=((note or "").strip() or action.text)[:1000],
            due_at=referral_due(need.code),
            source_type=REFERRAL_SOURCE,
            source_id=f"{action.pk}:{round_no + position + 1}",
        )
        # Who asked: a declined referral returns to the case's organisation.
        task.requester = case.owner_org
        task.save(update_fields=["requester"])
        tasks.append(task)
    record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="case_referral",
        object_id=action.pk,
        detail={"case": case.pk, "need": need.code, "tasks": [t.pk for t in tasks]},
    )
    return tasks


def referrals_of(actions: list[Action]) -> dict[int, list[Any]]:
    """Each action's referral tasks (every round, oldest first) with their steps."""
    from shouhu.tasks.models import Task

    out: dict[int, list[Any]] = {a.pk: [] for a in actions}
    if not actions:
        return out
    tasks = (
        Task.objects.filter(source_type=REFERRAL_SOURCE, child_id=actions[0].goal.case.child_id)
        .select_related("owner")
        .prefetch_related("events")
        .order_by("created_at", "id")
    )
    for task in tasks:
        action_id = int(task.source_id.split(":", 1)[0])
        if action_id in out:
            out[action_id].append(task)
    return out


@transaction.atomic
def service_add(*, actor: Any, case: Case, kind: str, on: date, hours: Any, provider: str, note: str = "") -> Service:
    current = _locked_open(case)
    try:
        amount = Decimal(str(hours))
    except (InvalidOperation, ValueError):
        raise ValidationError({"hours": [_("请填写时长。")]}) from None
    if amount <= 0:
        raise ValidationError({"hours": [_("时长须大于0。")]})
    item = Service(
        case=current,
        kind=(kind or "").strip()[:60],
        date=on,
        hours=amount,
        provider=(provider or "").strip()[:100],
        note=(note or "").strip(),
        recorded_by=_user(actor),
    )
    item.full_clean()
    item.save()
    record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="case_service",
        object_id=item.pk,
        detail={"case": current.pk, "hours": str(amount)},
    )
    return item


@transaction.atomic
def review_add(*, actor: Any, case: Case, on: date, note: str) -> Review:
    current = _locked_open(case)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": [_("请填写回顾意见。")]})
    item = Review(case=current, date=on, note=note, reviewer=_user(actor))
    item.full_clean()
    item.save()
    current.next_review_due = on + timedelta(days=rules.review_days(current.risk_level or rules.GREEN))
    current.version += 1
    current.save(update_fields=["next_review_due", "version"])
    record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="case_review",
        object_id=item.pk,
        detail={"case": current.pk},
    )
    return item


def _closure_fields(current: Case, reason: str, summary: str, transfer_to: str) -> None:
    if reason not in ClosureReason.values:
        raise ValidationError({"reason": [_("请选择结案原因。")]})
    summary = (summary or "").strip()
    if not summary:
        raise ValidationError({"summary": [_("请填写结案小结。")]})
    transfer_to = (transfer_to or "").strip()
    if reason == ClosureReason.MOVED_AWAY and not transfer_to:
        raise ValidationError({"transfer_to": [_("迁出本区须写明转交的迁入地民政部门。")]})
    current.closure_reason, current.closure_summary, current.transfer_to = reason, summary, transfer_to[:100]


def needs_approval(case: Case) -> bool:
    return case.risk_level in rules.HIGH_RISK


@transaction.atomic
def case_close(*, actor: Any, case: Case, reason: str, summary: str, transfer_to: str = "") -> Case:
    """Close a case. A red/orange case is not closed here: it is sent for the district office's
    approval (`close_request`), and `close_approve` closes it."""
    current = _locked_open(case)
    if needs_approval(current) and current.close_approved_at is None:
        raise ValidationError(_("红色、橙色风险个案结案须经区民政局（联席办）审批，请提交结案申请。"))
    _closure_fields(current, reason, summary, transfer_to)
    return _close(actor, current)


def _close(actor: Any, current: Case) -> Case:
    current.state, current.closed_at = CaseState.CLOSED, timezone.now()
    current.version += 1
    current.save(update_fields=["state", "closed_at", "closure_reason", "closure_summary", "transfer_to", "version"])
    _end_worker_share(current)
    note = f"{current.get_closure_reason_display()}：{current.closure_summary}"
    if current.transfer_to:
        note += f"（{_('转交')}：{current.transfer_to}）"
    _event(current, CaseEventKind.CLOSED, actor, note)
    record(
        actor=actor,
        action=AuditAction.UPDATE,
        object_type="case",
        object_id=current.pk,
        detail={
            "state": CaseState.CLOSED,
            "reason": current.closure_reason,
            "approved": current.close_approved_at is not None,
        },
    )
    return current


@transaction.atomic
def close_request(*, actor: Any, case: Case, reason: str, summary: str, transfer_to: str = "") -> Case:
    current = _locked_open(case)
    if current.close_requested_at is not None:
        raise ValidationError(_("已提交结案申请，等待审批。"))
    _closure_fields(current, reason, summary, transfer_to)
    current.close_requested_at, current.close_requested_by = timezone.now(), _user(actor)
    current.version += 1
    current.save(
        update_fields=[
            "closure_reason",
            "closure_summary",
            "transfer_to",
            "close_requested_at",
            "close_requested_by",
            "version",
        ]
    )
    _event(current, CaseEventKind.CLOSE_REQUESTED, actor, str(current.get_closure_reason_display()))
    record(
        actor=actor,
        action=AuditAction.UPDATE,
        object_type="case",
        object_id=current.pk,
        detail={"close_requested": True, "reason": current.closure_reason},
    )
    return current


@transaction.atomic
def close_approve(*, actor: Any, case: Case, note: str = "") -> Case:
    """The district office approves a requested closure; the case closes."""
    if not scope_for(actor).can(Cap.CASES_APPROVE):
        raise PermissionDenied
    current = _locked_open(case)
    if current.close_requested_at is None:
        raise ValidationError(_("该个案没有待审批的结案申请。"))
    current.close_approved_at, current.close_approved_by = timezone.now(), _user(actor)
    current.save(update_fields=["close_approved_at", "close_approved_by"])
    _event(current, CaseEventKind.CLOSE_APPROVED, actor, note)
    return _close(actor, current)


@transaction.atomic
def case_reopen(*, actor: Any, case: Case, reason: str) -> Case:
    current = Case.objects.select_for_update().get(pk=case.pk)
    if current.state != CaseState.CLOSED:
        raise ValidationError(_("该个案仍在案。"))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("请写明重新开案的理由。")]})
    if Case.objects.filter(child_id=current.child_id, state=CaseState.OPEN).exists():
        raise ValidationError(_("该儿童已有在案的个案。"))
    current.state, current.closed_at = CaseState.OPEN, None
    current.closure_reason, current.closure_summary, current.transfer_to = "", "", ""
    current.close_requested_at = current.close_approved_at = None
    current.close_requested_by = current.close_approved_by = None
    current.next_review_due = timezone.localdate() + timedelta(days=rules.review_days(current.risk_level or "green"))
    current.version += 1
    current.save(
        update_fields=[
            "state",
            "closed_at",
            "closure_reason",
            "closure_summary",
            "transfer_to",
            "close_requested_at",
            "close_approved_at",
            "close_requested_by",
            "close_approved_by",
            "next_review_due",
            "version",
        ]
    )
    _share_with_worker(current)
    _event(current, CaseEventKind.REOPENED, actor, reason)
    record(
        actor=actor,
        action=AuditAction.UPDATE,
        object_type="case",
        object_id=current.pk,
        detail={"state": CaseState.OPEN, "reopened": True},
    )
    return current
