"""What the engine proposed, what a person confirmed, and what each child is owed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shouhu.lib.history import ShouhuHistoricalRecords

if TYPE_CHECKING:
    from shouhu.policy.forms import EntitlementForm

from shouhu.policy.rules import CATEGORY_NAMES

JIANGSU_CODES = {f"jiangsu_{n}": f"江苏第{n}类困境儿童" for n in range(1, 7)}
CATEGORY_CHOICES = [(code, name) for code, name in {**CATEGORY_NAMES, **JIANGSU_CODES}.items()]
MANUAL_CODES = ("guardianship_missing", "guardianship_improper")


class Origin(models.TextChoices):
    ENGINE = "engine", _("政策引擎提出、人工确认")
    PERSON = "person", _("人工认定")


class ChildCategory(models.Model):
    """A confirmed category with its validity period; ending one sets `valid_to`, nothing is deleted."""

    child = models.ForeignKey("registry.Child", on_delete=models.CASCADE, related_name="categories")
    code = models.CharField(_("类别"), max_length=30, choices=CATEGORY_CHOICES)
    explanation = models.TextField(_("依据说明"))
    source = models.CharField(_("政策依据"), max_length=120, blank=True)
    rule_version = models.CharField(_("规则版本"), max_length=20, blank=True)
    origin = models.CharField(_("来源"), max_length=10, choices=Origin.choices, default=Origin.ENGINE)
    valid_from = models.DateField(_("起始日期"))
    valid_to = models.DateField(_("终止日期"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("确认人")
    )
    confirmed_at = models.DateTimeField(_("确认时间"), auto_now_add=True)
    ended_reason = models.CharField(_("终止原因"), max_length=200, blank=True)
    history = ShouhuHistoricalRecords()

    class Meta:
        ordering = ["child", "code", "-valid_from"]
        verbose_name = _("认定类别")
        verbose_name_plural = _("认定类别")
        indexes = [models.Index(fields=["code", "valid_to"], name="category_code_current")]
        constraints = [
            models.UniqueConstraint(
                fields=["child", "code"], condition=Q(valid_to__isnull=True), name="category_one_current_per_code"
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="category_valid_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} {self.code}"


class ProposalKind(models.TextChoices):
    ADD = "add", _("新增认定")
    REMOVE = "remove", _("终止认定")


class ProposalState(models.TextChoices):
    PENDING = "pending", _("待确认")
    CONFIRMED = "confirmed", _("已确认")
    REJECTED = "rejected", _("已驳回")
    SUPERSEDED = "superseded", _("已失效")


class Proposal(models.Model):
    child = models.ForeignKey("registry.Child", on_delete=models.CASCADE, related_name="proposals")
    kind = models.CharField(_("类型"), max_length=10, choices=ProposalKind.choices)
    code = models.CharField(_("类别"), max_length=30, choices=CATEGORY_CHOICES)
    explanation = models.TextField(_("依据说明"))
    source = models.CharField(_("政策依据"), max_length=120, blank=True)
    rule_version = models.CharField(_("规则版本"), max_length=20, blank=True)
    as_of = models.DateField(_("评估日期"))
    created_at = models.DateTimeField(_("提出时间"), auto_now_add=True)
    state = models.CharField(
        _("状态"), max_length=12, choices=ProposalState.choices, default=ProposalState.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("处理人"),
    )
    decided_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    reason = models.CharField(_("处理理由"), max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("认定建议")
        verbose_name_plural = _("认定建议")
        constraints = [
            models.UniqueConstraint(
                fields=["child", "code"], condition=Q(state="pending"), name="proposal_one_pending_per_code"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} {self.kind} {self.code}"


class EntitlementState(models.TextChoices):
    ELIGIBLE = "eligible", _("应享")
    APPLIED = "applied", _("已申请")
    RECEIVING = "receiving", _("已享受")
    REFUSED = "refused", _("不予")
    ENDED = "ended", _("已终止")


class ChildEntitlement(models.Model):
    """A benefit or service the child should have; ELIGIBLE with nothing recorded is a gap."""

    child = models.ForeignKey("registry.Child", on_delete=models.CASCADE, related_name="entitlements")
    code = models.CharField(_("待遇"), max_length=40)
    name = models.CharField(_("名称"), max_length=60)
    need_type = models.ForeignKey("org.NeedType", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey(
        "org.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("责任单位"),
    )
    explanation = models.TextField(_("依据说明"))
    source = models.CharField(_("政策依据"), max_length=120, blank=True)
    amount_due = models.DecimalField(_("应发金额（元/月）"), max_digits=10, decimal_places=2, null=True, blank=True)
    state = models.CharField(
        _("状态"), max_length=12, choices=EntitlementState.choices, default=EntitlementState.ELIGIBLE, db_index=True
    )
    applied_on = models.DateField(_("申请日期"), null=True, blank=True)
    receiving_from = models.DateField(_("享受起始日期"), null=True, blank=True)
    amount_granted = models.DecimalField(_("实发金额（元/月）"), max_digits=10, decimal_places=2, null=True, blank=True)
    refused_reason = models.CharField(_("不予理由"), max_length=200, blank=True)
    ended_on = models.DateField(_("终止日期"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)
    history = ShouhuHistoricalRecords(excluded_fields=["version", "updated_at"])

    # Set by the child's policy tab (shouhu.policy.views.child_policy) for its template.
    can_record: bool
    form: EntitlementForm

    class Meta:
        ordering = ["child", "code"]
        verbose_name = _("待遇")
        verbose_name_plural = _("待遇")
        indexes = [models.Index(fields=["state", "unit"], name="entitlement_gap")]
        constraints = [
            models.UniqueConstraint(
                fields=["child", "code"], condition=~Q(state="ended"), name="entitlement_one_live_per_code"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} {self.code}"


class PolicyParameter(models.Model):
    """A district setting in force from `effective_from`; the newest row on or before a day wins."""

    key = models.CharField(_("参数"), max_length=40)
    value = models.JSONField(_("取值"))
    effective_from = models.DateField(_("生效日期"))
    source = models.CharField(_("依据"), max_length=200)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    set_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key", "-effective_from"]
        verbose_name = _("政策参数")
        verbose_name_plural = _("政策参数")
        constraints = [models.UniqueConstraint(fields=["key", "effective_from"], name="parameter_one_per_day")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.effective_from}"


class EvaluationState(models.Model):
    """The last evaluation of a child: lets the nightly run skip children whose result is unchanged."""

    child = models.OneToOneField(
        "registry.Child", on_delete=models.CASCADE, primary_key=True, related_name="evaluation"
    )
    digest = models.CharField(max_length=64)
    evaluated_at = models.DateTimeField()
    as_of = models.DateField()
    result = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.child_id} @ {self.as_of}"
