"""Background delivery (huey): new notifications right after their commit, and a retry loop."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from shouhu.notify.services import deliver_pending

logger = logging.getLogger(__name__)


@db_task()
def deliver_new(notification_ids: list[int]) -> dict[str, int]:
    """Enqueued on commit by `notify()`: the first attempt, without waiting for the minute."""
    return deliver_pending(notification_ids=notification_ids)


@db_periodic_task(crontab(minute="*"))
def deliver_notifications() -> dict[str, int]:
    """Every minute: send whatever is due (new ones the queue missed, retries after backoff).
    Several workers may run it at once; each delivery is claimed by one of them."""
    counts = deliver_pending()
    if counts:
        logger.info("notification deliveries: %s", counts)
    return counts
