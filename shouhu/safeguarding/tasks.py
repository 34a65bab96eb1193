"""Background work for mandatory reports (huey): announcing new reports right after their commit,
a minute sweep that announces any the queue missed, and the deadline check every minute."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from shouhu.safeguarding.services import announce_all_pending, check_deadlines

logger = logging.getLogger(__name__)


@db_task(priority=100)  # ahead of the queued deliveries and imports (SqliteHuey honours priorities)
def announce_new_reports() -> None:
    """Handed over right after `report_submit`'s commit: tell who must know of the new report, with
    whatever other reports are waiting (a busy moment goes out as one batch; a task that finds
    them announced already by another does nothing). Returns nothing: no result to store."""
    announce_all_pending()


@db_periodic_task(crontab(minute="*"))
def announce_missed_reports() -> None:
    """Every minute: announce the reports whose immediate task never ran (the queue or the worker
    was down when they were stored). Each report is announced once, whoever gets to it first."""
    count = announce_all_pending()
    if count:
        logger.warning("announced %s report(s) the immediate task had missed", count)


@db_periodic_task(crontab(minute="*"))
@lock_task("report-deadlines")
def check_report_deadlines() -> dict[str, int]:
    """A step past its deadline escalates once (the station's superior, the district office, the
    procuratorate's view). `manage.py check_deadlines` runs the same once."""
    counts = check_deadlines()
    if counts["escalated"]:
        logger.info("report deadlines: %s", counts)
    return counts
