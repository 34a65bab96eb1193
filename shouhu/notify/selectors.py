"""Reading notifications: a user sees their own and nobody else's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from shouhu.notify.models import Notification


def inbox_for(actor: Any) -> QuerySet[Notification]:
    """The actor's notifications, newest first."""
    if not getattr(actor, "is_authenticated", False):
        return Notification.objects.none()
    return Notification.objects.filter(recipient_id=actor.pk).order_by("-created_at", "-id")


def notification_get_for(actor: Any, notification_id: int) -> Notification | None:
    """One of the actor's own notifications; another user's is as missing as a missing one."""
    return inbox_for(actor).filter(pk=notification_id).first()


def unread_count(actor: Any) -> int:
    """One COUNT on the partial index of unread rows."""
    if not getattr(actor, "is_authenticated", False):
        return 0
    return Notification.objects.filter(recipient_id=actor.pk, read_at__isnull=True).count()
