"""Committing a survey import, and undoing it.

`import_commit(actor=…, source=…, filename=…)` first runs the preview (shouhu.intake.preview). When
any row is invalid nothing touches the ledger: a `SurveyImport` in state *failed* is recorded with
the counts (and the file), no audit event, and it is returned; its `preview` attribute (not stored)
holds the errors, for the error workbook. Otherwise, in one transaction, a batch of rows at a time,
the new rows become children (`registry.services.children_create_bulk`: what `child_create` writes,
in a few statements per table) and the changed rows update the ledger's records, each at the
version read in the same transaction, each with its history row and audit event: rows that
touch the child, its household, its family and its carer (columns edited, a parent's situations
replaced, a member or a carer added) together (`registry.services.ledger_update_bulk`), the rare
others (a household to create for a child without one) record by record through the services
(`child_update`, `household_update`, `member_create`/`member_update`, `entrustment_save`); a test
holds the two ways equal. One `import` event records the file. The
policy evaluation of the new and changed children runs after the commit, in batches
(`intake.jobs.evaluate_import`). Any exception (a `StaleEdit`, a row that became invalid since the
preview) rolls back everything, including the `SurveyImport`, and propagates.

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
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import chain_held, record
from shouhu.intake import reader as r
from shouhu.intake.models import ImportState, ItemAction, SurveyImport, SurveyImportItem
from shouhu.intake.preview import (
    _CHILD,
    _ENTRUSTMENT,
    _HOUSEHOLD,
    _MEMBER_FIELDS,
    CHANGED,
    NEW,
    UNCHANGED,
    Classified,
    Preview,
    _Differ,
    _same,
    classify,
    new_preview,
)
from shouhu.lib.bulkcopy import Builder, checked_as_written, insert_in_bulk
from shouhu.lib.collector import fewer_collections
from shouhu.lib.writebehind import write_behind
from shouhu.policy.signals import evaluated_by_caller
from shouhu.registry import services as registry
from shouhu.registry.history import attribute_to
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household

COUNT_KEYS = ("new", "changed", "unchanged", "invalid", "not_applied")
UNDO_NAMES_SHOWN = 10  # children named when an undo is refused because they were edited since
# Changed rows are written together (`_write_simple_rows`) unless one must create a household;
# False writes every row record by record (`_write_row`), which a test compares them with.
BULK_UPDATES = True


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


def _new_import(
    actor: Any, data: bytes, preview: Preview, state: str, *, into: SurveyImport | None = None
) -> SurveyImport:
    fields = {
        "filename": (preview.filename or "")[:255],
        "sha256": preview.sha256,
        "size": len(data),
        "format": preview.format,
        "state": state,
    }
    if into is None:
        imp = SurveyImport(imported_by=actor, organization=getattr(actor, "organization", None), **fields)
    else:
        # A background job's row holds the file it was uploaded with (encrypted): when that is this
        # file it is neither read back nor written again (for 100,000 rows, 20 MB decrypted and
        # encrypted again, with a few copies of it in memory at once). Nor is the stored preview.
        imp = SurveyImport.objects.select_for_update().defer("file", "result").get(pk=into.pk)
        same_file = imp.sha256 == preview.sha256 and imp.size == len(data)
        for name, value in fields.items():
            setattr(imp, name, value)
        if same_file:
            return imp
    imp.set_file(data)
    return imp


def _clean(imp: SurveyImport) -> None:
    """`full_clean` of the record, leaving out the fields not loaded (see `_new_import`)."""
    imp.full_clean(exclude=list(imp.get_deferred_fields()))


@fewer_collections()  # millions of short-lived objects: see lib.collector
def import_commit(
    *,
    actor: Any,
    source: str | os.PathLike[str] | bytes | IO[bytes],
    filename: str = "",
    progress: r.Progress | None = None,
    into: SurveyImport | None = None,
) -> SurveyImport:
    """Import a survey file all or nothing; see the module's docstring.

    `progress(rows_done, rows_estimate)` is called after every batch of rows. `into`: an existing
    `SurveyImport` row (e.g. a background job's) that becomes the record, locked for the whole
    transaction, instead of a new one; its file and hash are replaced by this file's.
    """
    _may_import(actor)
    if not filename and isinstance(source, str | os.PathLike):
        filename = str(source)
    data = r._load(source)  # noqa: SLF001 - the bytes, read once: hashed, kept and parsed
    reader = r.read_rows(data, filename or str(getattr(source, "name", "") or ""))
    preview = new_preview(reader, data)
    try:
        imp = _commit(actor, data, reader, preview, into=into, progress=progress)
    except _Invalid:
        # Rolled back: nothing of the file is in the ledger. The record says why.
        with transaction.atomic():
            imp = _new_import(actor, data, preview, ImportState.FAILED, into=into)
            imp.counts = {**{k: 0 for k in COUNT_KEYS}, **preview.summary()}
            imp.committed_at = None
            _clean(imp)
            imp.save()
    imp.preview = preview  # type: ignore[attr-defined]
    return imp


class _Invalid(Exception):
    """A row of the file is invalid: roll the import back (the preview holds every error)."""


@transaction.atomic
def _commit(
    actor: Any,
    data: bytes,
    reader: r.SurveyReader,
    preview: Preview,
    *,
    into: SurveyImport | None,
    progress: r.Progress | None,
) -> SurveyImport:
    """One pass over the file: each batch of rows is validated, classified and written; after an
    invalid row nothing more is written, the rest is only validated (so the record lists every
    error), and the transaction is rolled back at the end."""
    from shouhu.intake.jobs import schedule_evaluation

    imp = _new_import(actor, data, preview, ImportState.COMMITTED, into=into)
    imp.committed_at = timezone.now()
    _clean(imp)
    imp.save()
    counts = {k: 0 for k in COUNT_KEYS}
    not_applied_rows: list[dict[str, Any]] = []
    with evaluated_by_caller():  # the new and changed children are evaluated after commit, in batches
        _write_batches(actor, imp, reader, preview, progress, counts, not_applied_rows)
    if not preview.ok:
        raise _Invalid
    imp.counts = {**counts, "not_applied_rows": not_applied_rows}
    imp.committed_at = timezone.now()  # after every write: later edits are those after this instant
    imp.save(update_fields=["counts", "committed_at"])
    # Not the file name: it may name a family. The SurveyImport row (by id) keeps it.
    record(
        actor=actor,
        action=Action.IMPORT,
        object_type="survey_import",
        object_id=imp.pk,
        detail={"sha256": imp.sha256, **{k: counts[k] for k in COUNT_KEYS}},
    )
    if counts["new"] or counts["changed"]:  # their categories, in the background after commit (read from the items)
        schedule_evaluation(imp.pk)
    return imp


def _write_batches(
    actor: Any,
    imp: SurveyImport,
    reader: r.SurveyReader,
    preview: Preview,
    progress: r.Progress | None,
    counts: dict[str, int],
    not_applied_rows: list[dict[str, Any]],
) -> None:
    from shouhu.visits.services import plans_for_created

    differ = _Differ(actor)
    new_item = Builder(
        SurveyImportItem,
        ["survey_import_id", "child_id", "row", "action", "version_after", "household_version_after"],
    )
    # The records' COPYs go behind, from a thread of their own, while this one builds the next
    # batch (lib.writebehind), their foreign keys checked as they are written, not all at commit;
    # the audit chain's head is read and written once, not per batch.
    with checked_as_written(connection), write_behind(connection), chain_held():
        for batch in classify(actor, reader, progress=progress):
            for row in batch:
                preview.add(row, keep=False)
            if not preview.ok:
                continue
            new = [row for row in batch if row.item.status == NEW]
            if new:
                children = registry.children_create_bulk(actor=actor, rows=[row.result.create_kwargs() for row in new])
                insert_in_bulk(
                    SurveyImportItem,
                    [
                        new_item(
                            {
                                "survey_import_id": imp.pk,
                                "child_id": child.pk,
                                "row": row.raw.row,
                                "action": ItemAction.CREATED,
                                "version_after": child.version,
                                "household_version_after": child.household.version if child.household else None,
                            }
                        )
                        for row, child in zip(new, children, strict=True)
                    ],
                )
                counts["new"] += len(new)
                plans_for_created(children)  # first visits due (no signals in bulk)
            counts["unchanged"] += sum(1 for row in batch if row.item.status == UNCHANGED)
            changed = [row for row in batch if row.item.status == CHANGED]
            if not changed:
                continue
            # Lock the batch's changed children and their households, then compare again with what
            # is stored now.
            ids = [row.result.existing_child_id for row in changed]
            locked = {c.pk: c for c in Child.objects.select_for_update().filter(pk__in=ids)}
            households = Household.objects.select_for_update().in_bulk(
                [c.household_id for c in locked.values() if c.household_id]
            )
            loaded = differ.load(ids)
            applied: list[tuple[Classified, int]] = []
            simple: list[_RowPlan] = []
            for row in changed:
                child, current = locked.get(row.result.existing_child_id), loaded.get(row.result.existing_child_id)
                if child is None or current is None:
                    raise ImportAborted(
                        _("第%(r)d行的儿童已从台账中删除，导入已取消，请重新导入。") % {"r": row.raw.row}
                    )
                diffs = differ.diff(row.result, current)
                if not diffs:
                    counts["unchanged"] += 1
                    continue
                plan = _plan_row(row.raw.row, row.result, child, current, households.get(child.household_id), differ)
                if plan.simple and BULK_UPDATES:
                    simple.append(plan)
                else:
                    _write_row(actor, imp, plan)
                applied.append((row, len(diffs)))
            _write_simple_rows(actor, imp, simple)
            # What the ledger still lacks after the writes (a difference no service could apply),
            # read back for the batch at once.
            written = differ.load([row.result.existing_child_id for row, _n in applied]) if applied else {}
            for row, before in applied:
                rest = [str(d.label) for d in differ.diff(row.result, written[row.result.existing_child_id])]
                if rest:
                    counts["not_applied"] += 1
                    not_applied_rows.append({"row": row.raw.row, "columns": rest})
                counts["changed" if len(rest) < before else "unchanged"] += 1


@dataclass
class _RowPlan:
    """What a changed row writes, worked out before anything is written: the values it replaces
    (kept with the import's item, for an undo) and the writes, by record."""

    row: int
    child: Child  # locked
    loaded: Child  # the same child with household, family and carers, as compared
    household: Household | None  # locked
    child_data: dict[str, Any] = field(default_factory=dict)
    household_data: dict[str, Any] = field(default_factory=dict)
    # (the member, or None to add one; the columns to write; the situations replacing its own, or None)
    members: list[tuple[FamilyMember | None, dict[str, Any], list[dict[str, Any]] | None]] = field(default_factory=list)
    entrustment: tuple[Entrustment | None, dict[str, Any]] | None = None  # (the current one or None to add, data)
    replaced: dict[str, Any] = field(default_factory=dict)

    @property
    def simple(self) -> bool:
        """The child, its household (when it has one), its family and its carer (edited or
        added): written in bulk."""
        return self.household is not None or not self.household_data


def _plan_row(
    row: int, result: r.RowResult, child: Child, loaded: Child, household: Household | None, differ: _Differ
) -> _RowPlan:
    """The columns the row fills in that differ from the ledger, by record, and what they replace."""
    present = result.present
    plan = _RowPlan(row=row, child=child, loaded=loaded, household=household)
    plan.replaced = {
        "child": {name: _jsonable(getattr(child, name)) for name in registry.CHILD_FIELDS if name != "region"},
        "household": None,
        "household_created": False,
        "members": [],
        "members_created": [],
        "entrustment": None,
        "entrustment_created": None,
    }
    plan.replaced["child"]["region"] = child.region_id

    # The child's own columns.
    if ("region" in present or "region_code" in present) and not _same(child.region_id, result.child.get("region")):
        plan.child_data["region"] = result.child["region"]
    for key, name in _CHILD.items():
        if key in present and not _same(getattr(child, name), result.child.get(name)):
            plan.child_data[name] = result.child.get(name)

    # The household.
    if result.household is not None:
        plan.household_data = {
            name: result.household.get(name)
            for key, name in _HOUSEHOLD.items()
            if key in present and not _same(getattr(household, name) if household else None, result.household.get(name))
        }
        if plan.household_data:
            if household is None:
                plan.replaced["household_created"] = True
            else:
                plan.replaced["household"] = {
                    name: _jsonable(getattr(household, name)) for name in registry.HOUSEHOLD_FIELDS
                }

    # Parents and grandparents, by relation: the columns present only.
    family = list(loaded.family.all())
    for new in result.members:
        prefix = new["relation"]
        old = next((f for f in family if f.relation == prefix), None)
        if old is None:
            plan.members.append((None, new, None))
            continue
        data = {
            name: new.get(name)
            for name in _MEMBER_FIELDS
            if f"{prefix}_{name}" in present and not _same(getattr(old, name), new.get(name))
        }
        situations = None
        if prefix in ("father", "mother") and any(
            f"{prefix}_{k}" in present for k in ("situation", "situation_since", "disability_grade")
        ):
            current = differ._current_situations(old)  # noqa: SLF001
            new_situations = new.get("situations") or []
            if sorted(map(str, ((s.kind, s.since, s.disability_grade) for s in current))) != sorted(
                map(str, ((s["kind"], s.get("since"), s.get("disability_grade")) for s in new_situations))
            ):
                situations = new_situations
                if f"{prefix}_capacity" not in present:  # the sheet's situation decides, as for a new member
                    data["capacity"], data["is_guardian"] = new.get("capacity"), new.get("is_guardian")
        if not data and situations is None:
            continue
        plan.replaced["members"].append(
            {
                "pk": old.pk,
                "data": {name: _jsonable(getattr(old, name)) for name in registry.MEMBER_FIELDS},
                "situations": None
                if situations is None
                else [
                    {name: _jsonable(getattr(s, name)) for name in registry.SITUATION_FIELDS}
                    for s in old.situations.all()
                ],
            }
        )
        plan.members.append((old, data, situations))

    # The current entrustment.
    if result.entrustment is not None:
        entrustment = differ._current_entrustment(loaded)  # noqa: SLF001
        if entrustment is None:
            plan.entrustment = (None, result.entrustment)
        else:
            data = {
                name: result.entrustment.get(name)
                for key, name in _ENTRUSTMENT.items()
                if key in present and not _same(getattr(entrustment, name), result.entrustment.get(name))
            }
            if data:
                plan.replaced["entrustment"] = {
                    "pk": entrustment.pk,
                    "data": {name: _jsonable(getattr(entrustment, name)) for name in registry.ENTRUSTMENT_FIELDS},
                }
                plan.entrustment = (entrustment, data)
    return plan


def _item(imp: SurveyImport, plan: _RowPlan, child: Child, household_version: int | None) -> SurveyImportItem:
    item = SurveyImportItem(
        survey_import=imp,
        child=child,
        row=plan.row,
        action=ItemAction.CHANGED,
        version_after=child.version,
        household_version_after=household_version,
    )
    item.set_replaced(plan.replaced)
    return item


def _write_row(actor: Any, imp: SurveyImport, plan: _RowPlan) -> None:
    """A changed row, record by record, through the registry's services (each with its lock,
    version, history row and audit event)."""
    child = plan.child
    if plan.child_data:
        child = registry.child_update(actor=actor, child=child, data=plan.child_data, version=child.version)
    household = plan.household
    hh_version = household.version if household else None
    if plan.household_data:
        hh = registry.household_update(
            actor=actor, child=child, data=plan.household_data, version=household.version if household else None
        )
        hh_version = hh.version
        child.household_id = hh.pk
    for member, data, situations in plan.members:
        if member is None:
            created = registry.member_create(actor=actor, child=child, data=data)
            plan.replaced["members_created"].append(created.pk)
        else:
            registry.member_update(actor=actor, member=member, data=data, version=member.version, situations=situations)
    if plan.entrustment is not None:
        entrustment, data = plan.entrustment
        if entrustment is None:
            made = registry.entrustment_save(actor=actor, child=child, data=data, entrustment=None, version=None)
            plan.replaced["entrustment_created"] = made.pk
        else:
            registry.entrustment_save(
                actor=actor, child=child, data=data, entrustment=entrustment, version=entrustment.version
            )
    _item(imp, plan, child, hh_version).save()


def _write_simple_rows(actor: Any, imp: SurveyImport, plans: list[_RowPlan]) -> None:
    """Changed rows together: the same records, history rows and audit events as `_write_row`, a
    few statements per batch (`registry.ledger_update_bulk`)."""
    from shouhu.visits.services import refresh_plans

    if not plans:
        return
    rows = [
        registry.BulkUpdate(
            child=plan.child,
            child_data=plan.child_data,
            household=plan.household,
            household_data=plan.household_data,
            members=list(plan.members),
            entrustment=plan.entrustment,
        )
        for plan in plans
    ]
    updated = registry.ledger_update_bulk(actor=actor, rows=rows)
    for plan, row in zip(plans, rows, strict=True):
        plan.replaced["members_created"].extend(member.pk for member in row.added)
        if plan.entrustment is not None and plan.entrustment[0] is None:  # as _write_row records it
            plan.replaced["entrustment_created"] = row.entrustment_added.pk if row.entrustment_added else None
    insert_in_bulk(
        SurveyImportItem,
        [_item(imp, plan, plan.child, plan.household.version if plan.household else None) for plan in plans],
    )
    if updated:
        refresh_plans(updated)  # a child's village may have changed (no signals in bulk)


# -- undo -----------------------------------------------------------------------------------------------------------


def _edited_since(
    imp: SurveyImport, items: list[SurveyImportItem], children: dict[Any, Child]
) -> list[tuple[SurveyImportItem, Child | None]]:
    """The items whose child was edited after the import (or is gone), with that child: the child's
    and the household's versions are not those the import left, or a family member or carer record
    changed since. A few queries for the whole import, not several per child."""
    household_ids = {c.household_id for c in children.values() if c.household_id}
    household_versions: dict[int | None, int] = dict(
        Household.objects.filter(pk__in=household_ids).values_list("pk", "version")
    )
    after = imp.committed_at
    touched = set(
        FamilyMember.history.filter(child_id__in=list(children), history_date__gt=after)
        .values_list("child_id", flat=True)
        .distinct()
    )
    touched |= set(
        Entrustment.history.filter(child_id__in=list(children), history_date__gt=after)
        .values_list("child_id", flat=True)
        .distinct()
    )
    edited: list[tuple[SurveyImportItem, Child | None]] = []
    for item in items:
        child = children.get(item.child_id)
        if child is None:
            if item.action == ItemAction.CHANGED:  # a changed child that is gone cannot be restored
                edited.append((item, child))
            continue
        if child.version != item.version_after:
            changed = True
        elif item.household_version_after is not None:
            changed = household_versions.get(child.household_id) != item.household_version_after
        else:
            changed = child.household_id is not None  # the import left the child without a household
        if changed or child.pk in touched:
            edited.append((item, child))
    return edited


@transaction.atomic
def import_undo(
    *, actor: Any, imp: SurveyImport, progress: r.Progress | None = None, background: bool = False
) -> SurveyImport:
    """Delete the children the import created and restore the values it replaced; all or nothing.
    `background`: the undo job's call, on an import in state *undoing* (`intake.jobs.start_undo`);
    `progress(done, total)` is called as the children are deleted and restored."""
    _may_import(actor)
    from shouhu.org.access import scope_for

    current = SurveyImport.objects.select_for_update().defer("file").get(pk=imp.pk)
    if current.state != (ImportState.UNDOING if background else ImportState.COMMITTED):
        raise ValidationError(_("只能撤销已导入的文件（当前状态：%(s)s）。") % {"s": current.get_state_display()})
    items = list(current.items.order_by("row"))
    children: dict[UUID | None, Child] = {
        c.pk: c for c in Child.objects.select_for_update().filter(pk__in=[i.child_id for i in items if i.child_id])
    }
    scope = scope_for(actor)
    outside = [c for c in children.values() if not scope.covers_region(c.region_id)]
    if outside:
        raise PermissionDenied(_("本次导入涉及不在您管辖范围内的儿童，不能撤销。"))
    edited = _edited_since(current, items, children)
    if edited:
        names = "、".join(
            _("%(name)s（第%(row)d行）") % {"name": c.name if c else _("（已删除）"), "row": i.row}
            for i, c in edited[:UNDO_NAMES_SHOWN]
        )
        if len(edited) > UNDO_NAMES_SHOWN:  # a whole town's file re-imported: say how many, not every name
            names = _("%(names)s等%(n)d名儿童") % {"names": names, "n": len(edited)}
        raise ValidationError(_("以下儿童在本次导入后已被修改，不能撤销导入：%(names)s。") % {"names": names})
    restored = 0
    created = [
        children[item.child_id] for item in items if item.action == ItemAction.CREATED and item.child_id in children
    ]
    total = len(items)
    deleted = _delete_children(actor, created, current, progress=progress, total=total)
    for item in items:
        child = children.get(item.child_id)
        if child is not None and item.action == ItemAction.CHANGED:
            _restore(actor, child, item.get_replaced())
            restored += 1
            if progress is not None and restored % 100 == 0:
                progress(deleted + restored, total)
    current.state, current.undone_at, current.undone_by = ImportState.UNDONE, timezone.now(), actor
    _clean(current)
    current.save(update_fields=["state", "undone_at", "undone_by"])
    record(
        actor=actor,
        action=Action.IMPORT_UNDO,
        object_type="survey_import",
        object_id=current.pk,
        detail={"deleted": deleted, "restored": restored},
    )
    return current


def _delete_children(
    actor: Any, children: list[Child], imp: SurveyImport, *, progress: r.Progress | None = None, total: int = 0
) -> int:
    """Delete the children an import created, with everything recorded about them since, and the
    households left without a child: a batch at a time (one collector pass per batch, not per
    child), one audit event per child, the history rows of a deletion written per model at the end
    (`deletions_in_bulk`), and no policy evaluation scheduled for the children deleted."""
    from shouhu.audit.services import record_many
    from shouhu.lib.history import deletions_in_bulk
    from shouhu.policy.signals import deleting_children

    with deletions_in_bulk(actor=actor), deleting_children():
        for start in range(0, len(children), 500):
            batch = children[start : start + 500]
            ids = [child.pk for child in batch]
            households = {child.household_id for child in batch if child.household_id}
            record_many(
                actor=actor,
                action=Action.DELETE,
                events=[
                    {"object_type": "child", "object_id": pk, "detail": {"reason": "import_undo", "import": imp.pk}}
                    for pk in ids
                ],
            )
            Child.objects.filter(pk__in=ids).delete()
            if households:
                still = set(Child.objects.filter(household_id__in=households).values_list("household_id", flat=True))
                Household.objects.filter(pk__in=households - still).delete()
            if progress is not None:
                progress(start + len(batch), total)
    return len(children)


def _values(model: type, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON values back to the model's Python values (dates from ISO strings)."""
    out = {}
    for name, value in data.items():
        field = model._meta.get_field(name)  # type: ignore[attr-defined]
        out[name] = value if field.is_relation else field.to_python(value)
    return out


def _restore(actor: Any, child: Child, replaced: dict[str, Any]) -> None:
    from shouhu.registry.models import ParentSituation

    child = registry.child_update(
        actor=actor, child=child, data=_values(Child, replaced.get("child") or {}), version=child.version
    )
    if replaced.get("household_created") and child.household_id:
        household_id = child.household_id
        Child.objects.filter(pk=child.pk).update(household=None)
        record(
            actor=actor,
            action=Action.UPDATE,
            object_type="child",
            object_id=child.pk,
            detail={"household_removed": True, "reason": "import_undo"},
        )
        if not Child.objects.filter(household_id=household_id).exists():
            hh = Household.objects.get(pk=household_id)
            attribute_to(hh, actor)
            hh.delete()
    elif replaced.get("household") is not None and child.household_id:
        hh = Household.objects.get(pk=child.household_id)
        registry.household_update(
            actor=actor, child=child, data=_values(Household, replaced["household"]), version=hh.version
        )
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
            actor=actor,
            member=member,
            data=_values(FamilyMember, old["data"]),
            version=member.version,
            situations=None if situations is None else [_values(ParentSituation, s) for s in situations],
        )
    if replaced.get("entrustment_created"):
        entrustment = Entrustment.objects.filter(pk=replaced["entrustment_created"], child=child).first()
        if entrustment is not None:
            record(
                actor=actor,
                action=Action.UPDATE,
                object_type="child",
                object_id=child.pk,
                detail={"entrustment_removed": True, "reason": "import_undo"},
            )
            attribute_to(entrustment, actor)
            entrustment.delete()
    old_entrustment = replaced.get("entrustment")
    if old_entrustment:
        entrustment = Entrustment.objects.filter(pk=old_entrustment["pk"], child=child).first()
        if entrustment is not None:
            registry.entrustment_save(
                actor=actor,
                child=child,
                data=_values(Entrustment, old_entrustment["data"]),
                entrustment=entrustment,
                version=entrustment.version,
            )
