"""The import preview (dry run) of a survey file: what an import would do, without doing it.

`preview_import(actor=…, source=…, filename=…)` reads every row of the file (shouhu.intake.reader),
validates it with one `RowValidator` for the whole file (so an ID number twice in the file is
flagged), and classifies each valid row against the ledger:

* **new**: no child with that ID number in the importer's ledger;
* **changed**: a child exists and at least one value the row gives differs from the stored one;
* **unchanged**: a child exists and every value the row gives equals the stored one.

Only the columns a row fills in (`RowResult.present`) are compared: a blank cell is not an edit.
They are compared with the stored child, its household, its father and mother (and grandparents)
by relation, and its current entrustment. For a changed child the preview lists the differences
field by field, as (Chinese label, old value, new value) in display form: personal identifiers
(ID numbers, phones, the address) masked, coded values as their Chinese labels.

The preview reads the database and writes nothing (no child, no audit event). A file that cannot
be read at all raises `SurveyFileError` (Chinese message), as `read_rows` does.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from django.utils.translation import gettext_lazy as _

from shouhu.intake import columns as cols
from shouhu.intake import pipeline
from shouhu.intake import reader as r
from shouhu.intake.columns import Kind
from shouhu.intake.reader import CellError, RowResult, RowValidator
from shouhu.lib.collector import fewer_collections
from shouhu.lib.text import mask_address, mask_id_number, mask_phone
from shouhu.registry import models as m

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

NEW, CHANGED, UNCHANGED, INVALID = "new", "changed", "unchanged", "invalid"
STATUS_LABELS = {NEW: _("新增"), CHANGED: _("变更"), UNCHANGED: _("无变化"), INVALID: _("有错误")}
EMPTY = _("（空）")
RESTRICTED = _("（受限信息）")
BATCH = 500  # ledger children read per query when comparing


class FieldDiff(NamedTuple):
    label: str  # the Chinese column header, e.g. "父亲联系电话"
    old: str  # the ledger's value, for display (masked / labelled)
    new: str  # the file's value, for display


@dataclass
class PreviewRow:
    row: int  # the row number in the sheet
    status: str  # new / changed / unchanged / invalid
    name: str  # the child's name as in the file
    existing_child_id: Any = None  # the ledger's child (changed / unchanged; also an invalid row's, when known)
    diffs: list[FieldDiff] = field(default_factory=list)  # changed rows only

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])


@dataclass
class Preview:
    filename: str
    format: str  # xlsx / xls / csv
    sha256: str  # of the file's bytes, as uploaded
    sheet: str  # the sheet read ("CSV" for a CSV)
    header_row: int  # 1-based row of the (last) header row
    counts: dict[str, int] = field(default_factory=lambda: {NEW: 0, CHANGED: 0, UNCHANGED: 0, INVALID: 0})
    rows: list[PreviewRow] = field(default_factory=list)  # in sheet order
    errors: list[CellError] = field(default_factory=list)  # in row order
    warnings: list[str] = field(default_factory=list)  # about the header: unknown, duplicate, missing columns

    def add(self, row: Classified, *, keep: bool = True) -> None:
        """Count a classified row; keep it in `rows` (with `keep=False` only changed and invalid ones)."""
        self.counts[row.item.status] += 1
        self.errors.extend(row.result.errors)
        if keep or row.item.status in (CHANGED, INVALID):
            self.rows.append(row.item)

    @property
    def ok(self) -> bool:
        """No invalid row: the file may be committed."""
        return self.counts[INVALID] == 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, int]:
        return dict(self.counts)


@fewer_collections()  # millions of short-lived objects: see lib.collector
def preview_import(
    *,
    actor: Any,
    source: str | os.PathLike[str] | bytes | IO[bytes],
    filename: str = "",
    progress: r.Progress | None = None,
) -> Preview:
    """Read, validate and compare every row of a survey file with the ledger; write nothing.

    `progress(rows_done, rows_estimate)` is called after every batch of BATCH rows.
    """
    if not filename and isinstance(source, str | os.PathLike):
        filename = str(source)
    data = r._load(source)  # noqa: SLF001 - one copy of the bytes, hashed and read
    reader = r.read_rows(data, filename or str(getattr(source, "name", "") or ""))
    preview = new_preview(reader, data)
    for batch in classify(actor, reader, progress=progress):
        for row in batch:
            preview.add(row)
    return preview


def new_preview(reader: r.SurveyReader, data: bytes) -> Preview:
    return Preview(
        filename=reader.filename,
        format=reader.format,
        sha256=hashlib.sha256(data).hexdigest(),
        sheet=reader.header.sheet,
        header_row=reader.header.row,
        warnings=reader.header.warnings(),
    )


@dataclass
class Classified:
    """One row of the file: validated, and compared with the ledger's child when there is one."""

    raw: r.RawRow
    result: RowResult
    item: PreviewRow
    child: m.Child | None = None  # the ledger's child with household, family and carers (changed/unchanged)


def classify(
    actor: Any,
    reader: r.SurveyReader,
    *,
    progress: r.Progress | None = None,
    batch: int | None = None,
    stats: pipeline.Stats | None = None,
) -> Iterator[list[Classified]]:
    """The rows of the file in batches, each validated (one RowValidator for the whole file, so an
    ID number twice in the file is flagged) and classified: the ledger is read for a batch at a
    time — the children with the batch's ID numbers, then those children with their families — so
    the number of queries grows with the batches, not the rows. A large file's rows are validated
    by other processes meanwhile (shouhu.intake.pipeline; `stats` says how). Writes nothing."""
    validator = RowValidator(actor)
    differ = _Differ(actor)
    done = 0
    chunks = _chunks(reader, batch or BATCH)  # BATCH read now: a test may change it
    for rows, results in pipeline.validated_batches(validator, chunks, estimate=reader.total_estimate, stats=stats):
        yield _classified(differ, rows, results)
        done += len(rows)
        if progress is not None:
            progress(done, max(done, reader.total_estimate))
    if progress is not None:
        progress(done, done)


def _chunks(rows: Iterator[r.RawRow], size: int) -> Iterator[list[r.RawRow]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _classified(differ: _Differ, rows: list[r.RawRow], results: list[RowResult]) -> list[Classified]:
    out: list[Classified] = []
    for raw, result in zip(rows, results, strict=True):
        name = r._text(raw.values.get("name")).strip()  # noqa: SLF001
        if not result.ok:
            item = PreviewRow(row=raw.row, status=INVALID, name=name, existing_child_id=result.existing_child_id)
        elif result.existing_child_id is None:
            item = PreviewRow(row=raw.row, status=NEW, name=result.child.get("name") or name)
        else:
            item = PreviewRow(
                row=raw.row,
                status=UNCHANGED,
                name=result.child.get("name") or name,
                existing_child_id=result.existing_child_id,
            )
        out.append(Classified(raw=raw, result=result, item=item))
    known = [c for c in out if c.item.status == UNCHANGED]
    children = differ.load([c.result.existing_child_id for c in known]) if known else {}
    for c in known:
        c.child = children.get(c.result.existing_child_id)
        if c.child is None:  # removed from the ledger since the row was validated
            c.item.status, c.item.existing_child_id = NEW, None
        else:
            c.item.diffs = differ.diff(c.result, c.child)
            c.item.status = CHANGED if c.item.diffs else UNCHANGED
    return out


# -- comparing ---------------------------------------------------------------------------------------------------

# Column key -> Child field.
_CHILD = {
    key: key
    for key in (
        "name",
        "id_number",
        "gender",
        "birth_date",
        "ethnicity",
        "hukou_registered",
        "hukou_type",
        "hukou_place",
        "health",
        "disability_type",
        "disability_grade",
        "illness",
        "school_stage",
        "school_name",
        "grade",
        "boarding",
        "lives_with_parents",
        "guardianship_type",
        "guardianship_assessment",
        "note",
    )
}
_HOUSEHOLD = {key: key for key in ("address", "economic_status", "housing", "income_sources", "assistance_received")}
_ENTRUSTMENT = {
    "carer_name": "carer_name",
    "carer_relation": "carer_relation",
    "carer_id_number": "carer_id_number",
    "carer_phone": "carer_phone",
    "carer_birth_date": "carer_birth_date",
    "carer_since": "since",
    "carer_agreement_signed": "agreement_signed",
    "carer_agreement_date": "agreement_date",
}
_MEMBER_FIELDS = ("name", "id_number", "birth_date", "phone", "work_place", "capacity")
_MEMBER_PREFIXES = ("father", "mother", "grandfather_p", "grandmother_p", "grandfather_m", "grandmother_m")

# Column key -> the codes' Chinese labels (lazy: rendered by str() in the active language).
_LABELS: dict[str, dict[str, StrOrPromise]] = {
    "gender": dict(m.Gender.choices),
    "hukou_type": dict(m.HukouType.choices),
    "health": dict(m.Health.choices),
    "disability_type": dict(m.DisabilityType.choices),
    "school_stage": dict(m.SchoolStage.choices),
    "guardianship_type": dict(m.GuardianshipType.choices),
    "guardianship_assessment": dict(m.GuardianshipAssessment.choices),
    "economic_status": dict(m.EconomicStatus.choices),
    "carer_relation": dict(m.Relation.choices),
    "income_sources": dict(m.INCOME_SOURCES),
    "assistance_received": dict(m.ASSISTANCE_KINDS),
    "father_capacity": dict(m.Capacity.choices),
    "mother_capacity": dict(m.Capacity.choices),
    "father_situation": dict(m.SituationKind.choices),
    "mother_situation": dict(m.SituationKind.choices),
}
_MASKS: dict[str, Callable[[str], str]] = {
    "id_number": mask_id_number,
    "father_id_number": mask_id_number,
    "mother_id_number": mask_id_number,
    "carer_id_number": mask_id_number,
    "father_phone": mask_phone,
    "mother_phone": mask_phone,
    "carer_phone": mask_phone,
    "address": mask_address,
}


def _same(old: Any, new: Any) -> bool:
    return _norm(old) == _norm(new)


def _norm(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(sorted(str(v) for v in value))
    if isinstance(value, m.models.Model):
        return value.pk
    return value


def display(key: str, value: Any, *, restricted: frozenset[str] = frozenset()) -> str:
    """A value of column `key` as the preview shows it: masked, labelled, dates as 2015-03-08."""
    if value is None or value == "" or (isinstance(value, list | tuple | set | frozenset) and not value):
        return str(EMPTY)
    if key in _MASKS:
        return _MASKS[key](str(value))
    if key in ("region", "region_code"):
        return f"{value.name}（{value.code}）" if hasattr(value, "code") else str(value)
    column = cols.BY_KEY.get(key)
    kind = column.kind if column else Kind.TEXT
    labels = _LABELS.get(key, {})
    if isinstance(value, list | tuple | set | frozenset):
        return "、".join(str(RESTRICTED) if v in restricted else str(labels.get(v, v)) for v in sorted(value, key=str))
    if kind == Kind.BOOL or isinstance(value, bool):
        return str(_("是") if value else _("否"))
    if kind == Kind.GRADE:
        grade = int(value)
        return (
            cols.GRADE_OPTIONS[grade - 1] if 1 <= grade <= len(cols.GRADE_OPTIONS) else str(_("%(g)d级")) % {"g": grade}
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(labels.get(value, value))


class _Differ:
    """Compares valid rows with the ledger's children, one child (with its family) read per row."""

    def __init__(self, actor: Any) -> None:
        from shouhu.org.access import Label, scope_for

        self.today = date.today()
        cleared = scope_for(actor).cleared(Label.JUDICIAL)
        self.restricted = frozenset() if cleared else frozenset(str(k) for k in m.JUDICIAL_SITUATIONS)

    def load(self, pks: list[Any]) -> dict[Any, m.Child]:
        """The children with their household, family (with situations) and entrustments: four queries.

        Prefetched by hand: Django's `prefetch_related` builds a filtered queryset per child and
        per member (≈ 0.3 ms a child, a quarter of re-importing a child). The related lists are put
        where `prefetch_related` puts them, as plain lists: `child.family.all()`,
        `member.situations.all()` and `child.entrustments.all()` return them, in the models' own
        order; anything else asked of them (`.filter()`) fails loudly instead of querying."""
        children = {
            child.pk: child for child in m.Child.objects.filter(pk__in=set(pks)).select_related("household", "region")
        }
        family: dict[Any, list[m.FamilyMember]] = {pk: [] for pk in children}
        members: dict[Any, m.FamilyMember] = {}
        for member in m.FamilyMember.objects.filter(child_id__in=children):  # Meta.ordering
            family[member.child_id].append(member)
            members[member.pk] = member
        situations: dict[Any, list[m.ParentSituation]] = {pk: [] for pk in members}
        for situation in m.ParentSituation.objects.filter(member_id__in=members):
            situations[situation.member_id].append(situation)
        entrustments: dict[Any, list[m.Entrustment]] = {pk: [] for pk in children}
        for entrustment in m.Entrustment.objects.filter(child_id__in=children):
            entrustments[entrustment.child_id].append(entrustment)
        for member_pk, member in members.items():
            member._prefetched_objects_cache = {"situations": situations[member_pk]}  # type: ignore[attr-defined]
        for child_pk, child in children.items():
            child._prefetched_objects_cache = {"family": family[child_pk], "entrustments": entrustments[child_pk]}  # type: ignore[attr-defined]
        return children

    def _current_entrustment(self, child: m.Child) -> m.Entrustment | None:
        return child.current_entrustment(self.today)

    def _current_situations(self, member: m.FamilyMember | None) -> list[m.ParentSituation]:
        if member is None:
            return []
        return [s for s in member.situations.all() if s.until is None or s.until >= self.today]

    def diff(self, result: RowResult, child: m.Child | None = None) -> list[FieldDiff]:
        if child is None:
            child = self.load([result.existing_child_id])[result.existing_child_id]
        present = result.present
        diffs: list[FieldDiff] = []

        def add(key: str, old: Any, new: Any, *, old_restricted: frozenset[str] = frozenset()) -> None:
            if not _same(old, new):
                diffs.append(
                    FieldDiff(cols.BY_KEY[key].header, display(key, old, restricted=old_restricted), display(key, new))
                )

        # The child.
        if "region" in present or "region_code" in present:
            key = "region_code" if "region_code" in present else "region"
            new_region = result.child.get("region")
            if _norm(child.region) != _norm(new_region):
                diffs.append(
                    FieldDiff(
                        cols.BY_KEY["region"].header, display("region", child.region), display("region", new_region)
                    )
                )
        for key, name in _CHILD.items():
            if key in present:
                add(key, getattr(child, name), result.child.get(name))

        # The household.
        household = child.household
        if result.household is not None:
            for key, name in _HOUSEHOLD.items():
                if key in present:
                    add(key, getattr(household, name) if household else None, result.household.get(name))

        # Parents and grandparents, by relation.
        family = list(child.family.all())
        new_members = {member["relation"]: member for member in result.members}
        for prefix in _MEMBER_PREFIXES:
            keys = [k for k in present if k.startswith(prefix + "_")]
            if not keys:
                continue
            old = next((f for f in family if f.relation == prefix), None)
            new = new_members.get(prefix, {})
            for name in _MEMBER_FIELDS:
                key = f"{prefix}_{name}"
                if key in present:
                    add(key, getattr(old, name) if old else None, new.get(name))
            if prefix not in ("father", "mother"):
                continue
            situations = self._current_situations(old)
            new_situations = new.get("situations") or []
            key = f"{prefix}_situation"
            if key in present:
                add(
                    key,
                    [s.kind for s in situations],
                    [s["kind"] for s in new_situations],
                    old_restricted=self.restricted,
                )
            key = f"{prefix}_situation_since"
            if key in present:
                old_since = min((s.since for s in situations if s.since), default=None)
                new_since = min((s["since"] for s in new_situations if s.get("since")), default=None)
                add(key, old_since, new_since)
            key = f"{prefix}_disability_grade"
            if key in present:
                old_grade = next((s.disability_grade for s in situations if s.kind == "severe_disability"), None)
                new_grade = next(
                    (s.get("disability_grade") for s in new_situations if s["kind"] == "severe_disability"), None
                )
                add(key, old_grade, new_grade)

        # The current entrustment.
        if result.entrustment is not None:
            entrustment = self._current_entrustment(child)
            for key, name in _ENTRUSTMENT.items():
                if key in present:
                    add(key, getattr(entrustment, name) if entrustment else None, result.entrustment.get(name))
        return diffs
