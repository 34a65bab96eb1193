"""A per-process memo of slow-changing reference data for the hot paths.

A mandatory report's submission looks up the place's region, the police station that covers the
town and the policy parameters in force: three queries that return the same answer all day. With
twenty school systems reporting at once they were a fifth of the request. `memo` keeps such an
answer for `SHOUHU_REFCACHE_SECONDS` (30 s by default; 0 turns the memo off).

Freshness: a change saved through the ORM in this process clears the whole memo at once (the
owning models register with `clear_on_change`); another server process sees the change within the
TTL. Changes that send no signal (`QuerySet.update`, raw SQL) wait for the TTL too — reference data
changes through the admin and the policy page, which send them. The test suite clears the memo
before each test (shouhu/conftest.py).

Cached values are shared between requests and threads: cache immutable things (a frozen dataclass,
an id, a tuple) or model instances that the callers only read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.conf import settings
from django.db.models.signals import m2m_changed, post_delete, post_save

T = TypeVar("T")

_MISSING = object()
_entries: dict[tuple[str, Hashable], tuple[float, Any]] = {}
_generation = 0
_lock = threading.Lock()


def memo(namespace: str, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`'s answer for (namespace, key), computed at most once per TTL in this process."""
    ttl = settings.SHOUHU_REFCACHE_SECONDS
    if ttl <= 0:
        return compute()
    now = time.monotonic()
    entry = _entries.get((namespace, key), _MISSING)
    if entry is not _MISSING and entry[0] > now:  # type: ignore[index]
        return entry[1]  # type: ignore[index]
    generation = _generation
    value = compute()
    with _lock:
        if generation == _generation:  # not cleared while computing: the answer may be stale otherwise
            _entries[(namespace, key)] = (now + ttl, value)
    return value


def clear(*_args: Any, **_kwargs: Any) -> None:
    """Forget everything (a signal receiver too)."""
    global _generation
    with _lock:
        _generation += 1
        _entries.clear()


def clear_on_change(*models: Any) -> None:
    """Clear the memo whenever one of `models` is saved or deleted, or an m2m of it changes."""
    for model in models:
        uid = f"shouhu.refcache.{model._meta.label}"
        post_save.connect(clear, sender=model, dispatch_uid=uid + ".save", weak=False)
        post_delete.connect(clear, sender=model, dispatch_uid=uid + ".delete", weak=False)
        for field in model._meta.many_to_many:
            m2m_changed.connect(
                clear, sender=field.remote_field.through, dispatch_uid=f"{uid}.{field.name}", weak=False
            )
