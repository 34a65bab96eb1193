"""Applying the engine to the ledger: proposals a person confirms, entitlements, and the gaps
that become tasks in the responsible unit's inbox. The engine never decides silently: a category
counts only once a person has confirmed it, and every past decision is kept."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.workdays import workday_deadline
from shouhu.org.models import NeedType
from shouhu.policy.engine import JIANGSU_SOURCE, Evaluation, evaluate
from shouhu.policy.entitlements import entitlements_for, unit_for
from shouhu.policy.models import (
    JIANGSU_CODES,
    MANUAL_CODES,
    ChildCategory,
    ChildEntitlement,
    EntitlementState,
    EvaluationState,
    Origin,
    Proposal,
    ProposalKind,
    ProposalState,
)
from shouhu.policy.params import Params
from shouhu.policy.rules import CATEGORY_NAMES, Finding
from shouhu.policy.selectors import (
    facts_batch,
    facts_for,
    local_unit,
    manual_codes_by_child,
    params_on,
    routes,
    snapshot_children,
)
from shouhu.registry.history import attribute_to
from shouhu.registry.models import Child, LedgerStatus

logger = logging.getLogger(__name__)

GAP_WORKING_DAYS = 15  # 民发〔2019〕62号: each step within 15 working days
NO_TASK_NEEDS = {"home_visits"}  # the visit schedule is the visits capability's, not a gap


def _jiangsu_finding(ev: Evaluation) -> Finding | None:
    if ev.jiangsu_class is None:
        return None
    return Finding(f"jiangsu_{ev.jiangsu_class}", True, ev.jiangsu_explanation, JIANGSU_SOURCE, "2018")


def engine_codes(ev: Evaluation) -> dict[str, Finding]:
    codes = dict(ev.categories)
    jiangsu = _jiangsu_finding(ev)
    if jiangsu is not None:
        codes[jiangsu.code] = jiangsu
    return codes


def digest(ev: Evaluation, route_map: dict[str, str]) -> str:
    """What a change of would need writing: categories, class, near misses, entitlements, routes."""
    parts = [f"{f.code}|{f.version}|{f.explanation}" for f in ev.categories.values()]
    parts.append(f"J{ev.jiangsu_class}|{ev.jiangsu_explanation}")
    parts += [f"N{n.code}|{n.explanation}|{n.eligible_from}" for n in ev.near_misses]
    parts += [f"E{e.code}|{e.amount_monthly}|{e.explanation}|{route_map.get(e.need_type, '')}" for e in ev.entitlements]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def stored_result(ev: Evaluation) -> dict[str, Any]:
    """What the child's page shows of the last evaluation beyond the proposals: the near misses and
    the Jiangsu reasoning (kept small: the first night writes one row per child)."""
    return {
        "as_of": ev.as_of.isoformat(),
        "jiangsu_class": ev.jiangsu_class,
        "jiangsu_explanation": ev.jiangsu_explanation,
        "near_misses": [
            {
                "code": n.code,
                "explanation": n.explanation,
                **({"eligible_from": n.eligible_from.isoformat()} if n.eligible_from else {}),
            }
            for n in ev.near_misses
        ],
    }


def _label(code: str) -> str:
    return CATEGORY_NAMES.get(code) or JIANGSU_CODES.get(code, code)


def _deadline(day: date) -> datetime:
    return workday_deadline(GAP_WORKING_DAYS, day)


# ----- evaluation ----------------------------------------------------------------------------


def evaluate_child(
    *,
    child_id: Any,
    actor: Any = None,
    as_of: date | None = None,
    params: Params | None = None,
    route_map: dict[str, str] | None = None,
) -> Evaluation:
    """Evaluate one child now and bring proposals, entitlements and tasks up to date."""
    as_of = as_of or timezone.localdate()
    params = params or params_on(as_of)
    route_map = route_map if route_map is not None else routes()
    child = snapshot_children().select_related("region").get(pk=child_id)
    manual = manual_codes_by_child([child.pk], as_of).get(child.pk, set())
    ev = evaluate(facts_for(child, as_of, params, manual), params)
    apply_evaluation(child=child, ev=ev, actor=actor, as_of=as_of, params=params, route_map=route_map)
    return ev


@transaction.atomic
def apply_evaluation(
    *, child: Child, ev: Evaluation, actor: Any, as_of: date, params: Params, route_map: dict[str, str]
) -> None:
    engine = engine_codes(ev) if child.status == LedgerStatus.ACTIVE else {}
    current = {c.code: c for c in child.categories.filter(valid_to__isnull=True)}
    pending = {p.code: p for p in child.proposals.filter(state=ProposalState.PENDING)}
    near = {n.code: n for n in ev.near_misses}

    for code, finding in engine.items():
        if code in current:
            continue
        _propose(child, ProposalKind.ADD, code, finding.explanation, finding.source, finding.version, as_of, pending)
    for code, category in current.items():
        if code in engine or category.origin == Origin.PERSON:
            continue
        why = (
            near[code].explanation
            if code in near
            else _("%(name)s：按当前登记的情况已不符合认定条件") % {"name": _label(code)}
        )
        if child.status != LedgerStatus.ACTIVE:
            why = _("儿童已退出台账，建议终止认定")
        _propose(child, ProposalKind.REMOVE, code, why, category.source, category.rule_version, as_of, pending)
    for code, proposal in pending.items():
        still = (proposal.kind == ProposalKind.ADD and code in engine and code not in current) or (
            proposal.kind == ProposalKind.REMOVE and code in current and code not in engine
        )
        if not still and proposal.state == ProposalState.PENDING:
            proposal.state = ProposalState.SUPERSEDED
            proposal.decided_at = timezone.now()
            proposal.save(update_fields=["state", "decided_at"])

    state = {
        "digest": digest(ev, route_map),
        "evaluated_at": timezone.now(),
        "as_of": as_of,
        "result": stored_result(ev),
    }
    if not EvaluationState.objects.filter(child=child).update(**state):
        EvaluationState.objects.create(child=child, **state)
    sync_entitlements(child=child, ev=ev, actor=actor, as_of=as_of, params=params, route_map=route_map)


def _propose(
    child: Child,
    kind: str,
    code: str,
    explanation: str,
    source: str,
    version: str,
    as_of: date,
    pending: dict[str, Proposal],
) -> None:
    existing = pending.get(code)
    if existing is not None and existing.kind == kind:
        if existing.explanation != explanation:
            existing.explanation, existing.as_of = explanation, as_of
            existing.save(update_fields=["explanation", "as_of"])
        return
    if existing is not None:
        existing.state, existing.decided_at = ProposalState.SUPERSEDED, timezone.now()
        existing.save(update_fields=["state", "decided_at"])
    pending[code] = Proposal.objects.create(
        child=child,
        kind=kind,
        code=code,
        explanation=explanation,
        source=source[:120],
        rule_version=version,
        as_of=as_of,
    )


# ----- decisions by a person -----------------------------------------------------------------


@transaction.atomic
def proposal_decide(*, actor: Any, proposal: Proposal, confirm: bool, reason: str, request: Any = None) -> Proposal:
    current = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if current.state != ProposalState.PENDING:
        raise ValidationError(_("该建议已经处理或已失效，请刷新页面。"))
    reason = reason.strip()
    if not confirm and not reason:
        raise ValidationError({"reason": [_("驳回时请填写理由。")]})
    today = timezone.localdate()
    current.state = ProposalState.CONFIRMED if confirm else ProposalState.REJECTED
    current.decided_by, current.decided_at, current.reason = actor, timezone.now(), reason[:300]
    current.save(update_fields=["state", "decided_by", "decided_at", "reason"])
    if confirm and current.kind == ProposalKind.ADD:
        if current.code.startswith("jiangsu_"):
            # One Jiangsu class at a time: the new class ends the old one.
            _end_categories(
                current.child,
                [c for c in JIANGSU_CODES if c != current.code],
                today,
                _("改认定为%(name)s") % {"name": _label(current.code)},
            )
        ChildCategory.objects.create(
            child=current.child,
            code=current.code,
            explanation=current.explanation,
            source=current.source,
            rule_version=current.rule_version,
            origin=Origin.ENGINE,
            valid_from=today,
            confirmed_by=actor,
        )
    elif confirm:
        _end_categories(current.child, [current.code], today, reason or _("经确认不再符合条件"))
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=current.child_id,
        request=request,
        detail={"proposal": current.pk, "code": current.code, "kind": current.kind, "decision": current.state},
    )
    transaction.on_commit(lambda: safe_evaluate(current.child_id, actor=actor))
    return current


def _end_categories(child: Child, codes: Iterable[str], day: date, reason: str) -> None:
    for category in child.categories.filter(code__in=list(codes), valid_to__isnull=True):
        category.valid_to = max(day, category.valid_from)
        category.ended_reason = reason[:200]
        category.save(update_fields=["valid_to", "ended_reason"])


@transaction.atomic
def manual_category_set(*, actor: Any, child: Child, code: str, on: bool, reason: str, request: Any = None) -> None:
    """监护缺失 / 监护不当 are decided by a person (assessments, reports), with a reason."""
    if code not in MANUAL_CODES:
        raise ValidationError({"code": [_("该类别由政策引擎根据登记事实提出，不能直接设定。")]})
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": [_("请填写认定或终止的理由。")]})
    today = timezone.localdate()
    exists = child.categories.filter(code=code, valid_to__isnull=True).exists()
    if on and not exists:
        ChildCategory.objects.create(
            child=child,
            code=code,
            explanation=reason[:2000],
            origin=Origin.PERSON,
            source="国发〔2016〕36号；未成年人保护法",
            valid_from=today,
            confirmed_by=actor,
        )
    elif not on and exists:
        _end_categories(child, [code], today, reason)
    else:
        return
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"manual_category": code, "on": on},
    )
    transaction.on_commit(lambda: safe_evaluate(child.pk, actor=actor))


# ----- entitlements and their gaps ------------------------------------------------------------


def sync_entitlements(
    *, child: Child, ev: Evaluation, actor: Any, as_of: date, params: Params, route_map: dict[str, str]
) -> None:
    """Entitlements follow the *confirmed* categories; an unserved one is a task for its unit."""
    from shouhu.tasks.models import TaskKind
    from shouhu.tasks.services import cancel_for_source, task_open

    confirmed = {c.code: c for c in child.categories.filter(valid_to__isnull=True)}
    if child.status != LedgerStatus.ACTIVE:
        confirmed = {}
    if not confirmed and not child.entitlements.exclude(state=EntitlementState.ENDED).exists():
        return  # nothing confirmed, nothing owed: the common case of a first evaluation
    findings = {
        code: ev.categories.get(code) or Finding(code, True, c.explanation, c.source, c.rule_version)
        for code, c in confirmed.items()
        if not code.startswith("jiangsu_")
    }
    jclass = next((int(code.split("_")[1]) for code in confirmed if code.startswith("jiangsu_")), None)
    facts = facts_for(child, as_of, params, {c for c in confirmed if c in MANUAL_CODES})
    wanted = {e.code: e for e in entitlements_for(facts, params, findings, jclass)}
    live = {e.code: e for e in child.entitlements.exclude(state=EntitlementState.ENDED)}
    need_types = {n.code: n for n in NeedType.objects.filter(code__in=[e.need_type for e in wanted.values()])}

    for code, ent in wanted.items():
        row = live.get(code)
        unit = local_unit(child, unit_for(ent, route_map))
        if row is None:
            live[code] = ChildEntitlement.objects.create(
                child=child,
                code=code,
                name=ent.name,
                need_type=need_types.get(ent.need_type),
                unit=unit,
                explanation=ent.explanation,
                source=ent.source[:120],
                amount_due=ent.amount_monthly,
            )
        elif (row.explanation, row.amount_due, row.unit_id) != (
            ent.explanation,
            ent.amount_monthly,
            unit.pk if unit else None,
        ):
            row.explanation, row.amount_due, row.unit = ent.explanation, ent.amount_monthly, unit
            row.save(update_fields=["explanation", "amount_due", "unit", "updated_at"])
    for code, row in list(live.items()):
        if code not in wanted and row.state in (EntitlementState.ELIGIBLE, EntitlementState.APPLIED):
            row.state, row.ended_on = EntitlementState.ENDED, as_of
            row.save(update_fields=["state", "ended_on", "updated_at"])
            cancel_for_source(
                actor=actor, source_type="entitlement", source_id=str(row.pk), outcome=_("认定类别变化，该待遇不再适用")
            )
            del live[code]

    entrustment = live.get("entrustment")
    if entrustment is not None and entrustment.state == EntitlementState.ELIGIBLE:
        signed = (
            child.entrustments.filter(agreement_signed=True)
            .exclude(until__lt=as_of)
            .order_by("-agreement_date")
            .first()
        )
        if signed is not None:
            entrustment.state, entrustment.receiving_from = EntitlementState.RECEIVING, signed.agreement_date
            entrustment.save(update_fields=["state", "receiving_from", "updated_at"])

    for row in live.values():
        if row.state != EntitlementState.ELIGIBLE or row.unit is None or row.code in NO_TASK_NEEDS:
            continue
        task_open(
            actor=actor,
            owner=row.unit,
            kind=TaskKind.ENTITLEMENT_GAP,
            child=child,
            need_type=row.need_type,
            title=_("%(what)s：%(child)s") % {"what": row.name, "child": child.name},
            detail=row.explanation,
            source_type="entitlement",
            source_id=str(row.pk),
            due_at=_deadline(as_of),
        )


ENTITLEMENT_TRANSITIONS: dict[str, set[EntitlementState]] = {
    EntitlementState.ELIGIBLE: {EntitlementState.APPLIED, EntitlementState.RECEIVING, EntitlementState.REFUSED},
    EntitlementState.APPLIED: {EntitlementState.RECEIVING, EntitlementState.REFUSED},
    EntitlementState.RECEIVING: {EntitlementState.ENDED},
    EntitlementState.REFUSED: {EntitlementState.APPLIED},
    EntitlementState.ENDED: set(),
}


@transaction.atomic
def entitlement_record(
    *,
    actor: Any,
    entitlement: ChildEntitlement,
    state: str,
    version: int | None,
    on: date | None = None,
    amount: Decimal | None = None,
    reason: str = "",
    request: Any = None,
) -> ChildEntitlement:
    """Record that an entitlement was applied for, is received, was refused, or ended."""
    from shouhu.registry.services import StaleEdit
    from shouhu.tasks.models import OPEN_STATES, Task, TaskState
    from shouhu.tasks.services import task_close

    current = ChildEntitlement.objects.select_for_update().get(pk=entitlement.pk)
    if version is None or current.version != version:
        raise StaleEdit(current.version)
    if state not in ENTITLEMENT_TRANSITIONS.get(current.state, set()):
        raise ValidationError(
            {
                "state": [
                    _("不能从“%(a)s”改为“%(b)s”。")
                    % {
                        "a": current.get_state_display(),
                        "b": EntitlementState(state).label if state in EntitlementState.values else state,
                    }
                ]
            }
        )
    on = on or timezone.localdate()
    if on > timezone.localdate():
        raise ValidationError({"on": [_("日期不能晚于今天。")]})
    if amount is not None and amount < 0:
        raise ValidationError({"amount": [_("金额不能为负数。")]})
    if state == EntitlementState.REFUSED and not reason.strip():
        raise ValidationError({"reason": [_("不予享受时请填写理由。")]})
    current.state = state
    if state == EntitlementState.APPLIED:
        current.applied_on = on
    elif state == EntitlementState.RECEIVING:
        current.receiving_from, current.amount_granted = on, amount
    elif state == EntitlementState.REFUSED:
        current.refused_reason = reason.strip()[:200]
    elif state == EntitlementState.ENDED:
        current.ended_on = on
    current.version += 1
    attribute_to(current, actor)
    current.save()
    for task in Task.objects.filter(source_type="entitlement", source_id=str(current.pk), state__in=OPEN_STATES):
        task_close(actor=actor, task=task, state=TaskState.DONE, outcome=current.get_state_display(), version=None)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=current.child_id,
        request=request,
        detail={"entitlement": current.code, "state": state},
    )
    return current


# ----- change hooks and the nightly run -------------------------------------------------------


def safe_evaluate(child_id: Any, *, actor: Any = None) -> None:
    """Evaluate after a commit; a failure is logged and left to the nightly run, never raised."""
    try:
        evaluate_child(child_id=child_id, actor=actor)
    except Child.DoesNotExist:
        return
    except Exception:  # noqa: BLE001 - the user's save has committed; the nightly run catches up
        logger.exception("policy evaluation failed for child %s", child_id)


def _apply_changed(
    changed: list[tuple[Any, Evaluation]],
    digests: dict[Any, str],
    *,
    actor: Any,
    as_of: date,
    params: Params,
    route_map: dict[str, str],
) -> int:
    """Write the changed evaluations of a batch. Children never evaluated before and with nothing
    recorded yet (a new import, the first night) take a bulk path: their proposals and evaluation
    state are inserted in a few statements; every other child goes through `apply_evaluation`."""
    ids = [child_id for child_id, _ev in changed]
    busy = set(
        Proposal.objects.filter(child_id__in=ids, state=ProposalState.PENDING).values_list("child_id", flat=True)
    )
    busy |= set(
        ChildCategory.objects.filter(child_id__in=ids, valid_to__isnull=True).values_list("child_id", flat=True)
    )
    busy |= set(
        ChildEntitlement.objects.filter(child_id__in=ids)
        .exclude(state=EntitlementState.ENDED)
        .values_list("child_id", flat=True)
    )
    fresh = [(child_id, ev) for child_id, ev in changed if child_id not in digests and child_id not in busy]
    rest = [(child_id, ev) for child_id, ev in changed if child_id in digests or child_id in busy]
    now = timezone.now()
    with transaction.atomic():
        Proposal.objects.bulk_create(
            [
                Proposal(
                    child_id=child_id,
                    kind=ProposalKind.ADD,
                    code=code,
                    explanation=finding.explanation,
                    source=finding.source[:120],
                    rule_version=finding.version,
                    as_of=as_of,
                )
                for child_id, ev in fresh
                for code, finding in engine_codes(ev).items()
            ],
            batch_size=1000,
        )
        EvaluationState.objects.bulk_create(
            [
                EvaluationState(
                    child_id=child_id,
                    digest=digest(ev, route_map),
                    evaluated_at=now,
                    as_of=as_of,
                    result=stored_result(ev),
                )
                for child_id, ev in fresh
            ],
            batch_size=1000,
        )
    if rest:
        children = snapshot_children().select_related("region").in_bulk([child_id for child_id, _ev in rest])
        for child_id, ev in rest:
            apply_evaluation(
                child=children[child_id], ev=ev, actor=actor, as_of=as_of, params=params, route_map=route_map
            )
    return len(changed)


def reevaluate_all(*, as_of: date | None = None, batch: int = 1000, actor: Any = None) -> dict[str, int]:
    """Re-evaluate every child in the ledger (ages and durations change with time alone).

    Only children whose result changed since their last evaluation are written to.
    """
    ids = list(Child.objects.filter(status=LedgerStatus.ACTIVE).order_by("pk").values_list("pk", flat=True))
    return reevaluate_children(ids, as_of=as_of, batch=batch, actor=actor)


def reevaluate_children(
    ids: Iterable[Any], *, as_of: date | None = None, batch: int = 1000, actor: Any = None
) -> dict[str, int]:
    """Evaluate the given children a batch at a time (the nightly run's path; an import's new
    children take it after commit instead of one evaluation each). Children that no longer exist
    or have left the ledger are skipped."""
    as_of = as_of or timezone.localdate()
    params = params_on(as_of)
    route_map = routes()
    counts = {"children": 0, "changed": 0}
    ids = list(ids)
    for start in range(0, len(ids), batch):
        chunk = list(
            Child.objects.filter(pk__in=ids[start : start + batch], status=LedgerStatus.ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        facts = facts_batch(chunk, as_of, params)
        digests = dict(EvaluationState.objects.filter(child_id__in=chunk).values_list("child_id", "digest"))
        changed = []
        for child_id, child_facts in facts.items():
            ev = evaluate(child_facts, params)
            counts["children"] += 1
            if digests.get(child_id) != digest(ev, route_map):
                changed.append((child_id, ev))
        if changed:
            counts["changed"] += _apply_changed(
                changed, digests, actor=actor, as_of=as_of, params=params, route_map=route_map
            )
    return counts
