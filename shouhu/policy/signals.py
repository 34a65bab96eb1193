"""Re-evaluate a child after any change to its facts, once per transaction, after commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation

_PENDING_ATTR = "_shouhu_policy_pending"
_deleting: ContextVar[bool] = ContextVar("shouhu_policy_deleting", default=False)
_by_caller: ContextVar[bool] = ContextVar("shouhu_policy_by_caller", default=False)


def _child_ids(instance: Any) -> list[Any]:
    if isinstance(instance, Child):
        return [instance.pk]
    if isinstance(instance, FamilyMember | Entrustment):
        return [instance.child_id]
    if isinstance(instance, ParentSituation):
        return list(FamilyMember.objects.filter(pk=instance.member_id).values_list("child_id", flat=True))
    if isinstance(instance, Household):
        return list(instance.children.values_list("pk", flat=True))
    return []


def schedule(child_id: Any) -> None:
    """Evaluate the child once when the current transaction commits (at once in autocommit).

    The set of children already scheduled lives on the outermost atomic block, so it ends with
    the transaction: after a rollback nothing is left behind to suppress a later evaluation.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block and connection.atomic_blocks:
        outer = connection.atomic_blocks[0]
        pending: set[Any] = outer.__dict__.setdefault(_PENDING_ATTR, set())
        if child_id in pending:
            return
        pending.add(child_id)

    def run() -> None:
        from shouhu.policy.services import safe_evaluate

        safe_evaluate(child_id)

    transaction.on_commit(run)


@contextmanager
def deleting_children() -> Iterator[None]:
    """Inside: what is deleted belongs to children deleted with it (an import's undo), so a deleted
    record schedules no evaluation: there is no child left to evaluate, and finding the child of
    each deleted parent situation was a query apiece. Per thread (a context variable)."""
    token = _deleting.set(True)
    try:
        yield
    finally:
        _deleting.reset(token)


@contextmanager
def evaluated_by_caller() -> Iterator[None]:
    """Inside: a saved or deleted fact schedules no evaluation of its child, because the caller
    evaluates the children it changed itself, in batches, after commit (a survey import:
    `intake.jobs.evaluate_import`; one evaluation per child after each commit had been a dozen
    queries per row). Per thread (a context variable)."""
    token = _by_caller.set(True)
    try:
        yield
    finally:
        _by_caller.reset(token)


@receiver(post_save, dispatch_uid="policy_facts_saved")
@receiver(post_delete, dispatch_uid="policy_facts_deleted")
def facts_changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or sender not in (Child, FamilyMember, ParentSituation, Household, Entrustment):
        return
    if _by_caller.get() or (kwargs.get("signal") is post_delete and _deleting.get()):
        return
    for child_id in _child_ids(instance):
        if child_id is not None:
            schedule(child_id)
