"""Audit events in plain Chinese: the object type and the detail keys, never raw field names."""

from __future__ import annotations

from typing import Any

from django import template
from django.apps import apps
from django.utils.translation import gettext_lazy as _

register = template.Library()

OBJECT_TYPES = {
    "child": _("儿童"),
    "user": _("用户"),
    "organization": _("单位"),
    "region": _("行政区划"),
    "duty": _("职责"),
    "needtype": _("需求类型"),
    "needroute": _("需求分派"),
    "userrole": _("用户角色"),
    "token": _("接口令牌"),
}

DETAIL_KEYS = {
    "changes": _("变更字段"),
    "household": _("家庭信息变更"),
    "entrustment": _("委托监护"),
    "member": _("家庭成员"),
    "member_added": _("新增家庭成员"),
    "member_removed": _("删除家庭成员"),
    "members": _("登记家庭成员数"),
    "field": _("查看字段"),
    "of": _("所属"),
    "path": _("访问路径"),
    "why": _("原因"),
    "by": _("检索方式"),
    "via": _("途径"),
    "note": _("说明"),
    "reason": _("原因"),
    "date": _("日期"),
    "factor": _("验证方式"),
    "op": _("操作"),
    "message": _("信息"),
    "prefix": _("令牌前缀"),
    "for": _("用户"),
}

VALUES = {
    "id_number": _("身份证号"),
    "name": _("姓名/拼音"),
    "api": _("接口"),
    "shared_read_only": _("共享记录只读"),
    "totp": _("动态验证码"),
    "mfa_enrolled": _("绑定二次验证"),
    "child.id_number": _("儿童身份证号"),
    "member.id_number": _("家庭成员身份证号"),
    "member.phone": _("家庭成员电话"),
    "carer.id_number": _("受委托人身份证号"),
    "carer.phone": _("受委托人电话"),
    "household.address": _("家庭住址"),
    "child": _("儿童"),
    "household": _("家庭"),
    "member": _("家庭成员"),
    "carer": _("受委托人"),
    True: _("是"),
    False: _("否"),
}

_FIELD_MODELS = (
    "registry.Child",
    "registry.Household",
    "registry.FamilyMember",
    "registry.Entrustment",
    "registry.ParentSituation",
)


def _field_label(name: str) -> str:
    if name == "situations":
        return str(_("父母情形"))
    for label in _FIELD_MODELS:
        try:
            return str(apps.get_model(label)._meta.get_field(name).verbose_name)
        except Exception:  # noqa: BLE001, S112 - not this model's field
            continue
    return name


def _value(value: Any) -> str:
    if isinstance(value, bool) or (isinstance(value, str) and value in VALUES):
        return str(VALUES.get(value, value))
    if isinstance(value, str) and ":" in value and value.split(":", 1)[0] in VALUES:
        kind, _sep, rest = value.partition(":")
        return f"{VALUES[kind]} {rest}"
    if isinstance(value, dict):
        return "、".join(_field_label(k) for k in value)  # changed fields: names only, never the values
    if isinstance(value, (list, tuple)):
        return "、".join(_value(v) for v in value)
    return str(value)


@register.filter
def audit_object_type(value: str) -> str:
    return str(OBJECT_TYPES.get(value, value or ""))


@register.filter
def audit_detail(detail: Any) -> list[tuple[str, str]]:
    """`{"changes": {"school_name": [...]}}` -> [("变更字段", "学校")]."""
    if not isinstance(detail, dict):
        return [("", str(detail))] if detail else []
    return [(str(DETAIL_KEYS.get(key, key)), _value(value)) for key, value in detail.items()]
