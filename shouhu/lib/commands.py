"""What management commands share."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone


def now_option(value: str | None) -> datetime:
    """The `--now ISO-8601` of a drill (naive times are local), or the current time."""
    if not value:
        return timezone.now()
    try:
        now = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--now: not an ISO-8601 date-time: {value!r}") from None
    return timezone.make_aware(now) if timezone.is_naive(now) else now
