"""Overdue tasks escalate to the unit's leadership (超时升级督办), once.

A task still open past its deadline is escalated exactly once: `Task.escalated_at` is claimed by a
conditional UPDATE (two workers never escalate the same task), an ESCALATED step goes on the task's
timeline and an audit event is written. Who is told, in one notification per run and per group
(never one per task: the first run after an outage may find hundreds):

* the owner's own staff — the task is theirs;
* the unit's leadership — users with the leader role in the owner or any organisation above it; and
  the member unit's staff when the owner is one of its sub-organisations (the education bureau for a
  school, the health commission for a town hospital);
* the joint-meeting office (the district civil-affairs office) when the owner is itself a member
  unit or a town or village body, which no bureau supervises;
* the organisation that asked (a case owner's referral), so it knows its referral is late.

Notifications carry no child data, only a count and a link. Tasks of a mandatory report's town
assessment are left to the report's own clocks (`safeguarding.check_deadlines`), which escalate the
same lateness to the district police and the district office.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record_many
from shouhu.org.access import ROLE_CAPS, Cap
from shouhu.org.models import Organization, OrgKind, Role, User
from shouhu.tasks.models import OPEN_STATES, Task, TaskEvent, TaskEventKind

logger = logging.getLogger(__name__)

CHUNK = 200
SELF_ESCALATING_SOURCES = ("report_assessment",)  # escalated by the report's clocks
TASK_ROLES = [role for role, caps in ROLE_CAPS.items() if Cap.TASKS in caps]
LOCAL_BODIES = (OrgKind.TOWN_GOVERNMENT, OrgKind.VILLAGE_COMMITTEE)


def overdue_unescalated(now: datetime):  # noqa: ANN201 — a queryset
    return (
        Task.objects.filter(state__in=OPEN_STATES, escalated_at__isnull=True, due_at__lt=now)
        .exclude(source_type__in=SELF_ESCALATING_SOURCES)
        .order_by("due_at", "id")
    )


def escalate_overdue(*, now: datetime | None = None) -> dict[str, int]:
    """Escalate every open task past its deadline that is not escalated yet. Safe to run
    concurrently and repeatedly; returns the counts."""
    now = now or timezone.now()
    counts = {"checked": 0, "escalated": 0}
    ids = list(overdue_unescalated(now).values_list("pk", flat=True))
    counts["checked"] = len(ids)
    for start in range(0, len(ids), CHUNK):
        counts["escalated"] += _escalate_chunk(ids[start : start + CHUNK], now)
    if counts["escalated"]:
        logger.info("overdue tasks escalated: %s", counts)
    return counts


@transaction.atomic
def _escalate_chunk(ids: list[int], now: datetime) -> int:
    claimed: list[Task] = []
    for task in Task.objects.filter(pk__in=ids).select_related("owner", "requester").order_by("due_at", "id"):
        # Claimed by a conditional UPDATE: a concurrent run (or a step answered meanwhile) wins.
        if (
            Task.objects.filter(pk=task.pk, escalated_at__isnull=True, state__in=OPEN_STATES, due_at__lt=now).update(
                escalated_at=now
            )
            == 1
        ):
            task.escalated_at = now
            claimed.append(task)
    if not claimed:
        return 0
    TaskEvent.objects.bulk_create(
        [
            TaskEvent(
                task=t,
                kind=TaskEventKind.ESCALATED,
                organization=None,
                note=_("超过办理期限 %(due)s 仍未办结，已升级督办")
                % {"due": timezone.localtime(t.due_at).strftime("%Y-%m-%d %H:%M")},
            )
            for t in claimed
        ]
    )
    record_many(
        actor=None,
        action=Action.UPDATE,
        actor_name="system",
        events=[
            {"object_type": "task", "object_id": t.pk, "detail": {"step": "escalated", "owner": t.owner_id}}
            for t in claimed
        ],
    )
    _tell(claimed)
    return len(claimed)


# ----- who is told ----------------------------------------------------------------------------------


def _ancestors(org: Organization, orgs: dict[int, Organization]) -> list[Organization]:
    """The organisation and those above it, nearest first (a loop in the data stops the walk)."""
    out: list[Organization] = []
    seen: set[int] = set()
    current: Organization | None = org
    while current is not None and current.pk not in seen:
        out.append(current)
        seen.add(current.pk)
        current = orgs.get(current.parent_id) if current.parent_id else None
    return out


def leadership_of(owner: Organization, orgs: dict[int, Organization]) -> tuple[set[int], set[int], bool]:
    """(organisations whose leaders are told, the supervising member unit's id or nothing, whether the
    joint-meeting office is told) for a task of `owner`."""
    chain = _ancestors(owner, orgs)
    member = next((o for o in chain if o.kind == OrgKind.MEMBER_UNIT), None)
    supervising = {member.pk} if member is not None and member.pk != owner.pk else set()
    office = owner.kind in LOCAL_BODIES or (member is not None and member.pk == owner.pk)
    return {o.pk for o in chain}, supervising, office


def _tell(tasks: list[Task]) -> None:
    from shouhu.notify.services import Message, notify_many
    from shouhu.safeguarding.services import district_office

    orgs = {o.pk: o for o in Organization.objects.only("id", "name", "kind", "parent_id")}
    office = district_office()
    own: dict[int, list[Task]] = defaultdict(list)  # owner org -> its late tasks
    led: dict[int, list[Task]] = defaultdict(list)  # org whose leaders are told -> tasks below it
    supervised: dict[int, list[Task]] = defaultdict(list)  # member unit -> its sub-organisations' tasks
    asked: dict[int, list[Task]] = defaultdict(list)  # requester -> its late referrals
    for task in tasks:
        own[task.owner_id].append(task)
        leaders_in, supervising, tell_office = leadership_of(task.owner, orgs)
        for org_id in leaders_in:
            led[org_id].append(task)
        for org_id in supervising:
            supervised[org_id].append(task)
        if tell_office and office is not None and office.pk != task.owner_id:
            supervised[office.pk].append(task)
        if task.requester_id and task.requester_id != task.owner_id:
            asked[task.requester_id].append(task)

    org_ids = set(own) | set(led) | set(supervised) | set(asked)
    staff: dict[int | None, list[User]] = defaultdict(list)
    leaders: dict[int | None, list[User]] = defaultdict(list)
    users = User.objects.filter(organization_id__in=org_ids, is_active=True).prefetch_related("roles").order_by("id")
    for user in users:
        roles = user.role_set
        if roles & set(TASK_ROLES):
            staff[user.organization_id].append(user)
        if Role.LEADER in roles:
            leaders[user.organization_id].append(user)

    stamp = timezone.localtime().strftime("%Y%m%d%H%M%S")
    body = _("请登录平台查看，详情不在通知中显示。")

    def link(late: list[Task], fallback: str) -> str:
        return f"/tasks/{late[0].pk}/" if len(late) == 1 else fallback

    def units(late: list[Task]) -> str:
        owners = {t.owner_id for t in late}
        first = orgs[late[0].owner_id].name
        if len(owners) == 1:
            return first
        return _("%(org)s等 %(k)s 个单位") % {"org": first, "k": len(owners)}

    messages: list[Message] = []
    for org_id, late in own.items():
        messages.append(
            Message(
                recipients=tuple(staff[org_id]),
                kind="task_escalated",
                url=link(late, "/tasks/?overdue=1"),
                body=body,
                title=_("本单位有 %(n)s 项待办超过办理期限，已升级督办") % {"n": len(late)},
                dedupe_key=f"task_escalated:own:{org_id}:{stamp}",
            )
        )
    for org_id, late in led.items():
        messages.append(
            Message(
                recipients=tuple(leaders[org_id]),
                kind="task_escalated",
                url="/tasks/meeting/",
                body=body,
                title=_("%(units)s有 %(n)s 项待办超时未办结，已升级督办") % {"units": units(late), "n": len(late)},
                dedupe_key=f"task_escalated:lead:{org_id}:{stamp}",
            )
        )
    for org_id, late in supervised.items():
        messages.append(
            Message(
                recipients=tuple(staff[org_id]),
                kind="task_escalated",
                url="/tasks/supervision/",
                body=body,
                title=_("%(units)s有 %(n)s 项待办超时未办结，请督办") % {"units": units(late), "n": len(late)},
                dedupe_key=f"task_escalated:supervise:{org_id}:{stamp}",
            )
        )
    for org_id, late in asked.items():
        messages.append(
            Message(
                recipients=tuple(staff[org_id]),
                kind="task_escalated",
                url=link(late, "/tasks/requested/"),
                body=body,
                title=_("本单位发起的 %(n)s 项转介超过办理期限仍未办结，已升级督办") % {"n": len(late)},
                dedupe_key=f"task_escalated:asked:{org_id}:{stamp}",
            )
        )
    notify_many([m for m in messages if m.recipients])
