"""Visit work in the background (huey): the morning digest of due and overdue visits for village
directors and town supervisors, and the nightly refresh of every visit plan."""

from __future__ import annotations

import logging
from datetime import date

from django.utils import timezone
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

logger = logging.getLogger(__name__)

DIGEST_KIND = "visit_digest"


def send_digest(*, today: date | None = None) -> dict[str, int]:
    """Notify each active village director and town supervisor of the overdue visits and those due
    this week in their regions (numbers only, never a child's name). Nobody is notified when nothing
    is due; a user notified for `today` already is not notified again (dedupe key per day)."""
    from shouhu.notify.services import notify
    from shouhu.visits.review import digest_recipients, due_counts_by_region, due_counts_for

    today = today or timezone.localdate()
    counts = due_counts_by_region(today)
    result = {"users": 0, "nothing_due": 0, "notified": 0, "already_notified": 0}
    for user in digest_recipients():
        result["users"] += 1
        overdue, week = due_counts_for(user, counts)
        if not overdue and not week:
            result["nothing_due"] += 1
            continue
        if overdue and week:
            title = _("走访提醒：%(overdue)d 名儿童走访已逾期，%(week)d 名本周到期") % {
                "overdue": overdue,
                "week": week,
            }
        elif overdue:
            title = _("走访提醒：%(overdue)d 名儿童走访已逾期") % {"overdue": overdue}
        else:
            title = _("走访提醒：%(week)d 名儿童走访本周到期") % {"week": week}
        body = _("请打开走访计划查看名单并安排走访。")
        url = "/visits/?due=overdue" if overdue else "/visits/?due=week"
        created = notify(
            recipients=[user],
            kind=DIGEST_KIND,
            title=title,
            body=body,
            url=url,
            dedupe_key=f"{DIGEST_KIND}:{today.isoformat()}",
        )
        result["notified" if created else "already_notified"] += 1
    return result


def refresh_all(*, today: date | None = None) -> dict[str, int]:
    """Recompute every visit plan: the active children's, and drop those of children who left."""
    from shouhu.registry.models import Child, LedgerStatus
    from shouhu.visits.models import VisitPlan
    from shouhu.visits.services import refresh_plans

    ids = set(Child.objects.filter(status=LedgerStatus.ACTIVE).values_list("pk", flat=True))
    ids |= set(VisitPlan.objects.values_list("child_id", flat=True))
    written = refresh_plans(sorted(ids, key=str), today=today)
    return {"children": len(ids), "written": written}


@db_periodic_task(crontab(hour="7", minute="30"), retries=2, retry_delay=600)
@lock_task("visits-digest")
def visit_digest() -> dict[str, int]:
    """07:30 Asia/Shanghai: the day's digest (safe to rerun: one per user and day)."""
    counts = send_digest()
    logger.info("visit digest: %s", counts)
    return counts


@db_periodic_task(crontab(hour="2", minute="45"), retries=2, retry_delay=600)
@lock_task("visits-refresh-plans")
def refresh_all_visit_plans() -> dict[str, int]:
    """02:45 Asia/Shanghai, after the policy re-evaluation (02:15): a category whose validity ended
    or a rule parameter that changed moves the due dates."""
    counts = refresh_all()
    logger.info("visit plans refreshed: %s", counts)
    return counts
