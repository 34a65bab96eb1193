"""Committing a survey import, and undoing it.

`import_commit(actor=…, source=…, filename=…)` first runs the preview (shouhu.intake.preview). When
any row is invalid nothing touches the ledger: a `SurveyImport` in state *failed* is recorded with
the counts (and the file), no audit event, and it is returned; its `preview` attribute (not stored)
holds the errors, for the error workbook. Otherwise, in one transaction, every new row becomes a
child (`registry.services.child_create`) and every changed row updates the child's own columns
(`child_update`) and household columns (`household_update`), each at the version read in the same
transaction, each with its history and audit event; one `import` event records the file. Any
exception (a `StaleEdit`, a row that became invalid since the preview) rolls back everything,
including the `SurveyImport`, and propagates.

For a child already in the ledger only the columns the row fills in are written (a blank cell
is not an edit): the child's own fields, the household, each parent or grandparent by relation
(added when the ledger has none; a parent's situations replaced as a whole when they differ) and
the current entrusted carer (added when there is none). Whatever still differs after the writes (a
difference the services cannot express, e.g. only a parent's disability grade) is counted as
`not_applied`, with the row numbers and column headers in `counts["not_applied_rows"]`; a row none
of whose differences could be applied counts as unchanged.

Importing the same file again changes nothing (all unchanged) and is still recorded.

`import_undo(actor=…, imp=…)` deletes the children the import created and puts back the values it
replaced, in one transaction, as long as nothing edited those children since (the child's and the
household's versions are those the import left, and no family member or carer record changed).
"""

from __future__ import annotations

import os
from datetime import date
from typing import IO, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.intake import reader as r
from shouhu.intake.models import ImportState, ItemAction, SurveyImport, SurveyImportItem
from shouhu.intake.preview import (
    _CHILD,
    _ENTRUSTMENT,
    _HOUSEHOLD,
    _MEMBER_FIELDS,
    Preview,
    _Differ,
    _same,
    preview_import,
)
from shouhu.registry import services as registry
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household

COUNT_KEYS = ("new", "changed", "unchanged", "invalid", "not_applied")


class ImportAborted(ValidationError):
    """The file no longer validates as it did in the preview (the ledger changed meanwhile)."""


def _may_import(actor: Any) -> None:
    from shouhu.org.access import Cap, scope_for

    if not scope_for(actor).can(Cap.LEDGER_EDIT):
        raise PermissionDenied(_("您无权修改儿童台账，不能导入。"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def _new_import(actor: Any, data: bytes, preview: Preview, state: str) -> SurveyImport:
    imp = SurveyImport(
        filename=(preview.filename or "")[:255], sha256=preview.sha256, size=len(data), format=preview.format,
        imported_by=actor, organization=getattr(actor, "organization", None), state=state,
    )
    imp.set_file(data)
    return imp


def import_commit(*, actor: Any, source: str | os.PathLike[str] | bytes | IO[bytes], filename: str = "") -> SurveyImport:
    """Import a survey file all or nothing; see the module's docstring."""
    _may_import(actor)
    if not filename and isinstance(source, str | os.PathLike):
        filename = str(source)
    data = r._load(source)  # noqa: SLF001 - the bytes, read once: hashed, kept and parsed
    preview = preview_import(actor=actor, source=data, filename=filename or str(getattr(source, "name", "") or ""))
    if not preview.ok:
        imp = _new_import(actor, data, preview, ImportState.FAILED)
        imp.counts = {**{k: 0 for k in COUNT_KEYS}, **preview.summary()}
        imp.full_clean()
        imp.save()
        imp.preview = preview  # type: ignore[attr-defined]
        return imp
    imp = _commit(actor, data, preview)
    imp.preview = preview  # type: ignore[attr-defined]
    return imp


@transaction.atomic
def _commit(actor: Any, data: bytes, preview: Preview) -> SurveyImport:
    imp = _new_import(actor, data, preview, ImportState.COMMITTED)
    imp.committed_at = timezone.now()
    imp.full_clean()
    imp.save()
    counts = {k: 0 for k in COUNT_KEYS}
    not_applied_rows: list[dict[str, Any]] = []
    validator = r.RowValidator(actor)
    differ = _Differ(actor)
    for raw in r.read_rows(data, preview.filename):
        result = validator.validate(raw)
        if not result.ok:
            raise ImportAborted(_("第%(r)d行在预览后变为有错误（台账已被修改），导入已取消，请重新导入。") % {"r": raw.row})
        if result.existing_child_id is None:
            child = registry.child_create(actor=actor, **result.create_kwargs())
            SurveyImportItem.objects.create(
                survey_import=imp, child=child, row=raw.row, action=ItemAction.CREATED, version_after=child.version,
                household_version_after=child.household.version if child.household else None,
            )
            counts["new"] += 1
            continue
        child = Child.objects.select_for_update().get(pk=result.existing_child_id)
        loaded = differ.load([child.pk])[child.pk]
        diffs = differ.diff(result, loaded)
        if not diffs:
            counts["unchanged"] += 1
            continue
        _apply_row(actor, imp, raw.row, result, child, loaded, differ)
        # What the ledger still lacks after the writes (a difference no service could apply).
        rest = [str(d.label) for d in differ.diff(result, differ.load([child.pk])[child.pk])]
        if rest:
            counts["not_applied"] += 1
            not_applied_rows.append({"row": raw.row, "columns": rest})
        counts["changed" if len(rest) < len(diffs) else "unchanged"] += 1
    imp.counts = {**counts, "not_applied_rows": not_applied_rows}
    imp.committed_at = timezone.now()  # after every write: later edits are those after this instant
    imp.save(update_fields=["counts", "committed_at"])
    # Not the file name: it may name a family. The SurveyImport row (by id) keeps it.
    record(actor=actor, action=Action.IMPORT, object_type="survey_import", object_id=imp.pk,
           detail={"sha256": imp.sha256, **{k: counts[k] for k in COUNT_KEYS}})
    return imp


def _apply_row(actor: Any, imp: SurveyImport, row: int, result: r.RowResult, child: Child, loaded: Child,
               differ: _Differ) -> None:
    """Write the columns the row fills in that differ from the ledger; keep what they replaced."""
    present = result.present
    replaced: dict[str, Any] = {
        "child": {name: _jsonable(getattr(child, name)) for name in registry.CHILD_FIELDS if name != "region"},
        "household": None, "household_created": False, "members": [], "members_created": [],
        "entrustment": None, "entrustment_created": None,
    }
    replaced["child"]["region"] = child.region_id

    # The child's own columns.
    child_data: dict[str, Any] = {}
    if ("region" in present or "region_code" in present) and not _same(child.region_id, result.child.get("region")):
        child_data["region"] = result.child["region"]
    for key, name in _CHILD.items():
        if key in present and not _same(getattr(child, name), result.child.get(name)):
            child_data[name] = result.child.get(name)
    if child_data:
        child = registry.child_update(actor=actor, child=child, data=child_data, version=child.version)

    # The household.
    household = Household.objects.select_for_update().filter(pk=child.household_id).first() \
        if child.household_id else None
    hh_version = household.version if household else None
    if result.household is not None:
        hh_data = {name: result.household.get(name) for key, name in _HOUSEHOLD.items()
                   if key in present and not _same(getattr(household, name) if household else None,
                                                   result.household.get(name))}
        if hh_data:
            if household is None:
                replaced["household_created"] = True
            else:
                replaced["household"] = {name: _jsonable(getattr(household, name))
                                         for name in registry.HOUSEHOLD_FIELDS}
            hh = registry.household_update(actor=actor, child=child, data=hh_data,
                                           version=household.version if household else None)
            hh_version = hh.version
            child.household_id = hh.pk

    # Parents and grandparents, by relation: the columns present only.
    family = list(loaded.family.all())
    for new in result.members:
        prefix = new["relation"]
        old = next((f for f in family if f.relation == prefix), None)
        if old is None:
            member = registry.member_create(actor=actor, child=child, data=new)
            replaced["members_created"].append(member.pk)
            continue
        data = {name: new.get(name) for name in _MEMBER_FIELDS
                if f"{prefix}_{name}" in present and not _same(getattr(old, name), new.get(name))}
        situations = None
        if prefix in ("father", "mother") and any(
                f"{prefix}_{k}" in present for k in ("situation", "situation_since", "disability_grade")):
            current = differ._current_situations(old)  # noqa: SLF001
            new_situations = new.get("situations") or []
            if sorted(map(str, ((s.kind, s.since, s.disability_grade) for s in current))) != sorted(
                    map(str, ((s["kind"], s.get("since"), s.get("disability_grade")) for s in new_situations))):
                situations = new_situations
                if f"{prefix}_capacity" not in present:  # the sheet's situation decides, as for a new member
                    data["capacity"], data["is_guardian"] = new.get("capacity"), new.get("is_guardian")
        if not data and situations is None:
            continue
        replaced["members"].append({
            "pk": old.pk,
            "data": {name: _jsonable(getattr(old, name)) for name in registry.MEMBER_FIELDS},
            "situations": None if situations is None else [
                {name: _jsonable(getattr(s, name)) for name in registry.SITUATION_FIELDS} for s in old.situations.all()],
        })
        registry.member_update(actor=actor, member=old, data=data, version=old.version, situations=situations)

    # The current entrustment.
    if result.entrustment is not None:
        entrustment = differ._current_entrustment(loaded)  # noqa: SLF001
        if entrustment is None:
            created = registry.entrustment_save(actor=actor, child=child, data=result.entrustment, entrustment=None,
                                                version=None)
            replaced["entrustment_created"] = created.pk
        else:
            data = {name: result.entrustment.get(name) for key, name in _ENTRUSTMENT.items()
                    if key in present and not _same(getattr(entrustment, name), result.entrustment.get(name))}
            if data:
                replaced["entrustment"] = {
                    "pk": entrustment.pk,
                    "data": {name: _jsonable(getattr(entrustment, name)) for name in registry.ENTRUSTMENT_FIELDS}}
                registry.entrustment_save(actor=actor, child=child, data=data, entrustment=entrustment,
                                          version=entrustment.version)

    item = SurveyImportItem(survey_import=imp, child=child, row=row, action=ItemAction.CHANGED,
                            version_after=child.version, household_version_after=hh_version)
    item.set_replaced(replaced)
    item.save()


# -- undo -----------------------------------------------------------------------------------------------------------


def _edited_since(imp: SurveyImport, item: SurveyImportItem, child: Child | None) -> bool:
    if child is None:
        return item.action == ItemAction.CHANGED  # a changed child that is gone cannot be restored
    if child.version != item.version_after:
        return True
    if item.household_version_after is not None:
        if child.household_id is None:
            return True
        if Household.objects.filter(pk=child.household_id).values_list("version", flat=True).first() != \
                item.household_version_after:
            return True
    elif child.household_id is not None:  # the import left the child without a household
        return True
    after = imp.committed_at
    return (FamilyMember.history.filter(child_id=child.pk, history_date__gt=after).exists()
            or Entrustment.history.filter(child_id=child.pk, history_date__gt=after).exists())


@transaction.atomic
def import_undo(*, actor: Any, imp: SurveyImport) -> SurveyImport:
    """Delete the children the import created and restore the values it replaced; all or nothing."""
    _may_import(actor)
    from shouhu.org.access import scope_for

    current = SurveyImport.objects.select_for_update().get(pk=imp.pk)
    if current.state != ImportState.COMMITTED:
        raise ValidationError(_("只能撤销已导入的文件（当前状态：%(s)s）。") % {"s": current.get_state_display()})
    items = list(current.items.order_by("row"))
    children = {c.pk: c for c in Child.objects.select_for_update().filter(pk__in=[i.child_id for i in items if i.child_id])}
    scope = scope_for(actor)
    outside = [c for c in children.values() if not scope.covers_region(c.region_id)]
    if outside:
        raise PermissionDenied(_("本次导入涉及不在您管辖范围内的儿童，不能撤销。"))
    edited = [(item, children.get(item.child_id)) for item in items
              if _edited_since(current, item, children.get(item.child_id))]
    if edited:
        names = "、".join(f"{c.name if c else _('（已删除）')}（第{i.row}行）" for i, c in edited)
        raise ValidationError(_("以下儿童在本次导入后已被修改，不能撤销导入：%(names)s。") % {"names": names})
    deleted = restored = 0
    for item in items:
        child = children.get(item.child_id)
        if child is None:
            continue
        if item.action == ItemAction.CREATED:
            _delete_child(actor, child, current)
            deleted += 1
        else:
            _restore(actor, child, item.get_replaced())
            restored += 1
    current.state, current.undone_at, current.undone_by = ImportState.UNDONE, timezone.now(), actor
    current.full_clean()
    current.save(update_fields=["state", "undone_at", "undone_by"])
    record(actor=actor, action=Action.IMPORT_UNDO, object_type="survey_import", object_id=current.pk, detail={"deleted": deleted, "restored": restored})
    return current


def _delete_child(actor: Any, child: Child, imp: SurveyImport) -> None:
    household_id = child.household_id
    record(actor=actor, action=Action.DELETE, object_type="child", object_id=child.pk,
           detail={"reason": "import_undo", "import": imp.pk})
    child._history_user = actor  # type: ignore[attr-defined]
    child.delete()
    if household_id and not Child.objects.filter(household_id=household_id).exists():
        hh = Household.objects.get(pk=household_id)
        hh._history_user = actor  # type: ignore[attr-defined]
        hh.delete()


def _values(model: type, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON values back to the model's Python values (dates from ISO strings)."""
    out = {}
    for name, value in data.items():
        field = model._meta.get_field(name)  # type: ignore[attr-defined]
        out[name] = value if field.is_relation else field.to_python(value)
    return out


def _restore(actor: Any, child: Child, replaced: dict[str, Any]) -> None:
    from shouhu.registry.models import ParentSituation

    child = registry.child_update(actor=actor, child=child, data=_values(Child, replaced.get("child") or {}),
                                  version=child.version)
    if replaced.get("household_created") and child.household_id:
        household_id = child.household_id
        Child.objects.filter(pk=child.pk).update(household=None)
        record(actor=actor, action=Action.UPDATE, object_type="child", object_id=child.pk,
               detail={"household_removed": True, "reason": "import_undo"})
        if not Child.objects.filter(household_id=household_id).exists():
            hh = Household.objects.get(pk=household_id)
            hh._history_user = actor  # type: ignore[attr-defined]
            hh.delete()
    elif replaced.get("household") is not None and child.household_id:
        hh = Household.objects.get(pk=child.household_id)
        registry.household_update(actor=actor, child=child, data=_values(Household, replaced["household"]),
                                  version=hh.version)
    for pk in replaced.get("members_created") or []:
        member = FamilyMember.objects.filter(pk=pk, child=child).first()
        if member is not None:
            registry.member_delete(actor=actor, member=member, version=member.version)
    for old in replaced.get("members") or []:
        member = FamilyMember.objects.filter(pk=old["pk"], child=child).first()
        if member is None:
            continue
        situations = old.get("situations")
        registry.member_update(
            actor=actor, member=member, data=_values(FamilyMember, old["data"]), version=member.version,
            situations=None if situations is None else [_values(ParentSituation, s) for s in situations])
    if replaced.get("entrustment_created"):
        entrustment = Entrustment.objects.filter(pk=replaced["entrustment_created"], child=child).first()
        if entrustment is not None:
            record(actor=actor, action=Action.UPDATE, object_type="child", object_id=child.pk,
                   detail={"entrustment_removed": True, "reason": "import_undo"})
            entrustment._history_user = actor  # type: ignore[attr-defined]
            entrustment.delete()
    old_entrustment = replaced.get("entrustment")
    if old_entrustment:
        entrustment = Entrustment.objects.filter(pk=old_entrustment["pk"], child=child).first()
        if entrustment is not None:
            registry.entrustment_save(actor=actor, child=child, data=_values(Entrustment, old_entrustment["data"]),
                                      entrustment=entrustment, version=entrustment.version)
