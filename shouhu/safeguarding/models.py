"""Mandatory reports (强制报告) and the emergency response: the report, its timeline, its clocks.

A report is stored before anything else happens: the submission commits the report, its deadlines,
its timeline and its audit event; its notifications are fanned out right after the commit by the
worker (`announced_at` marks the reports still to announce, so a worker that is down loses
nothing) and go through the notify outbox, retried until sent. Each step that has a deadline is a
`ReportDeadline`: met when the step is done, escalated once when it is late. Overdue is computed
from `due_at`, never stored.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shouhu.lib.fields import EncryptedTextField

# The nine situations of 高检发〔2020〕9号 art. 4 (policy.md §4).
SITUATIONS = {
    1: _("生殖器官或隐私部位遭受或疑似遭受非正常损伤"),
    2: _("不满十四周岁的女性遭受或疑似遭受性侵害、怀孕、流产"),
    3: _("十四周岁以上女性遭受或疑似遭受性侵害所致怀孕、流产"),
    4: _("身体存在多处损伤、严重营养不良、意识不清，存在或疑似存在家庭暴力、欺凌、虐待、殴打或被人麻醉"),
    5: _("因自杀、自残、工伤、中毒、被人麻醉、殴打等非正常原因导致伤残、死亡"),
    6: _("被遗弃或长期处于无人照料状态"),
    7: _("来源不明、失踪或者被拐卖、收买"),
    8: _("被组织乞讨"),
    9: _("其他严重侵害未成年人身心健康的情形或未成年人正在面临不法侵害危险"),
}
SHORT = {
    1: _("隐私部位损伤"),
    2: _("不满14周岁女性遭性侵害"),
    3: _("性侵害致怀孕流产"),
    4: _("多处损伤/家暴/虐待"),
    5: _("非正常伤残死亡"),
    6: _("被遗弃/无人照料"),
    7: _("来源不明/失踪/被拐"),
    8: _("被组织乞讨"),
    9: _("其他严重侵害/正面临危险"),
}
URGENT_SITUATIONS = frozenset({2, 4, 5, 7})

RECEIPT_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed on a phone


def new_receipt_code() -> str:
    return "".join(secrets.choice(RECEIPT_ALPHABET) for _i in range(10))


class Source(models.TextChoices):
    ORGANIZATION = "organization", _("报告单位")
    PUBLIC = "public", _("公众举报")
    API = "api", _("系统对接")


class ReportStatus(models.TextChoices):
    RECEIVED = "received", _("已接收")
    ACCEPTED = "accepted", _("已受理")
    DISPATCHED = "dispatched", _("已出警")
    HANDLED = "handled", _("已处置")
    CLOSED = "closed", _("已办结")


class Sex(models.TextChoices):
    MALE = "M", _("男")
    FEMALE = "F", _("女")
    UNKNOWN = "", _("不详")


class Report(models.Model):
    receipt_code = models.CharField(_("回执码"), max_length=12, unique=True, default=new_receipt_code, editable=False)
    source = models.CharField(_("来源"), max_length=20, choices=Source.choices)
    # The reporter: confidential (only the police handling it and the district office see it).
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("报告人"),
    )
    reporter_org = models.ForeignKey(
        "org.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports_filed",
        verbose_name=_("报告单位"),
    )
    reporter_contact = EncryptedTextField(_("报告人联系方式"), blank=True)  # public reports, optional
    idempotency_key = models.CharField(max_length=80, blank=True)
    situations = models.JSONField(_("情形"), default=list)
    urgent = models.BooleanField(_("紧急"), default=False)
    danger_now = models.BooleanField(_("儿童当前处于危险中"), default=False)
    child = models.ForeignKey(
        "registry.Child",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
        verbose_name=_("台账儿童"),
    )
    child_name = EncryptedTextField(_("儿童姓名"), blank=True)
    child_sex = models.CharField(_("性别"), max_length=1, choices=Sex.choices, blank=True)
    child_age = models.PositiveSmallIntegerField(_("大致年龄"), null=True, blank=True)
    child_id_number = EncryptedTextField(_("儿童身份证号"), blank=True)
    found_at = models.DateTimeField(_("发现时间"))
    place_region = models.ForeignKey(
        "org.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("发现地点所在镇（街道）/村（社区）")
    )
    place = EncryptedTextField(_("具体地点"), blank=True)
    description = EncryptedTextField(_("看到的情况"))
    police_station = models.ForeignKey(
        "org.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reports_routed",
        verbose_name=_("管辖派出所"),
    )
    town_code = models.CharField(_("镇（街道）代码"), max_length=12, db_index=True)
    status = models.CharField(_("状态"), max_length=20, choices=ReportStatus.choices, default=ReportStatus.RECEIVED)
    officer = models.CharField(_("受理民警"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("接收时间"), auto_now_add=True, db_index=True)
    accepted_at = models.DateTimeField(_("受理时间"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("出警时间"), null=True, blank=True)
    town_notified_at = models.DateTimeField(_("通报镇（街道）时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    outcome = models.CharField(_("处理结果（反馈报告单位）"), max_length=500, blank=True)
    commended = models.BooleanField(_("予以表扬奖励"), default=False)
    version = models.PositiveIntegerField(default=1)
    # When the station, the district police, the town and the district office were told (the
    # notifications written). Empty from the submission's commit until the worker fans them out:
    # the outbox marker that the immediate task and the minute sweep both pick up (services.announce_reports).
    announced_at = models.DateTimeField(_("通知发出时间"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("强制报告")
        verbose_name_plural = _("强制报告")
        indexes = [
            models.Index(fields=["police_station", "status", "created_at"], name="report_station_inbox"),
            models.Index(fields=["id"], condition=Q(announced_at__isnull=True), name="report_unannounced"),
        ]
        constraints = [
            # A retried submission (same reporter, same key) is the first report, not a second.
            models.UniqueConstraint(
                fields=["reporter", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="report_idempotency_per_reporter",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.receipt_code} {self.get_status_display()}"

    @property
    def situation_labels(self) -> list[str]:
        return [str(SHORT.get(int(s), s)) for s in self.situations]


class DeadlineKind(models.TextChoices):
    ACCEPT = "accept", _("公安受理")
    TOWN_NOTIFY = "town_notify", _("通报镇（街道）政府")
    FEEDBACK = "feedback", _("向报告单位反馈受理情况")
    RESULT = "result", _("向报告单位反馈处理结果")
    ASSESSMENT = "assessment", _("镇（街道）评估帮扶")


class ReportDeadline(models.Model):
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="deadlines")
    kind = models.CharField(_("环节"), max_length=20, choices=DeadlineKind.choices)
    due_at = models.DateTimeField(_("期限"), db_index=True)
    met_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("升级督办时间"), null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("办理时限")
        verbose_name_plural = _("办理时限")
        constraints = [models.UniqueConstraint(fields=["report", "kind"], name="report_deadline_once")]
        indexes = [models.Index(fields=["met_at", "escalated_at", "due_at"], name="deadline_open_due")]

    def __str__(self) -> str:
        return f"{self.report_id} {self.kind} {self.due_at:%Y-%m-%d %H:%M}"


class EventKind(models.TextChoices):
    RECEIVED = "received", _("接收报告")
    ROUTED = "routed", _("分派派出所")
    ACCEPTED = "accepted", _("受理")
    DISPATCHED = "dispatched", _("出警")
    MEASURE = "measure", _("处置措施")
    TOWN_NOTIFIED = "town_notified", _("通报镇（街道）政府")
    FEEDBACK = "feedback", _("反馈报告单位")
    ESCALATED = "escalated", _("超时升级督办")
    PLACEMENT = "placement", _("临时监护安置")
    PLACEMENT_END = "placement_end", _("安置结束")
    ASSESSED = "assessed", _("评估帮扶")
    HELP = "help", _("请成员单位协助")
    CLOSED = "closed", _("办结")
    COMMENDED = "commended", _("表扬奖励")


class Measure(models.TextChoices):
    ESCORT = "escort", _("带离护送、临时安置")
    EVIDENCE = "evidence", _("调查取证")
    HOSPITAL = "hospital", _("协助就医")
    INJURY = "injury", _("鉴定伤情")
    ADMONISH = "admonish", _("批评教育父母")
    ADMIN_CASE = "admin_case", _("行政立案")
    CRIMINAL_CASE = "criminal_case", _("刑事立案")
    TRANSFER = "transfer", _("移送其他机关")


class ReportEvent(models.Model):
    """One step on the report's timeline: what, when, who (user and organisation)."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("环节"), max_length=20, choices=EventKind.choices)
    at = models.DateTimeField(_("时间"))
    recorded_at = models.DateTimeField(auto_now_add=True)
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
    measure = models.CharField(_("措施"), max_length=20, choices=Measure.choices, blank=True)
    note = EncryptedTextField(_("说明"), blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("处置记录")
        verbose_name_plural = _("处置记录")

    def __str__(self) -> str:
        return f"{self.report_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class PlacementKind(models.TextChoices):
    RELATIVES = "relatives", _("亲属抚养")
    FOSTER = "foster", _("家庭寄养")
    INSTITUTION = "institution", _("机构养育")


class Placement(models.Model):
    """Temporary guardianship by civil affairs (未成年人保护法 art. 92-93) after a police escort."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="placements")
    kind = models.CharField(_("安置方式"), max_length=20, choices=PlacementKind.choices)
    received_at = models.DateTimeField(_("接收时间"))
    ground = models.CharField(_("临时监护情形（第九十二条）"), max_length=200)
    where = EncryptedTextField(_("安置地点/照料人"), blank=True)
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_note = models.CharField(_("结束说明"), max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["report", "received_at"]
        verbose_name = _("临时监护安置")
        verbose_name_plural = _("临时监护安置")
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("received_at")),
                name="placement_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.report_id} {self.kind}"


class ReportAttachment(models.Model):
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="attachments")
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    content = EncryptedTextField()  # base64
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["report", "id"]

    def __str__(self) -> str:
        return f"{self.report_id}#{self.pk}"
