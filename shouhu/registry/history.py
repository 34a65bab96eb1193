"""Field-level change history of a child and everything attached to it, for the 变更记录 tab."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from shouhu.lib.i18n import choice_label
from shouhu.lib.text import mask_address, mask_id_number, mask_phone
from shouhu.org.access import Scope
from shouhu.registry.models import (
    JUDICIAL_SITUATIONS,
    Child,
    Entrustment,
    FamilyMember,
    ParentSituation,
)


def attribute_to(instance: Any, actor: Any) -> None:
    """The user django-simple-history records for the next save or delete of `instance` (its
    `_history_user`, which the library reads and the model does not declare)."""
    instance._history_user = actor


MASKERS = {
    "id_number": mask_id_number,
    "carer_id_number": mask_id_number,
    "phone": mask_phone,
    "carer_phone": mask_phone,
    "address": mask_address,
}
HIDDEN = {"id_number_index", "registered_at", "registered_by", "household", "child", "member", "id"}


@dataclass
class Change:
    field: str
    old: str
    new: str


@dataclass
class Entry:
    at: datetime
    user: str
    subject: str
    kind: str  # "+", "~", "-"
    changes: list[Change]


def _display(record: Any, field_name: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if field_name in MASKERS:
        return MASKERS[field_name](str(value))
    field = record.instance_type._meta.get_field(field_name)
    if getattr(field, "choices", None):
        return str(choice_label(record.instance_type, field_name, value))
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, list):
        return "、".join(str(v) for v in value) or "—"
    return str(value)


def _entries_for(records: list[Any], subject: Any, scope: Scope) -> list[Entry]:
    entries: list[Entry] = []
    records = sorted(records, key=lambda r: (r.history_date, r.history_id))
    prev = None
    for rec in records:
        label = subject(rec)
        if label is None:
            prev = rec
            continue
        user = str(rec.history_user) if rec.history_user else _("系统")
        if rec.history_type == "+":
            entries.append(Entry(rec.history_date, user, label, "+", []))
        elif rec.history_type == "-":
            entries.append(Entry(rec.history_date, user, label, "-", []))
        elif prev is not None:
            delta = rec.diff_against(prev)
            changes = []
            for change in delta.changes:
                if change.field in HIDDEN:
                    continue
                verbose = str(rec.instance_type._meta.get_field(change.field).verbose_name)
                changes.append(
                    Change(verbose, _display(rec, change.field, change.old), _display(rec, change.field, change.new))
                )
            if changes:
                entries.append(Entry(rec.history_date, user, label, "~", changes))
        prev = rec
    return entries


def child_history(child: Child, scope: Scope) -> list[Entry]:
    entries = _entries_for(
        list(Child.history.filter(id=child.pk).select_related("history_user")), lambda r: _("儿童信息"), scope
    )
    if child.household_id:
        from shouhu.registry.models import Household

        entries += _entries_for(
            list(Household.history.filter(id=child.household_id).select_related("history_user")),
            lambda r: _("家庭信息"),
            scope,
        )
    members = FamilyMember.history.filter(child_id=child.pk).select_related("history_user")
    by_member: dict[int, list[Any]] = {}
    for rec in members:
        by_member.setdefault(rec.id, []).append(rec)
    for recs in by_member.values():
        entries += _entries_for(recs, lambda r: f"{r.get_relation_display()} {r.name}", scope)
    member_ids = list(by_member)
    situations = ParentSituation.history.filter(member_id__in=member_ids).select_related("history_user")
    by_situation: dict[int, list[Any]] = {}
    for rec in situations:
        by_situation.setdefault(rec.id, []).append(rec)
    cleared = scope.cleared("judicial")

    def situation_subject(rec: Any) -> str | None:
        if rec.kind in JUDICIAL_SITUATIONS and not cleared:
            return None
        return _("父母情形：%(k)s") % {"k": rec.get_kind_display()}

    for recs in by_situation.values():
        entries += _entries_for(recs, situation_subject, scope)
    ents = Entrustment.history.filter(child_id=child.pk).select_related("history_user")
    by_ent: dict[int, list[Any]] = {}
    for rec in ents:
        by_ent.setdefault(rec.id, []).append(rec)
    for recs in by_ent.values():
        entries += _entries_for(recs, lambda r: _("委托监护"), scope)
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries
