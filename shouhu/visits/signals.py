"""Keep visit plans current: a child entering or leaving the ledger, a category confirmed or ended."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver


def schedule(child_id: Any) -> None:
    """Refresh the child's plan when the current transaction commits (at once in autocommit).

    Not deduplicated: a refresh is a few queries, and a set of children already scheduled would
    outlive a rolled-back savepoint whose callbacks were discarded with it."""
    from shouhu.visits.services import refresh_plans

    transaction.on_commit(lambda: refresh_plans([child_id]))


@receiver(post_save, sender="registry.Child", dispatch_uid="visits_child_saved")
def child_saved(
    sender: Any, instance: Any, created: bool = False, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw:
        return
    schedule(instance.pk)


@receiver(post_save, sender="policy.ChildCategory", dispatch_uid="visits_category_saved")
def category_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        schedule(instance.child_id)
