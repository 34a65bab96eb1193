"""Append-only, hash-chained audit events."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    VIEW = "view", _("查看")
    UNMASK = "unmask", _("查看完整证件号/电话")
    CREATE = "create", _("新增")
    UPDATE = "update", _("修改")
    EXIT = "exit", _("退出台账")
    REENTER = "reenter", _("重新纳入台账")
    EXPORT = "export", _("导出")
    SEARCH = "search", _("检索")
    LOGIN = "login", _("登录")
    LOGIN_FAILED = "login_failed", _("登录失败")
    LOGOUT = "logout", _("退出登录")
    LOCKOUT = "lockout", _("账号锁定")
    DENIED = "denied", _("拒绝访问")
    ROLE_CHANGE = "role_change", _("角色变更")
    ADMIN_CHANGE = "admin_change", _("管理配置变更")
    TOKEN_ISSUED = "token_issued", _("签发接口令牌")
    IMPORT = "import", _("导入")
    IMPORT_UNDO = "import_undo", _("撤销导入")
    DELETE = "delete", _("删除")


class AuditEvent(models.Model):
    """One event. Rows are never updated or deleted (a PostgreSQL trigger refuses it).

    `hash` = SHA-256 over the previous event's hash and this event's canonical content, so an
    edited, inserted or deleted row breaks the chain (`manage.py verify_audit`).
    """

    seq = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(_("时间"), db_index=True)
    # Plain ids, not foreign keys: an audit row outlives the user and the organisation it names.
    actor_id = models.BigIntegerField(_("操作人编号"), null=True, blank=True, db_index=True)
    actor_name = models.CharField(_("操作人账号"), max_length=150, blank=True)
    organization_id = models.BigIntegerField(null=True, blank=True)
    organization_name = models.CharField(_("单位"), max_length=100, blank=True)
    # Indexed in Meta: the log is filtered by action and by object id, always by equality.
    action = models.CharField(_("动作"), max_length=20, choices=Action.choices)
    object_type = models.CharField(_("对象类型"), max_length=40, blank=True)
    object_id = models.CharField(_("对象"), max_length=64, blank=True)
    object_label = models.CharField(_("对象说明"), max_length=100, blank=True)
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)  # unique (Meta)

    class Meta:
        ordering = ["-seq"]
        # Plain btrees: a `db_index` or `unique` text column also gets a pattern-ops index for LIKE,
        # which no query of the log makes, and every event (one per child an import creates) pays
        # for each index. No index on object_type: nothing filters by it alone.
        indexes = [
            models.Index(fields=["action"], name="audit_event_action"),
            models.Index(fields=["object_id"], name="audit_event_object_id"),
        ]
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_event_hash_unique")]
        verbose_name = _("审计事件")
        verbose_name_plural = _("审计事件")

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class ChainHead(models.Model):
    """The chain's last hash; its row lock serialises writers across processes."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"chain head #{self.last_seq}"
