"""Policy work in the background (huey): the nightly re-evaluation of every child in the ledger, and
the evaluation of the children a survey import created."""

from __future__ import annotations

import logging

from django.db import transaction
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from shouhu.policy.services import reevaluate_all, reevaluate_children

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(hour="2", minute="15"), retries=2, retry_delay=600)
@lock_task("policy-nightly")
def nightly_reevaluation() -> dict[str, int]:
    """Ages and durations change with time alone: a child turning 16 leaves 留守儿童, a parent's
    lost contact reaching six months makes a child eligible. Runs at 02:15 Asia/Shanghai."""
    counts = reevaluate_all()
    logger.info("nightly policy re-evaluation: %s", counts)
    return counts


@db_task(retries=2, retry_delay=60)
def evaluate_children(ids: list[int]) -> dict[str, int]:
    """Evaluate the children a bulk write created (a survey import) a batch at a time, after its
    commit. A failure is retried; the nightly run catches up with whatever is still left."""
    counts = reevaluate_children(ids)
    logger.info("policy evaluation of %d imported children: %s", len(ids), counts)
    return counts


def schedule_evaluation(ids: list[int]) -> None:
    """Queue `evaluate_children` when the current transaction commits (nothing on rollback)."""
    if ids:
        ids = list(ids)
        transaction.on_commit(lambda: evaluate_children(ids))
