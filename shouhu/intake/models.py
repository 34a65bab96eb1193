"""Survey imports: which file who imported when, and which children it created or changed.

The uploaded file is kept (encrypted: it holds ID numbers and phones) with its SHA-256, so an import
can be traced back to the exact sheet. Each child the import created or changed has one
`SurveyImportItem` holding the child's version after the import and, for a changed child, the
values the import replaced (encrypted JSON), which is what `services.import_undo` restores.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shouhu.lib.fields import EncryptedBinaryField, EncryptedTextField


class ImportState(models.TextChoices):
    # A large file uploaded on the import page, its preview job queued or running (shouhu.intake.jobs);
    # with `job_error` set, the file could not be read at all.
    CHECKING = "checking", _("正在检查")
    # A file uploaded on the import page and previewed, kept (encrypted) until the user confirms
    # or uploads another: the confirm and the error workbook read it back instead of a re-upload.
    PREVIEWED = "previewed", _("待确认")
    # Confirmed, the commit job queued or running. Its writes are one transaction, so a worker that
    # dies leaves the ledger untouched and the row in this state, to be started again.
    COMMITTING = "committing", _("正在导入")
    FAILED = "failed", _("有错误，未导入")
    COMMITTED = "committed", _("已导入")
    # A large import's undo, its job queued or running (one transaction: a worker that dies leaves
    # the import as it was, to be started again). A refused undo goes back to *committed*, with
    # `job_error` saying why.
    UNDOING = "undoing", _("正在撤销")
    UNDONE = "undone", _("已撤销")


# Before the user's confirmation: not yet an import (not in the history; replaced by a new upload).
UNCONFIRMED_STATES = (ImportState.CHECKING, ImportState.PREVIEWED)
RUNNING_STATES = (ImportState.CHECKING, ImportState.COMMITTING, ImportState.UNDOING)


class SurveyImport(models.Model):
    filename = models.CharField(_("文件名"), max_length=255)
    sha256 = models.CharField(_("文件SHA-256"), max_length=64, db_index=True)
    size = models.PositiveBigIntegerField(_("文件大小（字节）"))
    format = models.CharField(_("文件格式"), max_length=10)
    # The uploaded bytes, encrypted (shouhu.lib.crypto.encrypt_bytes): use `set_file` / `file_bytes()`.
    file = EncryptedBinaryField(_("文件内容"), blank=True, default=b"")
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("导入人")
    )
    organization = models.ForeignKey(
        "org.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("单位")
    )
    created_at = models.DateTimeField(_("导入时间"), auto_now_add=True)
    state = models.CharField(_("状态"), max_length=10, choices=ImportState.choices)
    # {"new", "changed", "unchanged", "invalid", "not_applied"} and "not_applied_rows": [{"row", "columns"}]
    counts = models.JSONField(_("统计"), default=dict, blank=True)
    committed_at = models.DateTimeField(_("提交时间"), null=True, blank=True)
    undone_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("撤销人"),
    )
    # The background flow (shouhu.intake.jobs). `result`: the stored preview as JSON, encrypted (it
    # holds masked ledger values): see `set_result`. `job_error`: why the file as a whole could not
    # be checked or imported (Chinese). The current attempt was queued at `queued_at`, taken by a
    # worker at `started_at` (null while queued: the claim that keeps a second worker off it) and
    # ended at `finished_at`; `attempts` counts the starts, so a superseded job knows to stop.
    result = EncryptedTextField(_("预览结果"), blank=True)
    job_error = models.TextField(_("后台任务错误"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    queued_at = models.DateTimeField(_("排队时间"), null=True, blank=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    # The files uploaded together (a town's village sheets): one page shows them and imports those
    # without errors at one click (shouhu.intake.views.import_batch). Null for a file uploaded alone.
    batch = models.UUIDField(_("批次"), null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("摸底排查导入")
        verbose_name_plural = _("摸底排查导入")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["checking", "previewed", "committing", "failed"], committed_at__isnull=True)
                | Q(state__in=["committed", "undoing", "undone"], committed_at__isnull=False),
                name="import_committed_at_iff_committed",
            ),
            models.CheckConstraint(
                condition=Q(state="undone", undone_at__isnull=False) | (~Q(state="undone") & Q(undone_at__isnull=True)),
                name="import_undone_at_iff_undone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_state_display()})"

    @property
    def running(self) -> bool:
        """A background job is (or should be) at work on this import."""
        return self.state in RUNNING_STATES and not self.job_error

    def set_result(self, value: dict[str, Any]) -> None:
        self.result = json.dumps(value, ensure_ascii=False, sort_keys=True)

    def get_result(self) -> dict[str, Any]:
        return json.loads(self.result) if self.result else {}

    def set_file(self, data: bytes) -> None:
        self.file = data  # not copied: encrypted into one buffer when saved

    def file_bytes(self) -> bytes:
        """The file as uploaded: the decrypted buffer itself, not a copy (loaded here when deferred)."""
        return bytes(self.file) if isinstance(self.file, bytearray | memoryview) else self.file


class ItemAction(models.TextChoices):
    CREATED = "created", _("新增")
    CHANGED = "changed", _("变更")


class SurveyImportItem(models.Model):
    # No index of its own: both unique constraints below lead with it.
    survey_import = models.ForeignKey(SurveyImport, on_delete=models.CASCADE, related_name="items", db_index=False)
    # SET_NULL: undoing an import deletes the children it created; the item stays as the record.
    child = models.ForeignKey("registry.Child", null=True, on_delete=models.SET_NULL, related_name="+")
    row = models.PositiveIntegerField(_("行号"))
    action = models.CharField(_("操作"), max_length=10, choices=ItemAction.choices)
    version_after = models.PositiveIntegerField(_("导入后版本"))
    household_version_after = models.PositiveIntegerField(null=True, blank=True)
    # JSON {"child": {field: old}, "household": {field: old} | null, "household_created": bool}, encrypted.
    replaced = EncryptedTextField(_("被替换的值"), blank=True)

    class Meta:
        ordering = ["survey_import", "row"]
        verbose_name = _("导入明细")
        verbose_name_plural = _("导入明细")
        constraints = [
            models.UniqueConstraint(fields=["survey_import", "child"], name="import_item_child_once"),
            models.UniqueConstraint(fields=["survey_import", "row"], name="import_item_row_once"),
        ]

    def __str__(self) -> str:
        return f"{self.survey_import_id}#{self.row} {self.get_action_display()}"

    def set_replaced(self, value: dict[str, Any]) -> None:
        self.replaced = json.dumps(value, ensure_ascii=False, sort_keys=True)

    def get_replaced(self) -> dict[str, Any]:
        return json.loads(self.replaced) if self.replaced else {}


class ExportState(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("正在生成")
    DONE = "done", _("已生成")
    FAILED = "failed", _("生成失败")


class LedgerExport(models.Model):
    """A ledger list too long to write within a web request (a district's, 100,000 children: minutes),
    written by the worker (shouhu.intake.exports) and kept, encrypted, for its requester to
    download until `expires_at`. Writing it is an audited export; so is each download."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("申请人")
    )
    created_at = models.DateTimeField(_("申请时间"), auto_now_add=True)
    # {"filters": {name: value}, "query": the search text, "unmasked": bool}, encrypted: a search may
    # be a child's name. See `set_params` / `get_params`.
    params = EncryptedTextField(_("导出条件"))
    expected_rows = models.PositiveIntegerField(_("预计行数"), default=0)
    state = models.CharField(_("状态"), max_length=10, choices=ExportState.choices, default=ExportState.QUEUED)
    rows = models.PositiveIntegerField(_("行数"), default=0)
    file = EncryptedBinaryField(_("文件内容"), blank=True, default=b"")
    job_error = models.TextField(_("错误"), blank=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    expires_at = models.DateTimeField(_("下载截止"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("台账导出")
        verbose_name_plural = _("台账导出")

    def __str__(self) -> str:
        return f"{self.pk} ({self.get_state_display()})"

    def set_params(self, value: dict[str, Any]) -> None:
        self.params = json.dumps(value, ensure_ascii=False, sort_keys=True)

    def get_params(self) -> dict[str, Any]:
        return json.loads(self.params) if self.params else {}
