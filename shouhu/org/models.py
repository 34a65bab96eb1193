"""Regions, organisations, the duty catalogue, users and their roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from shouhu.org.access import Scope


class RegionLevel(models.IntegerChoices):
    PROVINCE = 1, _("省")
    CITY = 2, _("市")
    DISTRICT = 3, _("区县")
    TOWN = 4, _("镇/街道/开发区")
    VILLAGE = 5, _("村/社区")


# How many leading digits of the 12-digit statistical code identify a region of each level.
PREFIX_LENGTH = {
    RegionLevel.PROVINCE: 2,
    RegionLevel.CITY: 4,
    RegionLevel.DISTRICT: 6,
    RegionLevel.TOWN: 9,
    RegionLevel.VILLAGE: 12,
}


class Region(models.Model):
    """A node of the administrative tree keyed by its 12-digit statistical division code.

    A region's code prefix (see PREFIX_LENGTH) is a prefix of all its descendants' codes, so
    "everything in this town" is `region_id LIKE '320412100%'` on an indexed column.
    """

    code = models.CharField(_("区划代码"), max_length=12, primary_key=True)
    name = models.CharField(_("名称"), max_length=60)
    level = models.PositiveSmallIntegerField(_("层级"), choices=RegionLevel.choices)
    kind = models.CharField(_("类型"), max_length=20, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    is_synthetic = models.BooleanField(_("演示数据"), default=False, help_text=_("演示用虚构的村/社区，不是官方区划"))

    class Meta:
        ordering = ["code"]
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^[0-9]{12}$"), name="region_code_12_digits"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def prefix(self) -> str:
        return self.code[: PREFIX_LENGTH[RegionLevel(self.level)]]

    def contains(self, code: str) -> bool:
        return code.startswith(self.prefix)


class OrgKind(models.TextChoices):
    MEMBER_UNIT = "member_unit", _("联席会议成员单位")
    TOWN_GOVERNMENT = "town_government", _("镇（街道、开发区）政府")
    VILLAGE_COMMITTEE = "village_committee", _("村（居）民委员会")
    POLICE_STATION = "police_station", _("派出所")
    SCHOOL = "school", _("学校/幼儿园")
    HOSPITAL = "hospital", _("医疗机构")
    COURT = "court", _("人民法庭")
    SOCIAL_WORK = "social_work", _("社会工作服务机构")
    WELFARE = "welfare", _("儿童福利/救助机构")
    PROVIDER = "provider", _("关爱服务阵地")
    OTHER = "other", _("其他")


class Organization(models.Model):
    name = models.CharField(_("名称"), max_length=100)
    short_name = models.CharField(_("简称"), max_length=30, blank=True)
    kind = models.CharField(_("类型"), max_length=30, choices=OrgKind.choices)
    code = models.SlugField(
        _("单位代码"),
        max_length=40,
        unique=True,
        null=True,
        blank=True,
        help_text=_("成员单位的稳定代码，如 civil_affairs；职责目录据此匹配"),
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sub_organizations",
        verbose_name=_("上级单位"),
    )
    regions = models.ManyToManyField(
        Region,
        blank=True,
        related_name="organizations",
        verbose_name=_("辖区"),
        help_text=_("台账可见范围（民政条线）或受理辖区（派出所、学校等）"),
    )
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name = _("单位")
        verbose_name_plural = _("单位")

    def __str__(self) -> str:
        return self.name

    @property
    def member_unit(self) -> Organization | None:
        """The joint-meeting member unit this organisation belongs to (itself, or an ancestor)."""
        org: Organization | None = self
        while org is not None:
            if org.kind == OrgKind.MEMBER_UNIT:
                return org
            org = org.parent
        return None


class NeedType(models.Model):
    """A kind of need found for a child; work is routed to units by need type, never by `if`."""

    code = models.SlugField(_("代码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=40)
    description = models.CharField(_("说明"), max_length=200, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("需求类型")
        verbose_name_plural = _("需求类型")

    def __str__(self) -> str:
        return self.name


class Duty(models.Model):
    """One member unit's duty as written in the joint meeting's division of duties."""

    unit = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="duties", verbose_name=_("成员单位"))
    order = models.PositiveSmallIntegerField(default=0)
    text = models.TextField(_("职责原文"))
    need_types = models.ManyToManyField(NeedType, blank=True, related_name="duties", verbose_name=_("对应需求类型"))

    class Meta:
        ordering = ["unit", "order"]
        verbose_name = _("职责")
        verbose_name_plural = _("职责")

    def __str__(self) -> str:
        return f"{self.unit}: {self.text[:30]}"


class NeedRoute(models.Model):
    """Which member unit is responsible (primary) or contributes for a need type."""

    need_type = models.ForeignKey(NeedType, on_delete=models.CASCADE, related_name="routes")
    unit = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="need_routes")
    primary = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("需求分派")
        verbose_name_plural = _("需求分派")
        constraints = [
            models.UniqueConstraint(fields=["need_type", "unit"], name="need_route_unique"),
            models.UniqueConstraint(fields=["need_type"], condition=Q(primary=True), name="need_route_one_primary"),
        ]

    def __str__(self) -> str:
        return f"{self.need_type_id} → {self.unit_id}"


class Role(models.TextChoices):
    SYSTEM_ADMIN = "system_admin", _("系统管理员")
    SECURITY_ADMIN = "security_admin", _("安全管理员")
    AUDIT_ADMIN = "audit_admin", _("审计管理员")
    DISTRICT_OFFICER = "district_officer", _("区民政局（联席办）")
    TOWN_SUPERVISOR = "town_supervisor", _("儿童督导员")
    VILLAGE_DIRECTOR = "village_director", _("儿童主任")
    UNIT_STAFF = "unit_staff", _("成员单位工作人员")
    REPORTER = "reporter", _("强制报告责任主体")
    PROVIDER = "provider", _("服务机构")
    LEADER = "leader", _("领导/考核部门")
    POLICE = "police", _("公安接处警")
    PROCURATOR = "procurator", _("检察监督")


class User(AbstractUser):
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="users", verbose_name=_("所属单位")
    )
    full_name = models.CharField(_("姓名"), max_length=40, blank=True)
    is_demo = models.BooleanField(_("演示账号"), default=False, help_text=_("仅在演示模式下可登录"))

    # Per-object caches: the role codes (role_set) and the scope shouhu.org.access computes from them.
    _role_cache: frozenset[str]
    _scope_cache: Scope

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.full_name or self.username

    @property
    def role_set(self) -> frozenset[str]:
        cached = getattr(self, "_role_cache", None)
        if cached is None:
            cached = frozenset(self.roles.values_list("role", flat=True)) if self.pk else frozenset()
            self._role_cache = cached
        return cached


class UserRole(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(_("角色"), max_length=30, choices=Role.choices)

    class Meta:
        verbose_name = _("角色")
        verbose_name_plural = _("角色")
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="user_role_unique")]

    def __str__(self) -> str:
        return self.get_role_display()
