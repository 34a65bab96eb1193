"""The ledger: children, their families and guardians, households and entrusted care."""

from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from shouhu.lib.fields import EncryptedTextField
from shouhu.lib.history import ShouhuHistoricalRecords
from shouhu.lib.i18n import lazy_interpolate
from shouhu.lib.text import mask_address, mask_id_number, mask_phone

# A disability grade, 1-4 (残疾等级), as shown.
DISABILITY_GRADES = [(i, lazy_interpolate(_("%(n)d级"), {"n": i})) for i in range(1, 5)]


class Gender(models.TextChoices):
    MALE = "M", _("男")
    FEMALE = "F", _("女")


class HukouType(models.TextChoices):
    RURAL = "rural", _("农业户口")
    URBAN = "urban", _("非农业户口")
    NONE = "none", _("未落户")


class Health(models.TextChoices):
    HEALTHY = "healthy", _("健康")
    DISABLED = "disabled", _("残疾")
    ILL = "ill", _("患病")


class DisabilityType(models.TextChoices):
    PHYSICAL = "physical", _("肢体")
    VISUAL = "visual", _("视力")
    HEARING = "hearing", _("听力")
    SPEECH = "speech", _("言语")
    INTELLECTUAL = "intellectual", _("智力")
    MENTAL = "mental", _("精神")
    MULTIPLE = "multiple", _("多重")


class SchoolStage(models.TextChoices):
    NOT_ENROLLED = "not_enrolled", _("学前未入园")
    KINDERGARTEN = "kindergarten", _("幼儿园")
    PRIMARY = "primary", _("小学")
    JUNIOR = "junior", _("初中")
    SENIOR = "senior", _("普通高中")
    VOCATIONAL = "vocational", _("中职")
    DROPPED_OUT = "dropped_out", _("辍学")
    NOT_IN_SCHOOL = "not_in_school", _("不在学（已毕业等）")


class GuardianshipType(models.TextChoices):
    NONE = "none", _("无人监护")
    PARENT_INCAPABLE = "parent_incapable", _("父或母无监护能力")
    CARER_INSUFFICIENT = "carer_insufficient", _("委托人能力不足")
    ORDINARY = "ordinary", _("一般")
    GOOD = "good", _("较好")


class GuardianshipAssessment(models.TextChoices):
    GOOD = "good", _("较好")
    ORDINARY = "ordinary", _("一般")
    POOR = "poor", _("差")


class EconomicStatus(models.TextChoices):
    ORDINARY = "ordinary", _("一般")
    DIBAO = "dibao", _("低保")
    TEKUN = "tekun", _("特困")
    DIBAO_EDGE = "dibao_edge", _("低保边缘")


class LedgerStatus(models.TextChoices):
    ACTIVE = "active", _("在册")
    EXITED = "exited", _("退出")


class ExitReason(models.TextChoices):
    AGED_OUT = "aged_out", _("年满18周岁")
    PARENT_RETURNED = "parent_returned", _("父母返乡/随父母生活")
    SITUATION_CHANGED = "situation_changed", _("困境情形消除")
    MOVED_AWAY = "moved_away", _("迁出本区")
    DECEASED = "deceased", _("死亡")
    DUPLICATE = "duplicate", _("重复登记")
    OTHER = "other", _("其他")


class Household(models.Model):
    address = EncryptedTextField(_("家庭住址"), blank=True)
    economic_status = models.CharField(
        _("家庭经济状况"), max_length=20, choices=EconomicStatus.choices, default=EconomicStatus.ORDINARY
    )
    housing = models.CharField(_("住房情况"), max_length=100, blank=True)
    income_sources = models.JSONField(_("收入来源"), default=list, blank=True)
    assistance_received = models.JSONField(_("已获救助"), default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    history = ShouhuHistoricalRecords(excluded_fields=["version"])

    class Meta:
        verbose_name = _("家庭")
        verbose_name_plural = _("家庭")

    def __str__(self) -> str:
        return f"household {self.pk}"  # no address: it is personal data

    @property
    def address_masked(self) -> str:
        return mask_address(self.address) if self.address else ""


INCOME_SOURCES = [
    ("migrant_work", _("外出务工")),
    ("farming", _("务农")),
    ("government_aid", _("政府救助")),
    ("relatives", _("亲友资助")),
    ("other", _("其他")),
]
ASSISTANCE_KINDS = [
    ("dibao", _("低保")),
    ("temporary", _("临时救助")),
    ("medical", _("医疗救助")),
    ("housing", _("住房救助")),
    ("other", _("其他")),
]


class Child(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("姓名"), max_length=40)
    name_pinyin = models.CharField(max_length=120, db_index=True, editable=False)
    name_initials = models.CharField(max_length=30, db_index=True, editable=False)
    id_number = EncryptedTextField(_("身份证号"))
    id_number_index = models.CharField(max_length=40, editable=False)  # unique (Meta)
    gender = models.CharField(_("性别"), max_length=1, choices=Gender.choices)
    birth_date = models.DateField(_("出生日期"), db_index=True)
    ethnicity = models.CharField(_("民族"), max_length=20, default="汉族")
    hukou_registered = models.BooleanField(_("已登记户口"), default=True)
    hukou_type = models.CharField(_("户口性质"), max_length=10, choices=HukouType.choices, default=HukouType.RURAL)
    hukou_place = models.CharField(_("户籍地"), max_length=100, blank=True)
    region = models.ForeignKey(
        "org.Region", on_delete=models.PROTECT, related_name="+", verbose_name=_("所在村（社区）")
    )
    household = models.ForeignKey(
        Household, null=True, blank=True, on_delete=models.SET_NULL, related_name="children", verbose_name=_("家庭")
    )
    health = models.CharField(_("健康状况"), max_length=10, choices=Health.choices, default=Health.HEALTHY)
    disability_type = models.CharField(_("残疾类别"), max_length=20, choices=DisabilityType.choices, blank=True)
    disability_grade = models.PositiveSmallIntegerField(_("残疾等级"), null=True, blank=True, choices=DISABILITY_GRADES)
    illness = models.CharField(_("所患疾病"), max_length=100, blank=True)
    school_stage = models.CharField(_("就学阶段"), max_length=20, choices=SchoolStage.choices)
    school_name = models.CharField(_("学校"), max_length=100, blank=True)
    grade = models.CharField(_("年级"), max_length=20, blank=True)
    boarding = models.BooleanField(_("寄宿"), default=False)
    lives_with_parents = models.BooleanField(_("与父母共同生活"), default=False)
    street_child = models.BooleanField(_("流浪儿童"), default=False)
    guardianship_type = models.CharField(
        _("监护类型"), max_length=20, choices=GuardianshipType.choices, default=GuardianshipType.ORDINARY
    )
    guardianship_assessment = models.CharField(
        _("监护评估"), max_length=10, choices=GuardianshipAssessment.choices, blank=True
    )
    status = models.CharField(
        _("台账状态"), max_length=10, choices=LedgerStatus.choices, default=LedgerStatus.ACTIVE
    )  # indexed (Meta)
    exit_reason = models.CharField(_("退出原因"), max_length=20, choices=ExitReason.choices, blank=True)
    exit_date = models.DateField(_("退出日期"), null=True, blank=True)
    exit_note = models.CharField(_("退出说明"), max_length=200, blank=True)
    note = models.TextField(_("备注"), blank=True, max_length=2000)
    registered_at = models.DateTimeField(_("登记时间"), auto_now_add=True)
    registered_by = models.ForeignKey(  # empty for imported and migrated records
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("登记人"),
    )
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    version = models.PositiveIntegerField(default=1)
    # The history is read by child (`id`) only: the ledger's indexes are not copied to it.
    history = ShouhuHistoricalRecords(
        excluded_fields=["version", "updated_at", "name_pinyin", "name_initials"],
        no_db_index=["id_number_index", "birth_date", "region", "household", "status", "registered_by"],
    )

    class Meta:
        verbose_name = _("儿童")
        verbose_name_plural = _("儿童")
        indexes = [
            # The ledger list (bench/ledger.py): a scope is `region_id LIKE '320412100%'`, which a
            # btree serves only with pattern ops (the database collation is not "C"); the other
            # filters and the sort and search keys follow, so the COUNT and the page's ids come
            # from an index-only scan of the scope instead of one heap row per child.
            models.Index(
                fields=[
                    "region",
                    "status",
                    "school_stage",
                    "birth_date",
                    "gender",
                    "health",
                    "guardianship_type",
                    "name_pinyin",
                    "name_initials",
                    "id",
                ],
                opclasses=[
                    "varchar_pattern_ops",
                    "text_ops",
                    "text_ops",
                    "date_ops",
                    "text_ops",
                    "text_ops",
                    "text_ops",
                    "text_ops",
                    "text_ops",
                    "uuid_ops",
                ],
                name="child_ledger_scope",
            ),
            # The same columns in the ledger's name order: the first page of a wide scope (the
            # district), of a narrow one (a village) or of a search walks this in order without a
            # heap row per child it passes over (the name_pinyin index alone reads one each).
            models.Index(
                fields=[
                    "name_pinyin",
                    "id",
                    "region",
                    "status",
                    "school_stage",
                    "birth_date",
                    "gender",
                    "health",
                    "guardianship_type",
                    "name_initials",
                ],
                name="child_ledger_order",
            ),
            # Plain btrees where `db_index`/`unique` would add a pattern-ops (LIKE) twin that no
            # query uses: a status and an ID number's blind index are matched by equality only.
            models.Index(fields=["status"], name="child_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["id_number_index"], name="child_id_number_index_unique"),
            models.CheckConstraint(
                condition=Q(status="active", exit_date__isnull=True) | Q(status="exited", exit_date__isnull=False),
                name="child_exit_date_iff_exited",
            ),
            models.CheckConstraint(
                condition=Q(disability_grade__isnull=True) | Q(disability_grade__gte=1, disability_grade__lte=4),
                name="child_disability_grade_1_4",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)

    def current_entrustment(self, today: date) -> Entrustment | None:
        """The entrustment in force on `today` (the latest begun), from `entrustments` — prefetch
        them when asking for many children."""
        current = [e for e in self.entrustments.all() if e.until is None or e.until >= today]
        current.sort(key=lambda e: (e.since or date.min, e.pk), reverse=True)
        return current[0] if current else None

    def age_on(self, day: date) -> int:
        """Completed years (周岁) on `day`; the birthday itself does not yet count (policy.md §1)."""
        from shouhu.policy.dates import age_on

        return age_on(self.birth_date, day)


class Relation(models.TextChoices):
    FATHER = "father", _("父亲")
    MOTHER = "mother", _("母亲")
    GRANDFATHER_P = "grandfather_p", _("祖父")
    GRANDMOTHER_P = "grandmother_p", _("祖母")
    GRANDFATHER_M = "grandfather_m", _("外祖父")
    GRANDMOTHER_M = "grandmother_m", _("外祖母")
    SIBLING = "sibling", _("兄弟姐妹")
    STEP_PARENT = "step_parent", _("继父母")
    OTHER_RELATIVE = "other_relative", _("其他亲属")
    OTHER = "other", _("其他")


class Capacity(models.TextChoices):
    FULL = "full", _("有监护能力")
    LIMITED = "limited", _("监护能力不足")
    NONE = "none", _("无监护能力")


class FamilyMember(models.Model):
    child = models.ForeignKey(Child, on_delete=models.CASCADE, related_name="family")
    relation = models.CharField(_("与儿童关系"), max_length=20, choices=Relation.choices)
    name = models.CharField(_("姓名"), max_length=40)
    id_number = EncryptedTextField(_("身份证号"), blank=True)
    id_number_index = models.CharField(max_length=40, blank=True, editable=False)  # indexed in Meta
    birth_date = models.DateField(_("出生日期"), null=True, blank=True)
    phone = EncryptedTextField(_("联系电话"), blank=True)
    work_place = models.CharField(_("务工地/工作单位"), max_length=100, blank=True)
    is_guardian = models.BooleanField(_("监护人"), default=False)
    capacity = models.CharField(_("监护能力"), max_length=10, choices=Capacity.choices, default=Capacity.FULL)
    version = models.PositiveIntegerField(default=1)
    history = ShouhuHistoricalRecords(excluded_fields=["version", "id_number_index"])

    # Set by the child page (registry.views.child_detail) for its template: the situations the
    # viewer is cleared to see, and the number of the others.
    visible_situations: list[ParentSituation]
    hidden_situations: int

    class Meta:
        ordering = ["child", "relation", "id"]
        verbose_name = _("家庭成员")
        verbose_name_plural = _("家庭成员")
        # Looked up by equality only: a plain btree, without the pattern-ops twin `db_index` adds.
        indexes = [models.Index(fields=["id_number_index"], name="member_id_number_index")]

    def __str__(self) -> str:
        return f"{self.get_relation_display()} {self.name}"

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone) if self.phone else ""

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number) if self.id_number else ""


class SituationKind(models.TextChoices):
    """A parent's situation; codes are those of the policy engine's input (policy.md §1, §3)."""

    OUT_FOR_WORK = "out_for_work", _("外出务工")
    SEVERE_DISABILITY = "severe_disability", _("重残")
    SERIOUS_ILLNESS = "serious_illness", _("重病")
    IMPRISONED = "imprisoned", _("服刑在押")
    DRUG_REHAB = "drug_rehab", _("强制隔离戒毒")
    RESTRICTED_LIBERTY = "restricted_liberty", _("被执行其他限制人身自由的措施")
    LOST_CONTACT = "lost_contact", _("失联")
    DECEASED = "deceased", _("死亡")
    DECLARED_MISSING = "declared_missing", _("宣告失踪")
    GUARDIANSHIP_REVOKED = "guardianship_revoked", _("被撤销监护资格")
    DEPORTED = "deported", _("被遣送（驱逐）出境")
    NO_CAPACITY = "no_capacity", _("无监护能力（其他）")


# Facts that carry the JUDICIAL label: shown only to roles cleared for it (shouhu.org.access).
JUDICIAL_SITUATIONS = frozenset(
    {
        SituationKind.IMPRISONED,
        SituationKind.DRUG_REHAB,
        SituationKind.RESTRICTED_LIBERTY,
        SituationKind.GUARDIANSHIP_REVOKED,
        SituationKind.DEPORTED,
    }
)


class ParentSituation(models.Model):
    member = models.ForeignKey(FamilyMember, on_delete=models.CASCADE, related_name="situations")
    kind = models.CharField(_("情形"), max_length=30, choices=SituationKind.choices)
    since = models.DateField(_("起始日期"), null=True, blank=True)
    until = models.DateField(_("结束日期"), null=True, blank=True)
    disability_grade = models.PositiveSmallIntegerField(_("残疾等级"), null=True, blank=True, choices=DISABILITY_GRADES)
    disability_type = models.CharField(_("残疾类别"), max_length=20, choices=DisabilityType.choices, blank=True)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    history = ShouhuHistoricalRecords()

    class Meta:
        ordering = ["member", "since", "id"]
        verbose_name = _("父母情形")
        verbose_name_plural = _("父母情形")
        constraints = [
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(since__isnull=True) | Q(until__gte=models.F("since")),
                name="situation_until_after_since",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind}"

    @property
    def label(self) -> str:
        return "judicial" if self.kind in JUDICIAL_SITUATIONS else ""


# Art. 22 (未成年人保护法 2020): field -> the answer that bars the carer. The first two are the
# positive conditions (an adult with full civil capacity who is able to care for the child), the
# other four the bars.
ELIGIBILITY_QUESTIONS: dict[str, bool] = {
    "full_capacity": False,
    "able_to_care": False,
    "bar_record": True,
    "bar_addiction": True,
    "bar_neglect": True,
    "bar_unsuitable": True,
}
ELIGIBILITY_FIELDS = tuple(ELIGIBILITY_QUESTIONS)


class Entrustment(models.Model):
    """Entrusted guardianship (委托监护/委托照护), 未成年人保护法 art. 22-23.

    One row per agreement. A new agreement (another carer, or the parents' situation changed) is
    a new row, and the previous one ends the day before (`services.entrustment_renew`). The
    scan of the signed agreement lives in `EntrustmentScan`, outside this row and its history.
    """

    child = models.ForeignKey(Child, on_delete=models.CASCADE, related_name="entrustments")
    carer_name = models.CharField(_("受委托人姓名"), max_length=40)
    carer_relation = models.CharField(_("与儿童关系"), max_length=20, choices=Relation.choices)
    carer_id_number = EncryptedTextField(_("受委托人身份证号"), blank=True)
    carer_phone = EncryptedTextField(_("受委托人电话"), blank=True)
    carer_birth_date = models.DateField(_("受委托人出生日期"), null=True, blank=True)
    since = models.DateField(_("委托起始日期"), null=True, blank=True)
    until = models.DateField(_("委托结束日期"), null=True, blank=True)
    agreement_signed = models.BooleanField(_("已签订委托监护确认书"), default=False)
    agreement_date = models.DateField(_("签订日期"), null=True, blank=True)
    # Art. 23: the parents tell the school (幼儿园) and the village committee in writing. The flag
    # is the fact (older records, the API and imports carry only the flag); the date, when known,
    # says when. A date implies the flag (a CHECK constraint).
    village_informed = models.BooleanField(_("已书面告知村（居）委会"), default=False)
    village_informed_on = models.DateField(_("书面告知村（居）委会日期"), null=True, blank=True)
    school_informed = models.BooleanField(_("已书面告知学校"), default=False)
    school_informed_on = models.DateField(_("书面告知学校日期"), null=True, blank=True)
    # Art. 22: the carer's eligibility, asked as explicit yes/no questions (null: not asked). All
    # six are answered together, with the date and the person who checked (a CHECK constraint).
    full_capacity = models.BooleanField(_("具有完全民事行为能力"), null=True, blank=True)
    able_to_care = models.BooleanField(_("身体、精神状况等能够履行照护职责"), null=True, blank=True)
    bar_record = models.BooleanField(_("有性侵害、虐待、遗弃、拐卖、暴力伤害等违法犯罪记录"), null=True, blank=True)
    bar_addiction = models.BooleanField(_("有吸毒、酗酒、赌博等恶习"), null=True, blank=True)
    bar_neglect = models.BooleanField(_("曾拒不履行或者长期怠于履行监护、照护职责"), null=True, blank=True)
    bar_unsuitable = models.BooleanField(_("有其他不适宜担任被委托人的情形"), null=True, blank=True)
    eligibility_checked_on = models.DateField(_("资格核查日期"), null=True, blank=True)
    eligibility_checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("资格核查人"),
    )
    version = models.PositiveIntegerField(default=1)
    history = ShouhuHistoricalRecords(excluded_fields=["version"], no_db_index=["eligibility_checked_by"])

    class Meta:
        ordering = ["child", "-since", "id"]
        verbose_name = _("委托监护")
        verbose_name_plural = _("委托监护")
        constraints = [
            models.CheckConstraint(
                condition=Q(village_informed_on__isnull=True) | Q(village_informed=True),
                name="entrustment_village_date_implies_informed",
            ),
            models.CheckConstraint(
                condition=Q(school_informed_on__isnull=True) | Q(school_informed=True),
                name="entrustment_school_date_implies_informed",
            ),
            models.CheckConstraint(
                condition=Q(**{f"{name}__isnull": True for name in ("eligibility_checked_on", *ELIGIBILITY_FIELDS)})
                | Q(**{f"{name}__isnull": False for name in ("eligibility_checked_on", *ELIGIBILITY_FIELDS)}),
                name="entrustment_eligibility_all_or_none",
            ),
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(since__isnull=True) | Q(until__gte=models.F("since")),
                name="entrustment_until_after_since",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_carer_relation_display()} {self.carer_name}"

    @property
    def carer_phone_masked(self) -> str:
        return mask_phone(self.carer_phone) if self.carer_phone else ""

    @property
    def carer_id_number_masked(self) -> str:
        return mask_id_number(self.carer_id_number) if self.carer_id_number else ""

    def current_on(self, day: date) -> bool:
        return (self.since is None or self.since <= day) and (self.until is None or self.until >= day)

    @property
    def eligibility_checked(self) -> bool:
        return all(getattr(self, name) is not None for name in ELIGIBILITY_FIELDS)

    def eligibility_problems(self) -> list[str]:
        """The questions whose answer bars the carer (art. 22), by field name."""
        return [name for name, barring in ELIGIBILITY_QUESTIONS.items() if getattr(self, name) is barring]


class EntrustmentScan(models.Model):
    """The scan of a signed agreement: a private file, stored encrypted in the database.

    Never a media URL: it is served by `registry:entrustment_scan`, access-checked and audited.
    Kept out of `Entrustment` so that listing agreements (and their history) never loads it.
    """

    entrustment = models.OneToOneField(Entrustment, on_delete=models.CASCADE, related_name="scan")
    # base64 of the file's bytes, encrypted (shouhu.lib.crypto): read it with `file_bytes()`.
    content = EncryptedTextField(_("文件内容"))
    content_type = models.CharField(_("文件类型"), max_length=40)
    size = models.PositiveIntegerField(_("文件大小（字节）"))
    sha256 = models.CharField(_("文件SHA-256"), max_length=64)
    uploaded_at = models.DateTimeField(_("上传时间"), auto_now=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("上传人"),
    )

    class Meta:
        verbose_name = _("委托监护确认书扫描件")
        verbose_name_plural = _("委托监护确认书扫描件")
        constraints = [
            models.CheckConstraint(
                condition=Q(content_type__in=["application/pdf", "image/jpeg", "image/png"]),
                name="entrustment_scan_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entrustment_id}: {self.content_type}, {self.size} B"

    def set_file(self, data: bytes) -> None:
        import base64
        import hashlib

        self.content = base64.b64encode(data).decode("ascii")
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()

    def file_bytes(self) -> bytes:
        import base64

        return base64.b64decode(self.content) if self.content else b""


class ChildShare(models.Model):
    """An explicit grant of one child to an organisation (a referral, a task, a report it filed).

    Later capabilities write these; `children_visible_to` reads them. A share may expire.
    """

    child = models.ForeignKey(Child, on_delete=models.CASCADE, related_name="shares")
    organization = models.ForeignKey("org.Organization", on_delete=models.CASCADE, related_name="child_shares")
    reason = models.CharField(_("共享原因"), max_length=100)
    source_type = models.CharField(max_length=40, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("共享记录")
        verbose_name_plural = _("共享记录")
        indexes = [models.Index(fields=["organization", "child"], name="share_org_child")]

    def __str__(self) -> str:
        return f"{self.child_id} → {self.organization_id}"
