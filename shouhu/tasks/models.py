"""The one inbox object of a unit: a need found for a child that the unit must act on."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TaskKind(models.TextChoices):
    ENTITLEMENT_GAP = "entitlement_gap", _("待遇落实")
    REFERRAL = "referral", _("转介")
    SUPERVISED_ITEM = "supervised_item", _("督办事项")
    REPORT = "report", _("强制报告")
    PROPOSAL = "proposal", _("认定确认")


class TaskState(models.TextChoices):
    OPEN = "open", _("待处理")
    IN_PROGRESS = "in_progress", _("处理中")
    DONE = "done", _("已办结")
    CANCELLED = "cancelled", _("已撤销")
    DECLINED = "declined", _("已退回")  # the unit declined it with a reason; it returns to whoever asked


OPEN_STATES = (TaskState.OPEN, TaskState.IN_PROGRESS)


class Task(models.Model):
    """Overdue is computed from `due_at`, never stored."""

    owner = models.ForeignKey(
        "org.Organization", on_delete=models.PROTECT, related_name="tasks", verbose_name=_("承办单位")
    )
    child = models.ForeignKey(
        "registry.Child", null=True, blank=True, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("儿童")
    )
    kind = models.CharField(_("类型"), max_length=20, choices=TaskKind.choices)
    need_type = models.ForeignKey(
        "org.NeedType", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("需求类型")
    )
    title = models.CharField(_("事项"), max_length=120)
    detail = models.TextField(_("说明"), blank=True)
    source_type = models.CharField(max_length=40, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    due_at = models.DateTimeField(_("办理期限"), db_index=True)
    state = models.CharField(_("状态"), max_length=20, choices=TaskState.choices, default=TaskState.OPEN, db_index=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("办结人"),
    )
    outcome = models.CharField(_("办理结果"), max_length=500, blank=True)
    # Who asked (a referral's case owner, a town asking for help): a declined task returns there.
    requester = models.ForeignKey(
        "org.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks_requested",
        verbose_name=_("发起单位"),
    )
    accepted_at = models.DateTimeField(_("接收时间"), null=True, blank=True)
    handler = models.CharField(_("承办人"), max_length=40, blank=True)
    decline_reason = models.CharField(_("退回理由"), max_length=300, blank=True)
    escalated_at = models.DateTimeField(_("升级督办时间"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    # Set by the list pages (shouhu.tasks.views) for their templates: escalated itself or through
    # its report (escalated_task_ids), and the whole days past due (the supervision page).
    escalated: bool
    days_late: int

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("待办事项")
        verbose_name_plural = _("待办事项")
        indexes = [models.Index(fields=["owner", "state", "due_at"], name="task_inbox")]
        constraints = [
            # One open task per source: re-evaluating a child never duplicates the unit's work.
            models.UniqueConstraint(
                fields=["source_type", "source_id"],
                condition=Q(state__in=["open", "in_progress"]),
                name="task_one_open_per_source",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(state__in=["done", "cancelled", "declined"]),
                name="task_closed_only_when_done",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class TaskEventKind(models.TextChoices):
    ACCEPTED = "accepted", _("接收")
    DECLINED = "declined", _("退回")
    INFO_REQUESTED = "info_requested", _("要求补充情况")
    PROGRESS = "progress", _("进展")
    COMPLETED = "completed", _("办结")
    CANCELLED = "cancelled", _("撤销")
    ESCALATED = "escalated", _("超时升级督办")


class TaskEvent(models.Model):
    """A step of a task: the unit's answer, its progress, an escalation; who and when."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("环节"), max_length=20, choices=TaskEventKind.choices)
    at = models.DateTimeField(_("时间"), auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("操作人"),
    )
    organization = models.ForeignKey(
        "org.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("单位")
    )
    note = models.CharField(_("说明"), max_length=500, blank=True)

    class Meta:
        ordering = ["task", "at", "id"]
        verbose_name = _("待办进展")
        verbose_name_plural = _("待办进展")

    def __str__(self) -> str:
        return f"{self.task_id} {self.kind}"
