"""Case work in the background (huey): the morning reminder of reassessments and reviews due."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

REMINDER_KIND = "case_review_due"


def send_review_reminders(*, today: date | None = None) -> dict[str, int]:
    """Tell each organisation that owns open cases how many reassessments or reviews are overdue
    and how many fall due within a week (numbers only; the cycle per risk level is
    `rules.review_days`). One notification per user and day."""
    from shouhu.cases.models import Case, CaseState
    from shouhu.notify.services import Message, notify_many
    from shouhu.org.access import ROLE_CAPS, Cap
    from shouhu.org.models import User

    today = today or timezone.localdate()
    week = today + timedelta(days=7)
    rows = (
        Case.objects.filter(state=CaseState.OPEN, next_review_due__isnull=False, next_review_due__lte=week)
        .values("owner_org_id")
        .order_by()
        .annotate(
            overdue=Count("pk", filter=Q(next_review_due__lt=today)),
            soon=Count("pk", filter=Q(next_review_due__gte=today)),
        )
    )
    counts = {r["owner_org_id"]: (r["overdue"], r["soon"]) for r in rows}
    roles = [role for role, caps in ROLE_CAPS.items() if Cap.CASES in caps]
    users: dict[int | None, list[User]] = {}
    for user in (
        User.objects.filter(organization_id__in=list(counts), is_active=True, roles__role__in=roles)
        .distinct()
        .order_by("id")
    ):
        users.setdefault(user.organization_id, []).append(user)
    messages = []
    for org_id, (overdue, soon) in counts.items():
        if overdue and soon:
            title = _("个案提醒：%(o)d 个个案的评估/回顾已逾期，%(s)d 个本周到期") % {"o": overdue, "s": soon}
        elif overdue:
            title = _("个案提醒：%(o)d 个个案的评估/回顾已逾期") % {"o": overdue}
        else:
            title = _("个案提醒：%(s)d 个个案的评估/回顾本周到期") % {"s": soon}
        messages.append(
            Message(
                recipients=tuple(users.get(org_id, ())),
                kind=REMINDER_KIND,
                title=title,
                url="/cases/",
                body=_("请打开个案列表，按到期先后安排评估或回顾。"),
                dedupe_key=f"{REMINDER_KIND}:{today.isoformat()}",
            )
        )
    created = notify_many([m for m in messages if m.recipients])
    return {"organisations": len(counts), "notified": len(created)}


@db_periodic_task(crontab(hour="7", minute="35"), retries=2, retry_delay=600)
@lock_task("case-review-reminders")
def case_review_reminders() -> dict[str, int]:
    return send_review_reminders()
