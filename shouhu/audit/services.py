"""Writing and verifying the audit chain."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from shouhu.audit.models import AuditEvent, ChainHead
from shouhu.lib.bulkcopy import Builder, CopyWriter

GENESIS = "0" * 64


def _canonical(event: AuditEvent) -> bytes:
    payload = {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor_id,
        "actor_name": event.actor_name,
        "org": event.organization_id,
        "org_name": event.organization_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_label": event.object_label,
        "detail": event.detail,
        "ip": event.ip,
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(event)).hexdigest()


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    *,
    actor: Any,
    action: str,
    object_type: str = "",
    object_id: Any = "",
    object_label: str = "",
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    actor_name: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction when there is one.

    Never put personal data (ID numbers, phones, addresses) in `detail` or `object_label`.
    """
    return record_many(
        actor=actor,
        action=action,
        request=request,
        actor_name=actor_name,
        events=[{"object_type": object_type, "object_id": object_id, "object_label": object_label, "detail": detail}],
    )[0]


def record_many(
    *,
    actor: Any,
    action: str,
    events: list[dict[str, Any]],
    request: HttpRequest | None = None,
    actor_name: str = "",
) -> list[AuditEvent]:
    """Append several events of one actor and action (each a dict of object_type, object_id,
    object_label, detail) in one statement, chained in order: a bulk write (an import creating
    thousands of children) keeps one event per object without one round trip per event."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    org = getattr(user, "organization", None) if user else None
    if not events:
        return []
    held = _HELD.get()
    # Inside the caller's transaction without a SAVEPOINT (two round trips fewer per write): an
    # audit failure fails the caller's whole transaction, as it must.
    with transaction.atomic(savepoint=False):
        # Held: locked by this transaction since the block's first append.
        head = held.head if held is not None else None
        if head is None:
            head = ChainHead.objects.select_for_update().filter(id=1).first()
            if head is None:
                head = ChainHead.objects.create(id=1)
                head = ChainHead.objects.select_for_update().get(id=1)
        at, ip = timezone.now(), client_ip(request)
        seq, prev = head.last_seq, head.last_hash
        common = {
            "at": at,
            "actor_id": user.pk if user else None,
            "actor_name": (user.get_username() if user else actor_name)[:150],
            "organization_id": org.pk if org else None,
            "organization_name": (org.name if org else "")[:100],
            "action": action,
            "ip": ip,
        }
        new_event = _event_builder()
        out = []
        for item in events:
            seq += 1
            event = new_event(
                {
                    **common,
                    "seq": seq,
                    "object_type": item.get("object_type") or "",
                    "object_id": str(item.get("object_id", ""))[:64],
                    "object_label": (item.get("object_label") or "")[:100],
                    "detail": item.get("detail") or {},
                    "prev_hash": prev,
                }
            )
            event.hash = prev = compute_hash(prev, event)
            out.append(event)
        if len(out) == 1:
            out[0].save(force_insert=True)
        elif connection.vendor == "postgresql":
            _copy_events(out)
        else:
            AuditEvent.objects.bulk_create(out, batch_size=1000)
        if held is not None:
            head.last_seq, head.last_hash, head.count = seq, prev, head.count + len(out)
            held.head = head  # written back when the block ends
        else:
            ChainHead.objects.filter(id=1).update(last_seq=seq, last_hash=prev, count=head.count + len(out))
    return out


@dataclass
class _Held:
    head: ChainHead | None = None


_HELD: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("shouhu_audit_chain_held", default=None)


@contextlib.contextmanager
def chain_held() -> Iterator[None]:
    """For one transaction that appends events batch after batch (a survey import): the chain's
    head is locked and read by the block's first append, kept in memory for the appends after it
    and written back once, when the block ends — not read and written again for every batch (two
    statements, each of which would wait for the import's writes behind, lib.writebehind). The
    lock is this transaction's until it ends, so nobody else appends meanwhile. A failure inside
    must fail the transaction (nothing inside may catch a database error and go on): the head
    kept would be ahead of the events rolled back. Blocks do not nest."""
    if _HELD.get() is not None:
        raise RuntimeError("chain_held: already holding the chain")
    held = _Held()
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
    head = held.head  # only after a normal end: an exception rolls the transaction back
    if head is not None:
        ChainHead.objects.filter(id=1).update(last_seq=head.last_seq, last_hash=head.last_hash, count=head.count)


@functools.cache
def _event_builder() -> Builder:
    """Built once per process (an event is recorded on every view of a child's record): any column
    the event's values name."""
    return Builder(AuditEvent, [field.name for field in AuditEvent._meta.concrete_fields])


def _copy_events(events: list[AuditEvent]) -> None:
    """Write chained events with COPY (PostgreSQL): the values `bulk_create` would send (the
    detail as JSON), without an INSERT statement's parameters to build and parse per event. Their
    numbers are the chain's, not the sequence's."""
    CopyWriter(connection).insert(AuditEvent, events, ids_given=True)


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    broken_seq: int | None = None
    reason: str = ""


def verify_chain(batch: int = 5000) -> Verification:
    """Walk the chain in order; report the first event whose link does not hold."""
    head = ChainHead.objects.filter(id=1).first()
    prev_hash = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        rows = list(AuditEvent.objects.filter(seq__gte=expected_seq).order_by("seq")[:batch])
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return Verification(False, count, expected_seq, f"event {expected_seq} is missing (deleted)")
            if event.prev_hash != prev_hash:
                return Verification(False, count, event.seq, "prev_hash does not match the previous event")
            if compute_hash(prev_hash, event) != event.hash:
                return Verification(False, count, event.seq, "content does not match its hash (edited)")
            prev_hash = event.hash
            expected_seq += 1
            count += 1
            last_seq = event.seq
    if head is not None and (head.last_seq != last_seq or head.last_hash != prev_hash):
        return Verification(False, count, last_seq + 1, "events after the last one found are missing (deleted)")
    return Verification(True, count)
