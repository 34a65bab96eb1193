"""Sending notifications: store them in the caller's transaction, deliver them after the commit.

Callers use `notify()`. Its contract: `title` and `body` are a neutral sentence ("有 3 项走访已逾期",
"收到一份新的强制报告，请及时处理") and `url` a relative link into the platform, where the reader's own
access rules decide what they see. Never put a child's name, ID number, address or the facts of a
case into a notification: SMS and WeCom messages pass through third parties and lock screens.

Delivery is an outbox: `notify()` writes a `Notification` (the inbox entry) and one pending
`Delivery` per external channel; after the commit a background task runs `deliver_pending()` for
them, and the periodic job `deliver_notifications` (every minute) retries whatever failed, with
exponential backoff, until it is sent or has used up `SHOUHU_NOTIFY_MAX_ATTEMPTS`. If the caller's
transaction rolls back, nothing was notified.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from shouhu.notify import channels as notify_channels
from shouhu.notify.models import DUE_STATES, Delivery, DeliveryState, Notification

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # a claimed delivery is due again if its worker died mid-send
BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 3600
CLAIM_BATCH = 50


def max_attempts() -> int:
    return int(getattr(settings, "SHOUHU_NOTIFY_MAX_ATTEMPTS", 20))


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, … minutes after the n-th failed attempt, at most an hour."""
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


# ----- notify ------------------------------------------------------------------------------------


def _channel_names(channels: Sequence[str] | None) -> list[str]:
    enabled = notify_channels.enabled_channels()
    if channels is None:
        return list(enabled)
    unknown = set(channels) - notify_channels.KNOWN_CHANNELS - set(enabled)
    if unknown:
        raise ValueError(f"unknown notification channel(s): {sorted(unknown)}")
    # A channel the deployment has not enabled is skipped: the inbox always has the notification.
    return [name for name in dict.fromkeys(channels) if name in enabled]


def _recipients(recipients: Iterable[Any] | None, organization: Any, roles: Iterable[str] | None) -> list[Any]:
    from shouhu.org.models import User

    if recipients is None:
        if organization is None:
            raise ValueError("notify() needs recipients or an organization")
        users = User.objects.filter(organization=organization, is_active=True)
        if roles is not None:
            users = users.filter(roles__role__in=list(roles)).distinct()
        return list(users.order_by("id"))
    return [u for u in dict.fromkeys(recipients) if u.is_active]


def _insert(rows: list[Notification]) -> list[Notification]:
    """Insert the notifications; a row whose dedupe key another transaction took meanwhile is skipped."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            created = Notification.objects.bulk_create(rows)
        if all(n.pk for n in created):
            return created
        raise IntegrityError("no primary keys returned")  # an old SQLite: insert one by one
    except IntegrityError:
        kept = []
        for row in rows:
            row.pk = None
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:
                continue  # a concurrent notify() with the same dedupe key won
            kept.append(row)
        return kept


@transaction.atomic
def notify(
    *,
    recipients: Iterable[Any] | None = None,
    organization: Any = None,
    roles: Iterable[str] | None = None,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    dedupe_key: str | None = None,
    channels: Sequence[str] | None = None,
) -> list[Notification]:
    """Notify users (`recipients`), or the active users of `organization` (optionally only those
    with one of `roles`). Returns the notifications created: a recipient who already has one with
    the same `dedupe_key` gets none. Runs inside the caller's transaction; deliveries start after
    the commit. `channels` narrows the enabled channels (None: all enabled ones).

    Pass no personal data of a child: a neutral title and sentence and a relative link only.
    """
    dedupe_key = dedupe_key or ""
    probe = Notification(kind=kind, title=title, body=body, url=url, dedupe_key=dedupe_key)
    probe.full_clean(exclude=["recipient", "organization"], validate_unique=False, validate_constraints=False)
    names = _channel_names(channels)
    users = _recipients(recipients, organization, roles)
    if dedupe_key and users:
        taken = set(
            Notification.objects.filter(recipient__in=users, dedupe_key=dedupe_key).values_list(
                "recipient_id", flat=True
            )
        )
        users = [u for u in users if u.pk not in taken]
    now = timezone.now()
    created = _insert(
        [
            Notification(
                recipient=u,
                organization=organization,
                kind=kind,
                title=title,
                body=body,
                url=url,
                dedupe_key=dedupe_key,
                created_at=now,
            )
            for u in users
        ]
    )
    if created and names:
        Delivery.objects.bulk_create(
            [
                Delivery(notification=n, channel=name, next_attempt_at=now, created_at=now)
                for n in created
                for name in names
            ]
        )
        ids = [n.pk for n in created]
        transaction.on_commit(lambda: _deliver_soon(ids))
    return created


@dataclass(frozen=True)
class Message:
    """One notification to several users, for `notify_many`."""

    recipients: tuple[Any, ...]
    kind: str
    title: str
    url: str = ""
    body: str = ""
    dedupe_key: str = ""


def notify_many(messages: Iterable[Message], *, organization: Any = None) -> list[Notification]:
    """Several notifications at once (one event telling the station, the town and the district
    office, each in its own words): one duplicate check, one insert of notifications, one of
    deliveries and one hand-over to the worker, instead of one round of each per message. Same
    rules as `notify`: inside the caller's transaction, deliveries after commit, a recipient who
    already holds a message's `dedupe_key` gets no second one, a user named twice gets one."""
    names = _channel_names(None)
    rows: list[Notification] = []
    seen: set[tuple[Any, str]] = set()
    now = timezone.now()
    for message in messages:
        probe = Notification(
            kind=message.kind, title=message.title, body=message.body, url=message.url, dedupe_key=message.dedupe_key
        )
        probe.full_clean(exclude=["recipient", "organization"], validate_unique=False, validate_constraints=False)
        for user in dict.fromkeys(message.recipients):
            key = (user.pk, message.dedupe_key or f"#{len(rows)}")
            if not user.is_active or key in seen:
                continue
            seen.add(key)
            rows.append(
                Notification(
                    recipient=user,
                    organization=organization,
                    kind=message.kind,
                    title=message.title,
                    body=message.body,
                    url=message.url,
                    dedupe_key=message.dedupe_key,
                    created_at=now,
                )
            )
    keys = {n.dedupe_key for n in rows if n.dedupe_key}
    if keys:
        taken = set(
            Notification.objects.filter(recipient__in={n.recipient_id for n in rows}, dedupe_key__in=keys).values_list(
                "recipient_id", "dedupe_key"
            )
        )
        rows = [n for n in rows if (n.recipient_id, n.dedupe_key) not in taken]
    created = _insert(rows)
    if created and names:
        Delivery.objects.bulk_create(
            [
                Delivery(notification=n, channel=name, next_attempt_at=now, created_at=now)
                for n in created
                for name in names
            ]
        )
        ids = [n.pk for n in created]
        transaction.on_commit(lambda: _deliver_soon(ids))
    return created


def _deliver_soon(notification_ids: list[int]) -> None:
    """After the commit: hand the new deliveries to a background worker. If that fails (the task
    queue is down), the periodic job sends them within a minute."""
    try:
        from shouhu.notify.tasks import deliver_new

        deliver_new(notification_ids)
    except Exception:  # noqa: BLE001 — the outbox row is safe; the periodic job retries
        logger.warning(
            "could not enqueue the delivery of notifications %s; the periodic job will", notification_ids, exc_info=True
        )


# ----- the delivery loop -------------------------------------------------------------------------


def _claim(now: datetime, notification_ids: Sequence[int] | None) -> list[Delivery]:
    """Take a batch of due deliveries: lock them (skipping rows another worker holds), count the
    attempt and move `next_attempt_at` a lease ahead, so no other worker takes them meanwhile."""
    with transaction.atomic():
        qs = Delivery.objects.filter(state__in=DUE_STATES, next_attempt_at__lte=now)
        if notification_ids is not None:
            qs = qs.filter(notification_id__in=notification_ids)
        qs = qs.order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        ids = list(qs.values_list("id", flat=True)[:CLAIM_BATCH])
        if not ids:
            return []
        lease = now + LEASE
        if connection.features.has_select_for_update_skip_locked:
            # The rows are locked by this transaction: one update claims them all.
            Delivery.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1, next_attempt_at=lease)
            claimed = ids
        else:
            # No row locks (SQLite): each row is taken by a conditional update, so a row is claimed
            # once even when two workers read the same batch.
            claimed = [
                pk
                for pk in ids
                if Delivery.objects.filter(pk=pk, state__in=DUE_STATES, next_attempt_at__lte=now).update(
                    attempts=F("attempts") + 1, next_attempt_at=lease
                )
            ]
        return list(
            Delivery.objects.filter(id__in=claimed)
            .select_related("notification", "notification__recipient")
            .order_by("next_attempt_at", "id")
        )


def _attempt(delivery: Delivery) -> tuple[str, str]:
    """Send one claimed delivery: (new state, error text). Error texts never hold an address."""
    channel = notify_channels.enabled_channels().get(delivery.channel)
    user = delivery.notification.recipient
    if channel is None:
        return DeliveryState.GIVEN_UP, f"channel {delivery.channel!r} is not enabled"
    if not user.is_active:
        return DeliveryState.GIVEN_UP, "the recipient's account is inactive"
    address = channel.address_for(user)
    if not address:
        return DeliveryState.GIVEN_UP, f"the recipient has no {delivery.channel} address"
    try:
        channel.send(address, delivery.notification)
    except notify_channels.PermanentDeliveryError as exc:
        return DeliveryState.GIVEN_UP, str(exc)
    except notify_channels.DeliveryError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 — a broken channel must not stop the loop
        logger.exception("channel %s raised on delivery %s", delivery.channel, delivery.pk)
        error = f"unexpected {type(exc).__name__}"
    else:
        return DeliveryState.SENT, ""
    if delivery.attempts >= max_attempts():
        return DeliveryState.GIVEN_UP, f"{error} (gave up after {delivery.attempts} attempts)"
    return DeliveryState.FAILED, error


def deliver_pending(*, now: datetime | None = None, notification_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Send every delivery that is due (or only those of `notification_ids`). Idempotent, and safe
    to run in several workers at once: each delivery is claimed by one. Returns counts by outcome."""
    now = now or timezone.now()
    counts: Counter[str] = Counter()
    while batch := _claim(now, notification_ids):
        sent: dict[int, list[int]] = {}  # attempts -> deliveries sent: recorded together below
        for delivery in batch:
            state, error = _attempt(delivery)
            counts[state] += 1
            if state == DeliveryState.SENT:
                sent.setdefault(delivery.attempts, []).append(delivery.pk)
                continue
            fields: dict[str, Any] = {"state": state, "last_error": error[:500]}
            if state == DeliveryState.FAILED:
                fields["next_attempt_at"] = now + retry_delay(delivery.attempts)
                logger.info(
                    "delivery %s via %s failed (attempt %s): %s",
                    delivery.pk,
                    delivery.channel,
                    delivery.attempts,
                    error,
                )
            else:
                fields["next_attempt_at"] = None
                logger.warning("delivery %s via %s given up: %s", delivery.pk, delivery.channel, error)
            # Only the claim's own attempt is recorded (a lease that ran out belongs to another worker).
            Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts, state__in=DUE_STATES).update(**fields)
        sent_at = timezone.now()
        for attempts, ids in sent.items():
            Delivery.objects.filter(pk__in=ids, attempts=attempts, state__in=DUE_STATES).update(
                state=DeliveryState.SENT, last_error="", sent_at=sent_at, next_attempt_at=None
            )
    return dict(counts)


# ----- reading -----------------------------------------------------------------------------------


def mark_read(*, actor: Any, notification_id: int) -> bool:
    """Mark one of the actor's own notifications read; False if it is not theirs (or missing)."""
    updated = Notification.objects.filter(pk=notification_id, recipient_id=actor.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return bool(updated) or Notification.objects.filter(pk=notification_id, recipient_id=actor.pk).exists()


def mark_all_read(*, actor: Any) -> int:
    return Notification.objects.filter(recipient_id=actor.pk, read_at__isnull=True).update(read_at=timezone.now())
