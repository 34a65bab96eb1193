"""Home visits (走访) and guardianship supervision: each child's risk level, its visit plan (the
next due date, computed from its confirmed categories and risk level), and the visit records.

Overdue is never stored: a plan stores `next_due`, and a list asks `next_due < today`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shouhu.lib.fields import EncryptedTextField


class RiskLevel(models.TextChoices):
    # Ordered from the most to the least urgent; `RISK_ORDER` sorts by it.
    RED = "red", _("红（极高风险）")
    ORANGE = "orange", _("橙（高风险）")
    YELLOW = "yellow", _("黄（中风险）")
    GREEN = "green", _("绿（低风险）")


RISK_ORDER = {RiskLevel.RED: 0, RiskLevel.ORANGE: 1, RiskLevel.YELLOW: 2, RiskLevel.GREEN: 3}


class RiskAssessment(models.Model):
    """A risk level set by a person, with the written reason. The latest row is the child's level;
    the rows are its history. (The case-management issue later derives levels from assessments.)"""

    child = models.ForeignKey("registry.Child", on_delete=models.CASCADE, related_name="risk_assessments")
    level = models.CharField(_("风险等级"), max_length=10, choices=RiskLevel.choices)
    reason = models.TextField(_("理由"))
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("评定人")
    )
    set_at = models.DateTimeField(_("评定时间"), auto_now_add=True)
    visit = models.ForeignKey(
        "Visit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("来源走访")
    )

    class Meta:
        ordering = ["child", "-set_at", "-id"]
        verbose_name = _("风险评定")
        verbose_name_plural = _("风险评定")
        indexes = [models.Index(fields=["child", "-set_at"], name="risk_child_latest")]

    def __str__(self) -> str:
        return f"{self.child_id} {self.get_level_display()}"


class VisitPlan(models.Model):
    """One per child in the ledger: when the next visit is due, and why (the rule and its numbers)."""

    child = models.OneToOneField(
        "registry.Child", on_delete=models.CASCADE, related_name="visit_plan", primary_key=True
    )
    region = models.ForeignKey("org.Region", on_delete=models.PROTECT, related_name="+", db_index=False)
    risk_level = models.CharField(_("风险等级"), max_length=10, choices=RiskLevel.choices, blank=True)
    interval_days = models.PositiveIntegerField(_("走访周期（天）"), null=True, blank=True)
    next_due = models.DateField(_("下次走访截止日期"), null=True, blank=True)
    first_visit = models.BooleanField(_("首次走访"), default=False)
    basis = models.CharField(_("依据"), max_length=200, blank=True)
    last_visit_on = models.DateField(_("最近走访日期"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("走访计划")
        verbose_name_plural = _("走访计划")
        indexes = [models.Index(fields=["region", "next_due"], name="visitplan_region_due")]

    def __str__(self) -> str:
        return f"{self.child_id} {self.next_due}"


class VisitMode(models.TextChoices):
    HOME = "home", _("入户走访")
    PHONE = "phone", _("电话")
    VIDEO = "video", _("视频")
    SCHOOL = "school", _("在校见面")


class VisitState(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SUBMITTED = "submitted", _("已提交")
    RETURNED = "returned", _("已退回")


class Rating(models.TextChoices):
    GOOD = "good", _("较好")
    FAIR = "fair", _("一般")
    POOR = "poor", _("差")


# The checklist of a visit: each item is "ok" / "concern" (+ a short note on concern).
CHECKLIST = (
    ("living", _("居住条件")),
    ("safety", _("居家安全")),
    ("food", _("饮食卫生")),
    ("school", _("上学及出勤")),
    ("health", _("身体健康")),
    ("mood", _("情绪与行为")),
)
CHECKLIST_KEYS = tuple(key for key, _label in CHECKLIST)

# Who was met.
MET_CHOICES = (
    ("child", _("儿童本人")),
    ("father", _("父亲")),
    ("mother", _("母亲")),
    ("carer", _("受委托照护人")),
    ("grandparent", _("祖父母/外祖父母")),
    ("other", _("其他人员")),
)


class Visit(models.Model):
    """A visit record (走访记录). A draft can be finished later; a submitted one can be returned by
    the town supervisor with a comment and then edited and submitted again."""

    child = models.ForeignKey("registry.Child", on_delete=models.CASCADE, related_name="visits")
    visitor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("走访人")
    )
    organization = models.ForeignKey(
        "org.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("单位")
    )
    # Chosen by the browser when the form is opened: a form sent twice (the network dropped and it
    # was sent again) finds the first visit instead of making a second.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(_("状态"), max_length=10, choices=VisitState.choices, default=VisitState.DRAFT)
    visited_on = models.DateField(_("走访日期"))
    mode = models.CharField(_("走访方式"), max_length=10, choices=VisitMode.choices, default=VisitMode.HOME)
    met = models.JSONField(_("见到的人"), default=list, blank=True)
    checklist = models.JSONField(_("检查项"), default=dict, blank=True)  # {key: {"ok": bool, "note": str}}
    child_lives_alone = models.BooleanField(_("儿童独自居住"), null=True, blank=True)
    parents_contact_weekly = models.BooleanField(_("父母每周至少联系一次"), null=True, blank=True)
    parents_last_contact = models.DateField(_("父母最近一次联系日期"), null=True, blank=True)
    carer_performance = models.CharField(_("照护人履责情况"), max_length=10, choices=Rating.choices, blank=True)
    guardianship_assessment = models.CharField(_("监护状况评价"), max_length=10, choices=Rating.choices, blank=True)
    notes = EncryptedTextField(_("走访情况"), blank=True)
    # Optional evidence, never required: a place the visitor chose to record.
    location = models.CharField(_("位置（可选）"), max_length=60, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    submitted_at = models.DateTimeField(_("提交时间"), null=True, blank=True)
    returned_comment = models.CharField(_("退回意见"), max_length=300, blank=True)
    returned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("退回人"),
    )
    returned_at = models.DateTimeField(_("退回时间"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-visited_on", "-id"]
        verbose_name = _("走访记录")
        verbose_name_plural = _("走访记录")
        indexes = [
            models.Index(fields=["child", "-visited_on"], name="visit_child_latest"),
            models.Index(fields=["visitor", "state"], name="visit_visitor_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state="draft") | Q(submitted_at__isnull=False), name="visit_submitted_at_unless_draft"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} {self.visited_on} {self.get_state_display()}"

    @property
    def recorded_late(self) -> bool:
        """Recorded on a later day than the visit (the record says so)."""
        moment = self.submitted_at or self.created_at
        if moment is None:
            return False
        from django.utils import timezone

        return timezone.localtime(moment).date() > self.visited_on


class VisitPhoto(models.Model):
    """A photo taken at a visit: stored encrypted in the database, shown only to those who may see
    the child, through an audited view. Never required."""

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="photos")
    content_type = models.CharField(max_length=20)
    size = models.PositiveIntegerField()
    content = EncryptedTextField()  # base64 of the bytes
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["visit", "id"]
        verbose_name = _("走访照片")
        verbose_name_plural = _("走访照片")

    def __str__(self) -> str:
        return f"{self.visit_id}#{self.pk}"
