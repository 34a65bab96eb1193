"""Case management (个案): a case per child at a time, its assessments, plan, services, reviews.

Referrals are tasks (`shouhu.tasks.Task`, kind REFERRAL) opened from an action with
`source_type="case_action"`, so a unit answers them in the one inbox; re-referring after a
decline opens a new task for the same action and the declined one stays in the history.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shouhu.lib.fields import EncryptedTextField
from shouhu.visits.models import RiskLevel

REFERRAL_SOURCE = "case_action"


class OpenedFrom(models.TextChoices):
    REPORT = "report", _("强制报告")
    VISIT = "visit", _("走访发现")
    POLICY_GAP = "policy_gap", _("政策落实缺口")
    DATA_MATCH = "data_match", _("数据比对")
    BY_HAND = "by_hand", _("人工建档")


class CaseState(models.TextChoices):
    OPEN = "open", _("在案")
    CLOSED = "closed", _("已结案")


class ClosureReason(models.TextChoices):
    RISK_REMOVED = "risk_removed", _("风险已消除")
    AGED_OUT = "aged_out", _("已满十八周岁")
    MOVED_AWAY = "moved_away", _("迁出本区（已转交迁入地民政部门）")
    LONG_TERM_CARE = "long_term_care", _("已长期安置")
    OTHER = "other", _("其他")


class Case(models.Model):
    child = models.ForeignKey("registry.Child", on_delete=models.CASCADE, related_name="cases")
    owner_org = models.ForeignKey(
        "org.Organization", on_delete=models.PROTECT, related_name="cases", verbose_name=_("责任单位")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("个案负责人")
    )
    # The social worker of a contracted organisation (政府购买服务) who works the case for the owner:
    # their organisation sees the child while the case is open and works the case like the owner.
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cases_worked",
        verbose_name=_("承接社工"),
    )
    opened_from = models.CharField(_("来源"), max_length=20, choices=OpenedFrom.choices, default=OpenedFrom.BY_HAND)
    source_ref = models.CharField(_("来源编号"), max_length=64, blank=True)
    state = models.CharField(_("状态"), max_length=10, choices=CaseState.choices, default=CaseState.OPEN)
    opened_at = models.DateTimeField(_("立案时间"), auto_now_add=True)
    risk_level = models.CharField(_("风险等级"), max_length=10, choices=RiskLevel.choices, blank=True)
    next_review_due = models.DateField(_("下次评估/回顾截止"), null=True, blank=True)
    # Closure: requested (with reason and summary), approved by the district office when the risk
    # is red/orange, then closed. Reopening clears these; the case events keep every round.
    closure_reason = models.CharField(_("结案原因"), max_length=20, choices=ClosureReason.choices, blank=True)
    closure_summary = models.TextField(_("结案小结"), blank=True)
    transfer_to = models.CharField(_("转交单位（迁出时）"), max_length=100, blank=True)
    close_requested_at = models.DateTimeField(_("申请结案时间"), null=True, blank=True)
    close_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    close_approved_at = models.DateTimeField(_("结案审批时间"), null=True, blank=True)
    close_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("结案审批人"),
    )
    closed_at = models.DateTimeField(_("结案时间"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = _("个案")
        verbose_name_plural = _("个案")
        indexes = [models.Index(fields=["owner_org", "state", "next_review_due"], name="case_owner_open")]
        constraints = [
            models.UniqueConstraint(fields=["child"], condition=Q(state="open"), name="case_one_open_per_child"),
            models.CheckConstraint(
                condition=Q(state="open", closed_at__isnull=True) | Q(state="closed", closed_at__isnull=False),
                name="case_closed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.child_id}"

    @property
    def awaiting_approval(self) -> bool:
        return self.state == CaseState.OPEN and self.close_requested_at is not None


class CaseEventKind(models.TextChoices):
    OPENED = "opened", _("立案")
    CLOSE_REQUESTED = "close_requested", _("申请结案")
    CLOSE_APPROVED = "close_approved", _("批准结案")
    CLOSED = "closed", _("结案")
    REOPENED = "reopened", _("重新开案")
    ASSIGNED = "assigned", _("指派社工")


class CaseEvent(models.Model):
    """The case's own steps, never edited: reopening a case keeps every earlier round here."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("环节"), max_length=20, choices=CaseEventKind.choices)
    at = models.DateTimeField(_("时间"), auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(_("说明"), max_length=500, blank=True)

    class Meta:
        ordering = ["case", "at", "id"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind}"


class Assessment(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assessments")
    assessed_at = models.DateTimeField(_("评估时间"), auto_now_add=True)
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("评估人")
    )
    scores = models.JSONField(_("各领域评分"))  # {domain: 1..4}
    evidence_json = EncryptedTextField(_("评分依据"), blank=True)  # json {domain: text}
    derived_level = models.CharField(_("规则等级"), max_length=10, choices=RiskLevel.choices)
    reasons = models.JSONField(_("等级理由"), default=list)
    rule_version = models.CharField(_("规则版本"), max_length=30)
    override_level = models.CharField(_("调整后等级"), max_length=10, choices=RiskLevel.choices, blank=True)
    override_reason = models.TextField(_("调整理由"), blank=True)

    class Meta:
        ordering = ["case", "-assessed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(override_level="") | ~Q(override_reason=""), name="assessment_override_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.derived_level}"

    @property
    def level(self) -> str:
        return self.override_level or self.derived_level

    def get_level_display(self) -> str:
        return str(dict(RiskLevel.choices).get(self.level, self.level))

    @property
    def evidence(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.evidence_json or "{}"))
        except ValueError:
            return {}


class Goal(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="goals")
    text = models.CharField(_("目标"), max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["case", "created_at", "id"]

    def __str__(self) -> str:
        return self.text


class ActionMode(models.TextChoices):
    OWNER = "owner", _("负责人自行落实")
    REFERRAL = "referral", _("转介成员单位")


class Action(models.Model):
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="actions")
    text = models.CharField(_("措施"), max_length=200)
    mode = models.CharField(_("落实方式"), max_length=10, choices=ActionMode.choices, default=ActionMode.OWNER)
    need_type = models.ForeignKey(
        "org.NeedType", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("需求类型")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["goal", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode="owner") | Q(need_type__isnull=False), name="action_referral_has_need"
            ),
        ]

    def __str__(self) -> str:
        return self.text


class Service(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="services")
    kind = models.CharField(_("服务类型"), max_length=60)
    date = models.DateField(_("服务日期"))
    hours = models.DecimalField(_("时长（小时）"), max_digits=5, decimal_places=1)
    provider = models.CharField(_("服务提供方"), max_length=100)
    note = EncryptedTextField(_("服务记录"), blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "-date", "-id"]
        constraints = [models.CheckConstraint(condition=Q(hours__gt=0), name="service_hours_positive")]

    def __str__(self) -> str:
        return f"{self.date} {self.kind}"


class Review(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="reviews")
    date = models.DateField(_("回顾日期"))
    note = EncryptedTextField(_("回顾意见"))
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "-date", "-id"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.date}"


def evidence_dump(evidence: dict[str, Any]) -> str:
    return json.dumps({k: str(v)[:1000] for k, v in evidence.items() if v}, ensure_ascii=False)
