"""Writes to the ledger. Pages, the API, imports and jobs all call these.

Each service takes `actor=` first, runs in one transaction, validates with `full_clean()`, and
writes its audit event in the same transaction. Edits carry the version the user started from:
a stale version raises `StaleEdit`, and nothing is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record, record_many
from shouhu.lib import writebehind
from shouhu.lib.bulkcopy import Builder, CopyWriter, update_in_bulk
from shouhu.lib.crypto import blind_index
from shouhu.lib.text import pinyin_keys
from shouhu.registry.models import (
    ELIGIBILITY_FIELDS,
    Child,
    Entrustment,
    EntrustmentScan,
    FamilyMember,
    Household,
    LedgerStatus,
    ParentSituation,
)

# Fields whose values never enter the audit log (only the fact that they changed).
PERSONAL_FIELDS = frozenset({"id_number", "phone", "address", "carer_id_number", "carer_phone", "name", "carer_name"})


class StaleEdit(Exception):
    """Someone saved this record after the user opened it."""

    def __init__(self, current_version: int) -> None:
        super().__init__(current_version)
        self.current_version = current_version

    @property
    def message(self) -> str:
        return _(
            "保存失败：在您编辑期间，该记录已被他人修改。您填写的内容仍保留在下方；"
            "请核对他人所做的修改，确认后再次点击“保存”，将以您填写的内容为准。"
        )


def child_index(id_number: str) -> str:
    return blind_index(id_number, purpose="child_id")


def person_index(id_number: str) -> str:
    return blind_index(id_number, purpose="person_id") if id_number else ""


def _apply(instance: Any, data: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Set fields on the instance; return {field: [old, new]} for what changed (personal values hidden)."""
    changes: dict[str, Any] = {}
    for name in fields:
        if name not in data:
            continue
        new = data[name]
        field = instance._meta.get_field(name)
        if field.is_relation:
            old_key = getattr(instance, field.attname)
            new_key = getattr(new, "pk", new)
            if old_key != new_key:
                changes[name] = [old_key, new_key]
            setattr(instance, field.attname, new_key)
            continue
        old = getattr(instance, name)
        if old != new:
            changes[name] = ["***", "***"] if name in PERSONAL_FIELDS else [_jsonable(old), _jsonable(new)]
        setattr(instance, name, new)
    return changes


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


CHILD_FIELDS = [
    "name",
    "id_number",
    "gender",
    "birth_date",
    "ethnicity",
    "hukou_registered",
    "hukou_type",
    "hukou_place",
    "region",
    "health",
    "disability_type",
    "disability_grade",
    "illness",
    "school_stage",
    "school_name",
    "grade",
    "boarding",
    "lives_with_parents",
    "street_child",
    "guardianship_type",
    "guardianship_assessment",
    "note",
]
HOUSEHOLD_FIELDS = ["address", "economic_status", "housing", "income_sources", "assistance_received"]
MEMBER_FIELDS = ["relation", "name", "id_number", "birth_date", "phone", "work_place", "is_guardian", "capacity"]
SITUATION_FIELDS = ["kind", "since", "until", "disability_grade", "disability_type", "note"]
ENTRUSTMENT_FIELDS = [
    "carer_name",
    "carer_relation",
    "carer_id_number",
    "carer_phone",
    "carer_birth_date",
    "since",
    "until",
    "agreement_signed",
    "agreement_date",
    "village_informed",
    "village_informed_on",
    "school_informed",
    "school_informed_on",
    *ELIGIBILITY_FIELDS,
    "eligibility_checked_on",
]


def _fill_child_derived(child: Child) -> None:
    child.name_pinyin, child.name_initials = pinyin_keys(child.name)
    child.id_number_index = child_index(child.id_number)
    if child.health != "disabled":
        child.disability_type, child.disability_grade = "", None


def _save(
    instance: Any, actor: Any, *, update_fields: list[str] | None = None, exclude: list[str] | None = None
) -> None:
    instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    instance._history_user = actor if getattr(actor, "is_authenticated", False) else None
    instance.save(update_fields=update_fields)


def _duplicate_error() -> ValidationError:
    return ValidationError({"id_number": [_("该身份证号已在台账中登记。")]})


def _duplicate_from(error: BaseException) -> ValidationError | None:
    """`_duplicate_error` for a failed write of new children, as `children_create_bulk` raises it:
    for a unique violation (PostgreSQL's SQLSTATE 23505; SQLite's errors carry none), not for a
    foreign key that points nowhere, which stays the IntegrityError it is."""
    if not isinstance(error, IntegrityError):
        return None
    return _duplicate_error() if getattr(error.__cause__, "sqlstate", "23505") == "23505" else None


@transaction.atomic
def child_create(
    *,
    actor: Any,
    data: dict[str, Any],
    household: dict[str, Any] | None = None,
    members: list[dict[str, Any]] | None = None,
    entrustment: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> Child:
    """Register a child with the household, family members (each with `situations`) and carer."""
    hh = None
    if household is not None:
        hh = Household()
        _apply(hh, household, HOUSEHOLD_FIELDS)
        _save(hh, actor)
    child = Child(household=hh, registered_by=actor if getattr(actor, "is_authenticated", False) else None)
    _apply(child, data, CHILD_FIELDS)
    _fill_child_derived(child)
    try:
        with transaction.atomic():
            _save(child, actor, exclude=["registered_by"])
    except IntegrityError:
        raise _duplicate_error() from None
    for member in members or []:
        _member_create(actor=actor, child=child, data=member)
    if entrustment:
        _entrustment_write(Entrustment(child=child), actor, entrustment)
    record(
        actor=actor,
        action=Action.CREATE,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"members": len(members or []), "entrustment": bool(entrustment)},
    )
    return child


def children_create_bulk(*, actor: Any, rows: list[dict[str, Any]]) -> list[Child]:
    """Register many children at once (a survey import's new rows): the same records as
    `child_create` for each row — child, household, family members with their situations, carer,
    one history row per record and one audit event per child — in a few statements per table.

    Each row holds `child_create`'s keyword arguments (data, household, members, entrustment) as
    cleaned by the registry's forms; the instances are not `full_clean`ed again (the forms' model
    validation already ran on the same values) and the database's constraints still hold. Signals
    are not sent: the caller schedules the policy evaluation of the children it created.
    A duplicate ID number (written meanwhile by someone else) raises the same ValidationError
    as `child_create`. Runs in the caller's transaction (atomic on its own when there is none).

    On PostgreSQL the rows go in with COPY (`_CopyWriter`: the ids reserved from the tables'
    sequences first, each history row a copy of its record's stored values, so an identifier is
    encrypted once, not again for its history row: `lib.bulkcopy.CopyWriter`); elsewhere with `bulk_create`.
    """
    from django.db import connection
    from django.utils import timezone

    user = actor if getattr(actor, "is_authenticated", False) else None
    now = timezone.now()
    # Inside an import's write-behind block (lib.writebehind) the COPYs are sent later, by its
    # writer thread: a savepoint here could not catch their failure, which fails the import's
    # transaction anyway (a duplicate ID number raises the same ValidationError, at the import's
    # next statement), and releasing one would wait for the writes.
    savepoint = writebehind.current(connection) is None
    with transaction.atomic(savepoint=savepoint):
        new_household, new_child = Builder(Household, HOUSEHOLD_FIELDS), Builder(Child, CHILD_FIELDS)
        new_member, new_situation = Builder(FamilyMember, MEMBER_FIELDS), Builder(ParentSituation, SITUATION_FIELDS)
        new_entrustment = Builder(Entrustment, ENTRUSTMENT_FIELDS)
        households: list[Household | None] = [
            new_household(row["household"]) if row.get("household") is not None else None for row in rows
        ]
        created_hh = [hh for hh in households if hh is not None]
        children = []
        for row, hh in zip(rows, households, strict=True):
            child = new_child(row["data"], household=hh, registered_by=user)
            _fill_child_derived(child)
            children.append(child)
        members: list[FamilyMember] = []
        situations: list[tuple[FamilyMember, dict[str, Any]]] = []
        entrustments: list[Entrustment] = []
        for row, child in zip(rows, children, strict=True):
            for data in row.get("members") or []:
                member = new_member(data, child=child)
                member.id_number_index = person_index(member.id_number)
                members.append(member)
                situations.extend((member, s) for s in data.get("situations") or [])
            if row.get("entrustment"):
                entrustments.append(new_entrustment(row["entrustment"], child=child))
        items = [new_situation(data, member=member) for member, data in situations]
        tables: list[tuple[type[Household | Child | FamilyMember | ParentSituation | Entrustment], list[Any]]] = [
            (Household, created_hh),
            (Child, children),
            (FamilyMember, members),
            (ParentSituation, items),
            (Entrustment, entrustments),
        ]
        if connection.vendor == "postgresql":
            writer = CopyWriter(connection, translate=_duplicate_from)
            try:
                with transaction.atomic(savepoint=savepoint):
                    for model, objs in tables:
                        writer.insert(model, objs, history_user=user, history_date=now)
            except IntegrityError as error:
                duplicate = _duplicate_from(error)
                if duplicate is None:
                    raise
                raise duplicate from None
        else:
            Household.objects.bulk_create(created_hh)
            try:
                with transaction.atomic():
                    Child.objects.bulk_create(children)
            except IntegrityError:
                raise _duplicate_error() from None
            FamilyMember.objects.bulk_create(members)
            ParentSituation.objects.bulk_create(items)
            Entrustment.objects.bulk_create(entrustments)
            for model, objs in tables:
                if objs:
                    model.history.bulk_history_create(objs, default_user=user, default_date=now)
        counts: dict[Any, int] = {}
        for member in members:
            counts[member.child_id] = counts.get(member.child_id, 0) + 1
        has_carer = {ent.child_id for ent in entrustments}
        record_many(
            actor=actor,
            action=Action.CREATE,
            events=[
                {
                    "object_type": "child",
                    "object_id": child.pk,
                    "detail": {"members": counts.get(child.pk, 0), "entrustment": child.pk in has_carer},
                }
                for child in children
            ],
        )
    return children


@dataclass
class BulkUpdate:
    """One child's edits for `ledger_update_bulk`: its own columns, its household's, its family
    members' (by record, each with the situations replacing its own, or None to keep them; a member
    None is one to add, its data holding its situations), its carer's (edited, or added). `child`
    and `household` are locked instances; the members and the entrustment are the ones the edits
    were worked out against (their versions are checked under lock). `added` receives the members
    added, in order, and `entrustment_added` the entrustment added."""

    child: Child
    child_data: dict[str, Any] = dataclasses.field(default_factory=dict)
    household: Household | None = None
    household_data: dict[str, Any] = dataclasses.field(default_factory=dict)
    members: list[tuple[FamilyMember | None, dict[str, Any], list[dict[str, Any]] | None]] = dataclasses.field(
        default_factory=list
    )
    added: list[FamilyMember] = dataclasses.field(default_factory=list)
    # The carer: (the current entrustment, or None to add one; its columns to write). No scan.
    entrustment: tuple[Entrustment | None, dict[str, Any]] | None = None
    entrustment_added: Entrustment | None = None  # set to the entrustment added, if one was


# The columns `_fill_child_derived` sets from each field (written only when that field changed:
# `bulk_update` builds one CASE per object and column).
_CHILD_DERIVED = {
    "name": {"name_pinyin", "name_initials"},
    "id_number": {"id_number_index"},
    "health": {"disability_type", "disability_grade"},
}


def ledger_update_bulk(*, actor: Any, rows: list[BulkUpdate]) -> list[Any]:
    """Edit existing records of many children at once (a survey import's changed rows): for each
    row what `child_update`, `household_update`, `member_update`, `member_create` and
    `entrustment_save` would write — the columns, the version, a "~" history row, an audit event; a
    member's replaced situations deleted and added, with their "-" and "+" history rows; a member
    or a carer added, with "+" history rows — in a few statements per table; a test holds the two
    equal. The instances given are updated in memory (versions included). Like
    `children_create_bulk`, the values are not `full_clean`ed again (the forms validated them) and
    no signals are sent: the caller evaluates the children and refreshes their visit plans. A
    member or entrustment changed since it was read raises StaleEdit. Returns the ids of the
    children whose own record changed."""
    from django.utils import timezone

    from shouhu.lib.history import deletions_in_bulk

    user = actor if getattr(actor, "is_authenticated", False) else None
    now = timezone.now()

    with transaction.atomic():
        wanted = [member.pk for row in rows for member, _data, _situations in row.members if member is not None]
        locked = FamilyMember.objects.select_for_update().in_bulk(wanted)
        carers = Entrustment.objects.select_for_update().in_bulk(
            [row.entrustment[0].pk for row in rows if row.entrustment is not None and row.entrustment[0] is not None]
        )
        own: dict[Any, list[ParentSituation]] = {}  # the members' situations, for those replaced
        replacing = [
            member.pk
            for row in rows
            for member, _data, situations in row.members
            if member is not None and situations is not None
        ]
        for situation in ParentSituation.objects.filter(member_id__in=replacing):
            own.setdefault(situation.member_id, []).append(situation)
        removed: list[Any] = []
        added: list[ParentSituation] = []
        new_members: list[FamilyMember] = []
        children: list[Child] = []
        households: list[Household] = []
        members: list[FamilyMember] = []
        new_carers: list[Entrustment] = []
        edited_carers: list[Entrustment] = []
        events: list[dict[str, Any]] = []
        fields: dict[type[models.Model], set[str]] = {
            Child: set(),
            Household: set(),
            FamilyMember: set(),
            Entrustment: set(),
        }
        for row in rows:
            child = row.child
            changes = _apply(child, row.child_data, CHILD_FIELDS)
            if changes:
                _fill_child_derived(child)
                child.version += 1
                child.updated_at = now
                children.append(child)
                fields[Child] |= set(changes).union(*(_CHILD_DERIVED.get(name, ()) for name in changes))
                events.append({"object_type": "child", "object_id": child.pk, "detail": {"changes": changes}})
            if row.household is not None:
                changes = _apply(row.household, row.household_data, HOUSEHOLD_FIELDS)
                if changes:
                    row.household.version += 1
                    households.append(row.household)
                    fields[Household] |= set(changes)
                    events.append({"object_type": "child", "object_id": child.pk, "detail": {"household": changes}})
            for given, data, situations in row.members:
                if given is None:  # as member_create adds one
                    member = FamilyMember(child=child)
                    _apply(member, data, MEMBER_FIELDS)
                    member.id_number_index = person_index(member.id_number)
                    new_members.append(member)
                    row.added.append(member)
                    for values in data.get("situations", []):
                        item = ParentSituation(member=member)
                        _apply(item, values, SITUATION_FIELDS)
                        added.append(item)
                    events.append(
                        {
                            "object_type": "child",
                            "object_id": child.pk,
                            "detail": {"member_added": member.get_relation_display()},
                        }
                    )
                    continue
                current = locked.get(given.pk)
                if current is None or current.version != given.version:
                    raise StaleEdit(current.version if current is not None else 0)
                member = current
                changes = _apply(member, data, MEMBER_FIELDS)
                if situations is not None:  # as member_update compares and replaces them
                    old = own.get(member.pk, [])
                    if sorted(map(str, ((s.kind, s.since, s.until) for s in old))) != sorted(
                        map(str, ((s["kind"], s.get("since"), s.get("until")) for s in situations))
                    ):
                        changes["situations"] = [len(old), len(situations)]
                        removed.extend(s.pk for s in old)
                        for values in situations:
                            item = ParentSituation(member=member)
                            _apply(item, values, SITUATION_FIELDS)
                            added.append(item)
                if changes:
                    member.id_number_index = person_index(member.id_number)
                    member.version += 1
                    members.append(member)
                    fields[FamilyMember] |= (set(changes) - {"situations"}) | (
                        {"id_number_index"} if "id_number" in changes else set()
                    )
                    events.append(
                        {
                            "object_type": "child",
                            "object_id": child.pk,
                            "detail": {"member": member.get_relation_display(), "changes": changes},
                        }
                    )
            if row.entrustment is not None:  # as entrustment_save adds or edits it
                given_carer, data = row.entrustment
                if data.get("agreement_scan"):
                    raise ValueError("ledger_update_bulk stores no agreement scan: use entrustment_save")
                if given_carer is None:
                    carer = Entrustment(child=child)
                else:
                    held = carers.get(given_carer.pk)
                    if held is None or held.version != given_carer.version:
                        raise StaleEdit(held.version if held is not None else 0)
                    carer = held
                changes = _entrustment_apply(carer, actor, data)
                if changes:
                    if given_carer is None:
                        new_carers.append(carer)
                        row.entrustment_added = carer
                    else:
                        carer.version += 1
                        edited_carers.append(carer)
                        fields[Entrustment] |= set(changes) | (
                            {"eligibility_checked_by"} if _ELIGIBILITY_ANSWERS & set(changes) else set()
                        )
                    events.append({"object_type": "child", "object_id": child.pk, "detail": {"entrustment": changes}})
        written: list[tuple[type[models.Model], list[Any], list[str]]] = [
            (Child, children, sorted(fields[Child] | {"version", "updated_at"})),
            (Household, households, sorted(fields[Household] | {"version"})),
            (FamilyMember, members, sorted(fields[FamilyMember] | {"version"})),
            (Entrustment, edited_carers, sorted(fields[Entrustment] | {"version"})),
        ]
        if removed:
            with deletions_in_bulk(actor=actor):
                ParentSituation.objects.filter(pk__in=removed).delete()
        if new_members:
            FamilyMember.objects.bulk_create(new_members, batch_size=500)
            FamilyMember.history.bulk_history_create(
                new_members, default_user=user, default_date=now, default_change_reason=None
            )
        if new_carers:
            Entrustment.objects.bulk_create(new_carers, batch_size=500)
            Entrustment.history.bulk_history_create(
                new_carers, default_user=user, default_date=now, default_change_reason=None
            )
        if added:
            ParentSituation.objects.bulk_create(added, batch_size=500)
            ParentSituation.history.bulk_history_create(
                added, default_user=user, default_date=now, default_change_reason=None
            )
        for model, objs, names in written:
            if objs:
                update_in_bulk(model, objs, names)
                model.history.bulk_history_create(  # type: ignore[attr-defined]
                    objs, update=True, default_user=user, default_date=now, default_change_reason=None
                )  # no reason, as a record's own save writes it
        if events:
            record_many(actor=actor, action=Action.UPDATE, events=events)
    return [child.pk for child in children]


def _locked(model: type[models.Model], pk: Any, expected_version: int | None) -> Any:
    current: Any = model._default_manager.select_for_update().get(pk=pk)
    if expected_version is None or current.version != expected_version:
        raise StaleEdit(current.version)
    return current


@transaction.atomic
def child_update(
    *, actor: Any, child: Child, data: dict[str, Any], version: int | None, request: HttpRequest | None = None
) -> Child:
    current = _locked(Child, child.pk, version)
    changes = _apply(current, data, CHILD_FIELDS)
    if not changes:
        return current
    _fill_child_derived(current)
    current.version += 1
    try:
        with transaction.atomic():
            _save(current, actor)
    except IntegrityError:
        raise _duplicate_error() from None
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=current.pk,
        request=request,
        detail={"changes": changes},
    )
    return current


@transaction.atomic
def household_update(
    *, actor: Any, child: Child, data: dict[str, Any], version: int | None, request: HttpRequest | None = None
) -> Household:
    if child.household_id is None:
        hh = Household()
        changes = _apply(hh, data, HOUSEHOLD_FIELDS)
        _save(hh, actor)
        Child.objects.filter(pk=child.pk).update(household=hh)
    else:
        hh = _locked(Household, child.household_id, version)
        changes = _apply(hh, data, HOUSEHOLD_FIELDS)
        if not changes:
            return hh
        hh.version += 1
        _save(hh, actor)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"household": changes},
    )
    return hh


def _member_create(*, actor: Any, child: Child, data: dict[str, Any]) -> FamilyMember:
    member = FamilyMember(child=child)
    _apply(member, data, MEMBER_FIELDS)
    member.id_number_index = person_index(member.id_number)
    _save(member, actor)
    for situation in data.get("situations", []):
        item = ParentSituation(member=member)
        _apply(item, situation, SITUATION_FIELDS)
        _save(item, actor)
    return member


@transaction.atomic
def member_create(
    *, actor: Any, child: Child, data: dict[str, Any], request: HttpRequest | None = None
) -> FamilyMember:
    member = _member_create(actor=actor, child=child, data=data)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"member_added": member.get_relation_display()},
    )
    return member


@transaction.atomic
def member_update(
    *,
    actor: Any,
    member: FamilyMember,
    data: dict[str, Any],
    version: int | None,
    situations: list[dict[str, Any]] | None = None,
    request: HttpRequest | None = None,
) -> FamilyMember:
    """Update a family member; `situations` (when given) replaces the member's situations."""
    current = _locked(FamilyMember, member.pk, version)
    changes = _apply(current, data, MEMBER_FIELDS)
    if situations is not None:
        old = [(s.kind, s.since, s.until) for s in current.situations.all()]
        new = [(s["kind"], s.get("since"), s.get("until")) for s in situations]
        if sorted(map(str, old)) != sorted(map(str, new)):
            # Counts only: the kinds (a parent in prison …) carry sensitivity labels, and the audit
            # administrator, who reads this log, holds no clearance for them.
            changes["situations"] = [len(old), len(new)]
            for s in current.situations.all():
                s._history_user = actor
                s.delete()
            for situation in situations:
                item = ParentSituation(member=current)
                _apply(item, situation, SITUATION_FIELDS)
                _save(item, actor)
    if not changes:
        return current
    current.id_number_index = person_index(current.id_number)
    current.version += 1
    _save(current, actor)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=current.child_id,
        request=request,
        detail={"member": current.get_relation_display(), "changes": changes},
    )
    return current


@transaction.atomic
def member_delete(*, actor: Any, member: FamilyMember, version: int | None, request: HttpRequest | None = None) -> None:
    current = _locked(FamilyMember, member.pk, version)
    current._history_user = actor
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=current.child_id,
        request=request,
        detail={"member_removed": current.get_relation_display()},
    )
    current.delete()


# Recording any of these records who checked the carer's eligibility (`eligibility_checked_by`).
_ELIGIBILITY_ANSWERS = frozenset((*ELIGIBILITY_FIELDS, "eligibility_checked_on"))


def _entrustment_apply(current: Entrustment, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Set `data` on an entrustment in memory; return the audited changes."""
    changes = _apply(current, data, ENTRUSTMENT_FIELDS)
    if _ELIGIBILITY_ANSWERS & set(changes):
        # Who checked the carer's eligibility is whoever recorded the answers.
        checked = current.eligibility_checked_on is not None
        current.eligibility_checked_by = actor if checked and getattr(actor, "is_authenticated", False) else None
    return changes


def _entrustment_write(current: Entrustment, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Apply `data` to an entrustment and save it with its scan; return the audited changes."""
    changes = _entrustment_apply(current, actor, data)
    scan = data.get("agreement_scan")
    if not changes and not scan:
        return {}
    if current.pk is not None and changes:
        current.version += 1
    if changes or current.pk is None:
        _save(current, actor)
    if scan:
        content, content_type = scan
        item = EntrustmentScan.objects.filter(entrustment=current).first() or EntrustmentScan(entrustment=current)
        replaced = item.pk is not None
        item.set_file(content)
        item.content_type = content_type
        item.uploaded_by = actor if getattr(actor, "is_authenticated", False) else None
        item.full_clean(exclude=["entrustment"], validate_unique=False)
        item.save()
        # The fact of the upload, never the content or a digest of it.
        changes["agreement_scan"] = ["replaced" if replaced else "added", content_type]
    return changes


@transaction.atomic
def entrustment_save(
    *,
    actor: Any,
    child: Child,
    data: dict[str, Any],
    entrustment: Entrustment | None,
    version: int | None,
    request: HttpRequest | None = None,
) -> Entrustment:
    """Create an entrustment (`entrustment=None`) or edit one; `data` is EntrustmentForm's cleaned
    data (a key `agreement_scan` = (bytes, content type) stores or replaces the agreement's scan)."""
    if entrustment is None:
        current = Entrustment(child=child)
    else:
        current = _locked(Entrustment, entrustment.pk, version)
    changes = _entrustment_write(current, actor, data)
    if not changes:
        return current
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"entrustment": changes},
    )
    return current


@transaction.atomic
def entrustment_renew(
    *,
    actor: Any,
    child: Child,
    previous: Entrustment,
    version: int | None,
    data: dict[str, Any],
    request: HttpRequest | None = None,
) -> Entrustment:
    """A new agreement (“新的委托”): the carer or the parents' situation changed.

    Creates the new entrustment from `data` (EntrustmentForm's cleaned data; `since` is required)
    and ends `previous` the day before the new one starts, unless it already ended earlier. One
    transaction, one audit event. A stale `version` of the previous agreement raises StaleEdit.
    """
    since = data.get("since")
    if since is None:
        raise ValidationError({"since": [_("新的委托请填写委托起始日期。")]})
    old = _locked(Entrustment, previous.pk, version)
    if old.child_id != child.pk:
        raise ValidationError(_("该委托不属于此儿童。"))
    if old.since is not None and since <= old.since:
        raise ValidationError(
            {"since": [_("新的委托起始日期须晚于原委托的起始日期（%(d)s）。") % {"d": old.since.isoformat()}]}
        )
    ended = None
    if old.until is None or old.until >= since:
        ended = since - timedelta(days=1)
        old.until = ended
        old.version += 1
        _save(old, actor, update_fields=["until", "version"])
    new = Entrustment(child=child)
    changes = _entrustment_write(new, actor, {**data, "until": data.get("until")})
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={
            "entrustment_renewed": {
                "previous": old.pk,
                "previous_until": _jsonable(ended),
                "new": new.pk,
                "changes": changes,
            }
        },
    )
    return new


@transaction.atomic
def child_exit(
    *,
    actor: Any,
    child: Child,
    reason: str,
    exit_date: date,
    note: str,
    version: int | None,
    request: HttpRequest | None = None,
) -> Child:
    current = _locked(Child, child.pk, version)
    if current.status == LedgerStatus.EXITED:
        raise ValidationError(_("该儿童已退出台账。"))
    if exit_date < current.birth_date:
        raise ValidationError({"exit_date": [_("退出日期不能早于出生日期。")]})
    current.status, current.exit_reason, current.exit_date, current.exit_note = (
        LedgerStatus.EXITED,
        reason,
        exit_date,
        note,
    )
    current.version += 1
    _save(current, actor)
    record(
        actor=actor,
        action=Action.EXIT,
        object_type="child",
        object_id=current.pk,
        request=request,
        detail={"reason": reason, "date": exit_date.isoformat()},
    )
    return current


@transaction.atomic
def child_reenter(
    *, actor: Any, child: Child, note: str, version: int | None, request: HttpRequest | None = None
) -> Child:
    current = _locked(Child, child.pk, version)
    if current.status == LedgerStatus.ACTIVE:
        raise ValidationError(_("该儿童已在册。"))
    current.status, current.exit_reason, current.exit_date, current.exit_note = LedgerStatus.ACTIVE, "", None, ""
    current.version += 1
    _save(current, actor)
    record(
        actor=actor,
        action=Action.REENTER,
        object_type="child",
        object_id=current.pk,
        request=request,
        detail={"note": note[:200]},
    )
    return current
