"""Spreadsheets out: the ledger (the list the user sees) and the standard statistics tables.

Written with openpyxl's write-only mode (already a dependency, used by the import too): rows go
to a temporary file as they are produced, so memory stays flat in the number of children; the
database is read in chunks (`iterator(chunk_size=…)` with per-chunk prefetches). xlsxwriter's
constant_memory mode would be a little faster but is one more dependency for the same result.

Every file is watermarked (page header and footer, document properties, and a 说明 sheet) with
the user, the organisation and the time; identifiers are masked unless the user may unmask the
child (Cap.UNMASK and the child in the user's own regions) and asked to; every text cell that a
spreadsheet would read as a formula is neutralised. Each export is one audit event, without
personal data: the kind, the row count, the filters, masked or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import IO, Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import Substr
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.collector import fewer_collections
from shouhu.lib.i18n import choice_label
from shouhu.lib.text import mask_address, mask_id_number, mask_phone
from shouhu.lib.workbook import (
    HEADER_FILL,
    HEADER_FONT,
    TITLE_FONT,
    Watermark,
    cells,
    notes_sheet,
    widths,
)
from shouhu.org.access import Cap, scope_for
from shouhu.policy.models import JIANGSU_CODES, ChildCategory
from shouhu.policy.rules import CATEGORY_NAMES
from shouhu.registry.models import (
    Child,
    Entrustment,
    FamilyMember,
    GuardianshipType,
    LedgerStatus,
    Relation,
    SchoolStage,
)
from shouhu.registry.selectors import (
    AGE_BANDS,
    LedgerFilters,
    apply_filters,
    apply_search,
    birth_range_for_age,
    children_visible_to,
    looks_like_id_number,
)

CHUNK = 1000

# ----- the ledger ------------------------------------------------------------------------------

LEDGER_COLUMNS: list[tuple[Any, int]] = [  # (heading, width): written for people, never read back
    (gettext_lazy("序号"), 6),
    (gettext_lazy("姓名"), 10),
    (gettext_lazy("性别"), 6),
    (gettext_lazy("民族"), 8),
    (gettext_lazy("出生日期"), 12),
    (gettext_lazy("年龄"), 6),
    (gettext_lazy("身份证号"), 21),
    (gettext_lazy("镇（街道）"), 12),
    (gettext_lazy("村（社区）"), 14),
    (gettext_lazy("家庭住址"), 24),
    (gettext_lazy("户口性质"), 10),
    (gettext_lazy("就学阶段"), 12),
    (gettext_lazy("学校"), 18),
    (gettext_lazy("年级"), 8),
    (gettext_lazy("寄宿"), 6),
    (gettext_lazy("健康状况"), 8),
    (gettext_lazy("残疾类别"), 8),
    (gettext_lazy("残疾等级"), 8),
    (gettext_lazy("所患疾病"), 14),
    (gettext_lazy("监护类型"), 14),
    (gettext_lazy("监护评估"), 8),
    (gettext_lazy("家庭经济状况"), 10),
    (gettext_lazy("父亲姓名"), 10),
    (gettext_lazy("父亲电话"), 14),
    (gettext_lazy("母亲姓名"), 10),
    (gettext_lazy("母亲电话"), 14),
    (gettext_lazy("受委托人姓名"), 12),
    (gettext_lazy("受委托人关系"), 10),
    (gettext_lazy("受委托人电话"), 14),
    (gettext_lazy("认定类别"), 30),
    (gettext_lazy("台账状态"), 8),
    (gettext_lazy("退出原因"), 14),
    (gettext_lazy("退出日期"), 12),
    (gettext_lazy("备注"), 30),
    (gettext_lazy("更新时间"), 17),
]
ALL_CATEGORY_NAMES = {**CATEGORY_NAMES, **JIANGSU_CODES}


def ledger_queryset(actor: Any, *, filters: LedgerFilters, query: str = "") -> QuerySet[Child]:
    """The list the actor sees on the ledger page with these filters and this search: scoped first."""
    qs = apply_filters(children_visible_to(actor), filters)
    return apply_search(qs, query) if query else qs


def _with_details(qs: QuerySet[Child]) -> QuerySet[Child]:
    return qs.select_related("region", "region__parent", "household").prefetch_related(
        Prefetch(
            "family",
            queryset=FamilyMember.objects.filter(relation__in=[Relation.FATHER, Relation.MOTHER])
            .only("id", "child_id", "relation", "name", "phone")
            .order_by("id"),
            to_attr="parents",
        ),
        Prefetch(
            "entrustments",
            queryset=Entrustment.objects.only(
                "id", "child_id", "carer_name", "carer_relation", "carer_phone", "since", "until"
            ).order_by("-since", "-id"),
            to_attr="carers",
        ),
        Prefetch(
            "categories",
            queryset=ChildCategory.objects.filter(valid_to__isnull=True)
            .only("id", "child_id", "code")
            .order_by("code"),
            to_attr="current_categories",
        ),
    )


def _yes_no(value: bool) -> str:
    return _("是") if value else _("否")


def _display(obj: Any, name: str) -> Any:
    """`obj.get_<name>_display()`, through the labels' per-language memo."""
    return choice_label(type(obj), name, getattr(obj, name))


def ledger_row(child: Child, *, number: int, today: date, unmask: bool) -> list[Any]:
    region = child.region
    town = region.parent.name if region.parent else ""
    parents = {m.relation: m for m in getattr(child, "parents", [])}
    carers = [c for c in getattr(child, "carers", []) if c.until is None or c.until >= today]
    carer = carers[0] if carers else None

    def phone(value: str) -> str:
        return value if unmask or not value else mask_phone(value)

    address = child.household.address if child.household else ""
    father, mother = parents.get(Relation.FATHER), parents.get(Relation.MOTHER)
    return [
        number,
        child.name,
        _display(child, "gender"),
        child.ethnicity,
        child.birth_date,
        child.age_on(today),
        child.id_number if unmask else mask_id_number(child.id_number),
        town,
        region.name,
        address if unmask or not address else mask_address(address),
        _display(child, "hukou_type"),
        _display(child, "school_stage"),
        child.school_name,
        child.grade,
        _yes_no(child.boarding),
        _display(child, "health"),
        _display(child, "disability_type") if child.disability_type else "",
        _display(child, "disability_grade") if child.disability_grade else "",
        child.illness,
        _display(child, "guardianship_type"),
        _display(child, "guardianship_assessment") if child.guardianship_assessment else "",
        _display(child.household, "economic_status") if child.household else "",
        father.name if father else "",
        phone(father.phone) if father else "",
        mother.name if mother else "",
        phone(mother.phone) if mother else "",
        carer.carer_name if carer else "",
        _display(carer, "carer_relation") if carer else "",
        phone(carer.carer_phone) if carer else "",
        "、".join(ALL_CATEGORY_NAMES.get(c.code, c.code) for c in getattr(child, "current_categories", [])),
        _display(child, "status"),
        _display(child, "exit_reason") if child.exit_reason else "",
        child.exit_date,
        child.note,
        child.updated_at,
    ]


@dataclass
class ExportResult:
    kind: str
    rows: int = 0
    unmasked_rows: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def filters_detail(filters: LedgerFilters, query: str) -> dict[str, Any]:
    """What the audit keeps of the filters: the non-empty codes, and only the *kind* of a search."""
    detail = {key: value for key, value in asdict(filters).items() if value and key != "sort"}
    if query:
        detail["search"] = "id_number" if looks_like_id_number(query) else "name"
    return detail


@fewer_collections()  # a row's records and cells, short-lived, by the thousand: see lib.collector
def write_ledger(
    out: IO[bytes],
    *,
    actor: Any,
    filters: LedgerFilters,
    query: str = "",
    unmasked: bool = False,
    now: datetime | None = None,
) -> ExportResult:
    """Write the actor's ledger list to `out` (.xlsx). `unmasked` is what the user asked for; each
    row is unmasked only if the user may unmask that child (UNMASK, the child in their regions)."""
    scope = scope_for(actor)
    may_unmask = unmasked and scope.can(Cap.UNMASK)
    watermark = Watermark.for_actor(actor, now=now)
    today = watermark.at.date()
    result = ExportResult(kind="ledger", detail={"filters": filters_detail(filters, query)})

    workbook = Workbook(write_only=True)
    ws = workbook.create_sheet(_("儿童台账"))
    widths(ws, [width for _heading, width in LEDGER_COLUMNS])
    ws.freeze_panes = "C2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.append(cells(ws, [heading for heading, _width in LEDGER_COLUMNS], font=HEADER_FONT, fill=HEADER_FILL))
    qs = _with_details(ledger_queryset(actor, filters=filters, query=query))
    for child in qs.iterator(chunk_size=CHUNK):
        unmask = may_unmask and scope.covers_region(child.region_id)
        result.rows += 1
        result.unmasked_rows += unmask
        ws.append(cells(ws, ledger_row(child, number=result.rows, today=today, unmask=unmask)))
    ws.auto_filter.ref = f"A1:{get_column_letter(len(LEDGER_COLUMNS))}{result.rows + 1}"
    notes = notes_sheet(
        workbook,
        watermark,
        [
            (_("内容"), _("儿童台账（与页面所见同一名单：同一范围、筛选和检索）")),
            (_("筛选条件"), _describe_filters(filters, query)),
            (_("人数"), result.rows),
            (_("证件号、电话、住址"), _("完整显示") if result.unmasked_rows else _("已脱敏")),
        ],
    )
    watermark.apply(workbook, [ws, notes], title=_("儿童台账"))
    workbook.save(out)
    result.detail["masked"] = result.unmasked_rows == 0
    if result.unmasked_rows:
        result.detail["unmasked_rows"] = result.unmasked_rows
    return result


FILTER_LABELS = {
    "region": gettext_lazy("地区"),
    "status": gettext_lazy("状态"),
    "age_band": gettext_lazy("年龄段"),
    "school_stage": gettext_lazy("就学阶段"),
    "health": gettext_lazy("健康"),
    "guardianship_type": gettext_lazy("监护类型"),
    "gender": gettext_lazy("性别"),
    "category": gettext_lazy("认定类别"),
    "jiangsu": gettext_lazy("江苏分类"),
    "work": gettext_lazy("待处理"),
}


def _value_names() -> dict[str, dict[str, str]]:
    from shouhu.registry.models import Gender, Health

    return {
        "status": {"active": _("在册"), "exited": _("退出"), "all": _("全部")},
        "school_stage": {value: str(label) for value, label in SchoolStage.choices},
        "health": {value: str(label) for value, label in Health.choices},
        "guardianship_type": {value: str(label) for value, label in GuardianshipType.choices},
        "gender": {value: str(label) for value, label in Gender.choices},
        "category": dict(CATEGORY_NAMES),
        "jiangsu": {str(n): _("第%(n)d类") % {"n": n} for n in range(1, 7)},
        "work": {"proposal": _("有待确认的认定建议"), "gap": _("有未落实的待遇")},
    }


def _describe_filters(filters: LedgerFilters, query: str) -> str:
    """The filters in words, for the 说明 sheet: 就学阶段=初中；地区=湖塘镇."""
    from shouhu.org.models import Region

    names = _value_names()
    if filters.region:
        region = Region.objects.filter(code=filters.region.ljust(12, "0")).only("name").first()
        names["region"] = {filters.region: region.name if region else filters.region}
    parts = [
        f"{FILTER_LABELS[key]}={names.get(key, {}).get(value, value)}"
        for key, value in asdict(filters).items()
        if value and key in FILTER_LABELS
    ]
    if query:
        parts.append(_("含检索"))
    return "；".join(parts) or _("无")


# ----- the statistics tables -------------------------------------------------------------------


@dataclass
class Table:
    title: str
    sheet: str
    columns: list[str]
    rows: list[tuple[str, list[int]]]  # (town name or 合计, numbers)


def _stats_children(actor: Any) -> QuerySet[Child]:
    """Active children in the actor's regions (the whole district for a role without regions, as
    on the statistics page): only ever aggregated here, never listed."""
    scope = scope_for(actor)
    condition = Q()
    for prefix in scope.prefixes:
        condition |= Q(region__code__startswith=prefix)
    return Child.objects.filter(condition, status=LedgerStatus.ACTIVE)


def _per_town(qs: QuerySet[Child], towns: list[Any], columns: dict[str, Q]) -> list[tuple[str, list[int]]]:
    aggregates = {f"c{i}": Count("pk", filter=q) for i, q in enumerate(columns.values())}
    found = {
        row["town"]: [row[f"c{i}"] for i in range(len(columns))]
        for row in qs.annotate(town=Substr("region_id", 1, 9)).values("town").annotate(**aggregates)
    }
    rows = [(town.name, found.get(town.code[:9], [0] * len(columns))) for town in towns]
    rows = [(name, [*numbers, sum(numbers)]) for name, numbers in rows]
    rows.append((_("合计"), [sum(r[1][i] for r in rows) for i in range(len(columns) + 1)]))
    return rows


def stats_tables(actor: Any, *, today: date) -> list[Table]:
    from shouhu.org.views import TOWN_COLUMNS, town_counts

    counts = town_counts(actor)
    towns = [row["town"] for row in counts if row["town"] is not None]
    total = _("合计")
    by_category = Table(
        title=_("按镇（街道）、认定类别统计"),
        sheet=_("镇街×类别"),
        columns=[_("在册儿童"), *(str(name) for name in TOWN_COLUMNS.values())],
        rows=[(row["town"].name if row["town"] else total, [row["active"], *row["categories"]]) for row in counts],
    )
    qs = _stats_children(actor)
    bands: dict[str, Q] = {}
    for low, high in AGE_BANDS.values():
        start, end = birth_range_for_age(low, high, today)
        label = _("%(age)d岁") % {"age": low} if low == high else _("%(low)d-%(high)d岁") % {"low": low, "high": high}
        bands[label] = Q(birth_date__gte=start, birth_date__lte=end)
    bands[_("%(age)d岁及以上") % {"age": 18}] = Q(birth_date__lte=birth_range_for_age(18, 18, today)[1])
    stages = {str(label): Q(school_stage=value) for value, label in SchoolStage.choices}
    guardianship = {str(label): Q(guardianship_type=value) for value, label in GuardianshipType.choices}
    return [
        by_category,
        Table(_("按年龄段统计"), _("年龄段"), [*bands, total], _per_town(qs, towns, bands)),
        Table(_("按就学阶段统计"), _("就学阶段"), [*stages, total], _per_town(qs, towns, stages)),
        Table(_("按监护类型统计"), _("监护类型"), [*guardianship, total], _per_town(qs, towns, guardianship)),
    ]


def write_stats(out: IO[bytes], *, actor: Any, now: datetime | None = None) -> ExportResult:
    """The standard statistics tables, one sheet each: numbers only, never a name."""
    watermark = Watermark.for_actor(actor, now=now)
    today = watermark.at.date()
    tables = stats_tables(actor, today=today)
    total = _("合计")
    workbook = Workbook(write_only=True)
    sheets = []
    for table in tables:
        ws = workbook.create_sheet(table.sheet)
        widths(ws, [16, *[max(8, len(c) * 2 + 2) for c in table.columns]])
        ws.freeze_panes = "B4"
        ws.page_setup.orientation = "landscape"
        ws.append(cells(ws, [table.title], font=TITLE_FONT))
        ws.append(
            cells(
                ws,
                [
                    _("统计口径：在册儿童（认定类别为现行有效的认定）；截至 %(date)s；单位：人")
                    % {"date": today.isoformat()}
                ],
            )
        )
        ws.append(cells(ws, [_("镇（街道）"), *table.columns], font=HEADER_FONT, fill=HEADER_FILL))
        for name, numbers in table.rows:
            ws.append(cells(ws, [name, *numbers], font=HEADER_FONT if name == total else None))
        sheets.append(ws)
    sheets.append(
        notes_sheet(
            workbook,
            watermark,
            [(_("内容"), _("统计报表：%(tables)s") % {"tables": "、".join(t.title for t in tables)})],
        )
    )
    watermark.apply(workbook, sheets, title=_("困境儿童统计报表"))
    workbook.save(out)
    return ExportResult(kind="stats", rows=len(tables[0].rows) - 1, detail={"tables": len(tables), "masked": True})


# ----- audited entry points (views and the command) ---------------------------------------------


def export_ledger(
    out: IO[bytes],
    *,
    actor: Any,
    filters: LedgerFilters,
    query: str = "",
    unmasked: bool = False,
    request: HttpRequest | None = None,
    via: str = "web",
) -> ExportResult:
    result = write_ledger(out, actor=actor, filters=filters, query=query, unmasked=unmasked)
    _audit(actor=actor, result=result, request=request, via=via)
    return result


def export_stats(out: IO[bytes], *, actor: Any, request: HttpRequest | None = None, via: str = "web") -> ExportResult:
    result = write_stats(out, actor=actor)
    _audit(actor=actor, result=result, request=request, via=via)
    return result


def _audit(*, actor: Any, result: ExportResult, request: HttpRequest | None, via: str) -> None:
    record(
        actor=actor,
        action=Action.EXPORT,
        object_type="child" if result.kind == "ledger" else "stats",
        request=request,
        detail={"kind": result.kind, "rows": result.rows, "via": via, **result.detail},
    )
