"""django-simple-history's records, with deletions that can be written in bulk.

Deleting a record writes its "-" history row from simple-history's `post_delete` receiver, one
INSERT (and one history-manager class built) per record. Undoing a survey import deletes every
child it created with their families, situations, carers and categories: for 2,000 children,
12,600 records and 17 s of INSERTs. Inside `deletions_in_bulk` the receiver only notes the
record's values; the rows are written when the block ends, one `bulk_create` per model — the same
rows (a test compares them with per-record deletion). The note is per thread (a context variable),
so other requests deleting meanwhile are not affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.utils import timezone
from simple_history.models import HistoricalRecords

# (history model, tracked values, user or None) of each record deleted in the block
_history_models: dict[type, Any] = {}
_deleted: ContextVar[list[tuple[Any, dict[str, Any], Any]] | None] = ContextVar("shouhu_deleted", default=None)


class ShouhuHistoricalRecords(HistoricalRecords):
    """`HistoricalRecords` whose deletions `deletions_in_bulk` can gather.

    A history row names its user by id without a database constraint (`user_db_constraint`), as
    an audit event does: the row is a record of who changed what, checked by nobody against the
    user table. Django still sets it to NULL when a user is deleted (`on_delete=SET_NULL` is the
    ORM's); the database no longer checks, and locks the user's row for, each of the ≈ 630,000
    history rows an import of 100,000 children writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("user_db_constraint", False)
        super().__init__(*args, **kwargs)

    def post_delete(self, instance: Any, using: Any = None, **kwargs: Any) -> None:
        pending = _deleted.get()
        if pending is None or self.cascade_delete_history:
            super().post_delete(instance, using=using, **kwargs)
            return
        history_model = _history_models.get(type(instance))
        if history_model is None:  # simple-history builds a manager class at each access: once per model
            history_model = _history_models[type(instance)] = getattr(type(instance), self.manager_name).model
        # Noted now: the deletion sets the instance's primary key to None once every signal is sent.
        values = {field.attname: getattr(instance, field.attname) for field in history_model.tracked_fields}
        pending.append((history_model, values, getattr(instance, "_history_user", None)))


@contextmanager
def deletions_in_bulk(*, actor: Any) -> Iterator[None]:
    """Write the "-" history rows of the records deleted inside the block at its end, attributed
    to `actor` (unless a record names its own `_history_user`). Use inside the deleting transaction:
    when the block raises, nothing is written and the transaction's rollback undoes the rest."""
    token = _deleted.set([])
    try:
        yield
        pending = _deleted.get() or []
    finally:
        _deleted.reset(token)
    user = actor if getattr(actor, "is_authenticated", False) else None
    now = timezone.now()
    by_model: dict[Any, list[Any]] = {}
    for history_model, values, own_user in pending:
        by_model.setdefault(history_model, []).append(
            history_model(
                history_date=now, history_user=own_user or user, history_change_reason=None, history_type="-", **values
            )
        )
    for history_model, rows in by_model.items():
        history_model.objects.bulk_create(rows, batch_size=1000)
