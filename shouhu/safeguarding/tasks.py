"""Deadline checks for mandatory reports (huey), every minute."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from shouhu.safeguarding.services import check_deadlines

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))
@lock_task("report-deadlines")
def check_report_deadlines() -> dict[str, int]:
    """A step past its deadline escalates once (the station's superior, the district office, the
    procuratorate's view). `manage.py check_deadlines` runs the same once."""
    counts = check_deadlines()
    if counts["escalated"]:
        logger.info("report deadlines: %s", counts)
    return counts
