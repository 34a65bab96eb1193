"""Policy work in the background (huey): the nightly re-evaluation of every child in the ledger. (The
children a survey import creates are evaluated by `intake.jobs.evaluate_import`.)"""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from shouhu.policy.services import reevaluate_all

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(hour="2", minute="15"), retries=2, retry_delay=600)
@lock_task("policy-nightly")
def nightly_reevaluation() -> dict[str, int]:
    """Ages and durations change with time alone: a child turning 16 leaves 留守儿童, a parent's
    lost contact reaching six months makes a child eligible. Runs at 02:15 Asia/Shanghai."""
    counts = reevaluate_all()
    logger.info("nightly policy re-evaluation: %s", counts)
    return counts
