"""Notifications and their deliveries (an outbox).

A notification is the in-app inbox entry of one user. It is written in the caller's transaction;
each external channel (SMS, email, WeCom, the log) gets a `Delivery` row that the delivery loop
sends after the commit and retries with backoff until it is sent or given up. A channel that is
down therefore never loses a notification: the inbox entry and the pending delivery stay.

By design a notification carries no personal data of a child: the caller passes a neutral
sentence and a relative link into the platform, where the reader's own access rules apply. The
text travels through third-party gateways (SMS, WeCom) and lands on lock screens.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def validate_relative_url(value: str) -> None:
    """A path inside the platform: starts with one "/", no scheme, no host, no backslash."""
    if not value:
        return
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ch.isspace() or ord(ch) < 32 for ch in value)
    ):
        raise ValidationError(_("链接必须是平台内的相对路径（以 / 开头）。"), code="relative_url")


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("接收人")
    )
    organization = models.ForeignKey(
        "org.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("相关单位"),
    )
    kind = models.CharField(_("类型"), max_length=40)
    title = models.CharField(_("标题"), max_length=80)
    body = models.CharField(_("内容"), max_length=200, blank=True)
    url = models.CharField(_("链接"), max_length=300, blank=True, validators=[validate_relative_url])
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)
    # The same digest or alert is never created twice for one recipient.
    dedupe_key = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notify_inbox"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notify_unread"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"], condition=~Q(dedupe_key=""), name="notify_dedupe_per_recipient"
            ),
            # Never an absolute or protocol-relative URL: the inbox redirects to it.
            models.CheckConstraint(
                condition=Q(url="") | (Q(url__startswith="/") & ~Q(url__startswith="//") & ~Q(url__contains="\\")),
                name="notify_url_relative",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败，待重试")
    GIVEN_UP = "given_up", _("已放弃")


DUE_STATES = (DeliveryState.PENDING, DeliveryState.FAILED)


class Delivery(models.Model):
    """One notification through one channel. The address (phone, email, WeCom id) is looked up at
    sending time and never stored here."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(_("渠道"), max_length=30)
    state = models.CharField(_("状态"), max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    # When the loop may try next; also the lease of a claimed delivery. Empty once sent or given up.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(_("最近错误"), max_length=500, blank=True)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("通知发送")
        verbose_name_plural = _("通知发送")
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state__in=["pending", "failed"]), name="notify_delivery_due"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="notify_delivery_once_per_channel"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "failed"]) | Q(next_attempt_at__isnull=True),
                name="notify_delivery_due_only_when_open",
            ),
            models.CheckConstraint(
                condition=~Q(state="sent") | Q(sent_at__isnull=False), name="notify_delivery_sent_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.notification_id}:{self.state}"
