"""The joint-meeting view: how each member unit and each town answered its tasks over a period.

Numbers only, never a child: what the district's joint meeting (联席会议) discusses each quarter.

* **Per member unit**: a task owned by a sub-organisation (a school, a police station, a hospital)
  counts under its member unit (`Organization.member_unit`), with a drill-down per organisation.
  Tasks of town governments and village committees form one row, tasks of organisations outside
  the joint meeting another.
* **Per town**: the child's town for a task about a child; the town's (or village's) own town for
  a task of a town government or village committee without a child.

Definitions, for a task *received* in the period (`created_at` in [start, end], local dates):

* accepted on time: `accepted_at <= due_at`;
* completed on time: state done and `closed_at <= due_at`;
* median hours to accept (`accepted_at - created_at`) and to complete (`closed_at - created_at`,
  done tasks only);
* declined: state declined, with the unit's reason (latest first).

"Overdue now" is every open task past its deadline *today*, whenever it was received: what is
late now is what the meeting must chase.

A fixed number of queries (four), whatever the period or the number of units: the period's task
rows (a handful of columns each), the organisations, the towns, and the regions of town
governments and village committees. Medians are computed in Python over those rows, which is
portable (SQLite has no percentile function) and fast at a district's size (≈ 20,000 tasks a year).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.org.access import Cap, scope_for
from shouhu.org.models import Organization, OrgKind, Region, RegionLevel
from shouhu.tasks.models import OPEN_STATES, Task, TaskKind, TaskState

LOCAL_BODIES = frozenset({OrgKind.TOWN_GOVERNMENT, OrgKind.VILLAGE_COMMITTEE})
LOCAL_KEY = "local"  # the row of town governments and village committees
OTHER_KEY = "other"  # the row of organisations outside the joint meeting
NO_TOWN = ""  # a task with no town (a district-wide organisation's task without a child)
MAX_DAYS = 3 * 366  # the longest custom period


# ----- the period ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str  # "quarter", "year" or "custom"
    start: date
    end: date  # inclusive

    @property
    def quarter(self) -> int:
        return (self.start.month - 1) // 3 + 1

    @property
    def label(self) -> str:
        if self.kind == "quarter":
            return _("%(year)s年第%(quarter)s季度") % {
                "year": self.start.year,
                "quarter": (self.start.month - 1) // 3 + 1,
            }
        if self.kind == "year":
            return _("%(year)s年") % {"year": self.start.year}
        return _("%(start)s 至 %(end)s") % {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def bounds(self) -> tuple[datetime, datetime]:
        """Aware datetimes [from, to) in the current (Asia/Shanghai) time zone."""
        tz = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=tz),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz),
        )

    def as_params(self) -> dict[str, str]:
        if self.kind == "quarter":
            return {"period": "quarter", "year": str(self.start.year), "quarter": str((self.start.month - 1) // 3 + 1)}
        if self.kind == "year":
            return {"period": "year", "year": str(self.start.year)}
        return {"period": "custom", "start": self.start.isoformat(), "end": self.end.isoformat()}


def quarter_of(day: date) -> Period:
    first_month = (day.month - 1) // 3 * 3 + 1
    start = date(day.year, first_month, 1)
    end = date(day.year + 1, 1, 1) if first_month == 10 else date(day.year, first_month + 3, 1)
    return Period("quarter", start, end - timedelta(days=1))


def period_from(params: Any, *, today: date) -> Period:
    """The period asked for in the query string; this quarter when absent or not understood."""
    kind = params.get("period", "quarter")
    try:
        if kind == "year":
            year = int(params.get("year") or today.year)
            if 2000 <= year <= 2100:
                return Period("year", date(year, 1, 1), date(year, 12, 31))
        elif kind == "quarter" and params.get("year"):
            year, quarter = int(params["year"]), int(params.get("quarter") or 1)
            if 2000 <= year <= 2100 and 1 <= quarter <= 4:
                return quarter_of(date(year, quarter * 3, 1))
        elif kind == "custom":
            start, end = date.fromisoformat(params.get("start", "")), date.fromisoformat(params.get("end", ""))
            if start <= end and (end - start).days <= MAX_DAYS:
                return Period("custom", start, end)
    except (TypeError, ValueError):
        pass
    return quarter_of(today)


# ----- the numbers --------------------------------------------------------------------------------


@dataclass
class Figures:
    """One row of a table: a unit, a sub-organisation or a town."""

    key: str
    name: str
    received: int = 0
    accepted_on_time: int = 0
    completed_on_time: int = 0
    completed: int = 0
    declined: int = 0
    escalated: int = 0  # received in the period and escalated for lateness (now or earlier)
    overdue_now: int = 0
    accept_hours: list[float] = field(default_factory=list, repr=False)
    complete_hours: list[float] = field(default_factory=list, repr=False)
    children: list[Figures] = field(default_factory=list)  # drill-down (sub-organisations)
    decline_list: list[Decline] = field(default_factory=list)  # latest first; only for who may read reasons

    @property
    def median_accept_hours(self) -> float | None:
        return round(statistics.median(self.accept_hours), 1) if self.accept_hours else None

    @property
    def median_complete_hours(self) -> float | None:
        return round(statistics.median(self.complete_hours), 1) if self.complete_hours else None

    @property
    def accept_share(self) -> int | None:
        """Accepted on time, in percent of the tasks received."""
        return round(100 * self.accepted_on_time / self.received) if self.received else None

    @property
    def complete_share(self) -> int | None:
        """Completed on time, in percent of the tasks received."""
        return round(100 * self.completed_on_time / self.received) if self.received else None

    def add(self, row: TaskRow) -> None:
        if row.overdue:
            self.overdue_now += 1
        if not row.in_period:
            return
        self.received += 1
        if row.accept_hours is not None:
            self.accept_hours.append(row.accept_hours)
            if row.accepted_on_time:
                self.accepted_on_time += 1
        if row.complete_hours is not None:
            self.completed += 1
            self.complete_hours.append(row.complete_hours)
            if row.completed_on_time:
                self.completed_on_time += 1
        if row.state == TaskState.DECLINED:
            self.declined += 1
        if row.escalated:
            self.escalated += 1


@dataclass(frozen=True)
class TaskRow:
    """One task as the meeting counts it: the durations and the on-time and overdue flags are
    computed by the database (parsing five timestamps a row cost more than the rest together)."""

    owner_id: int
    kind: str
    state: str
    child_region: str | None
    need_type: str | None
    decline_reason: str
    in_period: bool
    overdue: bool
    accept_hours: float | None  # received → accepted, when accepted
    accepted_on_time: bool | None
    complete_hours: float | None  # received → completed, when done
    completed_on_time: bool | None
    declined_at: datetime | None
    escalated: bool


@dataclass(frozen=True)
class Decline:
    at: datetime | None
    organization: str
    kind: str
    need_type: str
    reason: str


@dataclass
class Meeting:
    period: Period
    now: datetime
    units: list[Figures]
    towns: list[Figures]
    total: Figures
    declines: dict[str, list[Decline]]  # unit key -> declines, latest first (empty without reasons)
    show_reasons: bool
    whole_district: bool


class Hours(Func):
    """Hours from `start` to `end` (two timestamps) as a float, computed by the database."""

    output_field = FloatField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, list[Any]]:
        # Func.as_sql's signature; this SQL is written out whole, without a function or a template.
        (end, end_params), (start, start_params) = (compiler.compile(e) for e in self.source_expressions)
        if connection.vendor == "postgresql":
            sql = f"(EXTRACT(EPOCH FROM ({end} - {start}))::float8 / 3600.0)"
        else:  # SQLite keeps timestamps as ISO text
            sql = f"((julianday({end}) - julianday({start})) * 24.0)"
        return sql, [*end_params, *start_params]


def _flag(q: Q) -> ExpressionWrapper:
    return ExpressionWrapper(q, output_field=BooleanField())


def task_rows(*, start: datetime, end: datetime, now: datetime) -> Iterable[TaskRow]:
    """The tasks received in [start, end) and those open and overdue now: one query."""
    in_period = Q(created_at__gte=start, created_at__lt=end)
    overdue = Q(state__in=OPEN_STATES, due_at__lt=now)
    done = Q(state=TaskState.DONE, closed_at__isnull=False)
    qs = (
        Task.objects.filter(in_period | overdue)
        .order_by()
        .annotate(
            m_in_period=_flag(in_period),
            m_overdue=_flag(overdue),
            m_accept=Case(
                When(accepted_at__isnull=False, then=Hours(F("accepted_at"), F("created_at"))),
                output_field=FloatField(),
            ),
            m_accept_on_time=_flag(Q(accepted_at__isnull=False, accepted_at__lte=F("due_at"))),
            m_complete=Case(When(done, then=Hours(F("closed_at"), F("created_at"))), output_field=FloatField()),
            m_complete_on_time=_flag(done & Q(closed_at__lte=F("due_at"))),
            m_declined_at=Case(When(state=TaskState.DECLINED, then=F("closed_at")), output_field=DateTimeField()),
            m_escalated=_flag(Q(escalated_at__isnull=False)),
        )
        .values_list(
            "owner_id",
            "kind",
            "state",
            "child__region_id",
            "need_type__name",
            "decline_reason",
            "m_in_period",
            "m_overdue",
            "m_accept",
            "m_accept_on_time",
            "m_complete",
            "m_complete_on_time",
            "m_declined_at",
            "m_escalated",
        )
    )
    for values in qs.iterator(chunk_size=5000):
        yield TaskRow(*values)


def _org_towns() -> dict[int, str]:
    """A town government's or village committee's town (9-digit code prefix): one query."""
    through = Organization.regions.through
    towns: dict[int, str] = {}
    for org_id, code in (
        through.objects.filter(organization__kind__in=LOCAL_BODIES)
        .order_by("organization_id", "region_id")
        .values_list("organization_id", "region_id")
    ):
        towns.setdefault(org_id, code[:9])
    return towns


def meeting_for(actor: Any, *, period: Period, now: datetime | None = None) -> Meeting:
    """The joint-meeting tables for the actor: the whole district for the district office and
    leaders; a town supervisor sees only the tasks of their own town."""
    now = now or timezone.now()
    scope = scope_for(actor)
    whole_district = not scope.prefixes or any(len(p) <= 6 for p in scope.prefixes)
    start, end = period.bounds()

    orgs = {o.pk: o for o in Organization.objects.only("id", "name", "kind", "parent_id", "is_active")}
    towns = [
        t
        for t in Region.objects.filter(level=RegionLevel.TOWN).order_by("code").only("code", "name")
        if whole_district or scope.covers_region(t.code[:9])
    ]
    org_towns = _org_towns()

    units_of: dict[int, Organization | None] = {}

    def member_unit_of(org_id: int) -> Organization | None:
        if org_id not in units_of:
            units_of[org_id] = _member_unit(org_id)
        return units_of[org_id]

    def _member_unit(org_id: int) -> Organization | None:
        seen: set[int] = set()
        org = orgs.get(org_id)
        while org is not None and org.pk not in seen:
            if org.kind == OrgKind.MEMBER_UNIT:
                return org
            seen.add(org.pk)
            org = orgs.get(org.parent_id) if org.parent_id else None
        return None

    unit_rows: dict[str, Figures] = {}
    for org in sorted(
        (o for o in orgs.values() if o.kind == OrgKind.MEMBER_UNIT and o.is_active), key=lambda o: o.name
    ):
        unit_rows[str(org.pk)] = Figures(key=str(org.pk), name=org.name)
    unit_rows[LOCAL_KEY] = Figures(key=LOCAL_KEY, name=_("镇（街道）、村（社区）"))
    unit_rows[OTHER_KEY] = Figures(key=OTHER_KEY, name=_("其他承办单位"))
    sub_rows: dict[str, dict[int, Figures]] = defaultdict(dict)
    town_rows = {t.code[:9]: Figures(key=t.code[:9], name=t.name) for t in towns}
    no_town = Figures(key=NO_TOWN, name=_("区级（不涉及具体镇街）"))
    total = Figures(key="total", name=_("合计"))
    declines: dict[str, list[Decline]] = defaultdict(list)
    kind_names = dict(TaskKind.choices)

    for row in task_rows(start=start, end=end, now=now):
        town = row.child_region[:9] if row.child_region else org_towns.get(row.owner_id, NO_TOWN)
        if not whole_district and not (town and scope.covers_region(town)):
            continue
        owner = orgs.get(row.owner_id)
        unit = member_unit_of(row.owner_id)
        if unit is not None:
            key = str(unit.pk)
        elif owner is not None and owner.kind in LOCAL_BODIES:
            key = LOCAL_KEY
        else:
            key = OTHER_KEY
        figures = unit_rows.setdefault(key, Figures(key=key, name=unit.name if unit else key))
        figures.add(row)
        if key not in (LOCAL_KEY, OTHER_KEY):
            sub = sub_rows[key].get(row.owner_id)
            if sub is None:
                name = owner.name if owner else "?"
                sub = sub_rows[key][row.owner_id] = Figures(key=str(row.owner_id), name=name)
            sub.add(row)
        town_rows.get(town, no_town).add(row)
        total.add(row)
        if row.in_period and row.state == TaskState.DECLINED:
            declines[key].append(
                Decline(
                    at=row.declined_at,
                    organization=owner.name if owner else "",
                    kind=str(kind_names.get(row.kind, row.kind)),
                    need_type=row.need_type or "",
                    reason=row.decline_reason,
                )
            )

    for key, subs in sub_rows.items():
        unit_rows[key].children = sorted(subs.values(), key=lambda f: (f.key != key, f.name))
    show_reasons = scope.can(Cap.LEDGER_VIEW)  # leaders: numbers only
    ordered = {key: sorted(items, key=lambda d: d.at or now, reverse=True) for key, items in declines.items()}
    if show_reasons:
        for key, items in ordered.items():
            unit_rows[key].decline_list = items
    units = [f for f in unit_rows.values() if f.received or f.overdue_now or f.key not in (LOCAL_KEY, OTHER_KEY)]
    town_list = list(town_rows.values())
    if no_town.received or no_town.overdue_now:
        town_list.append(no_town)
    return Meeting(
        period=period,
        now=now,
        units=units,
        towns=town_list,
        total=total,
        declines=ordered if show_reasons else {},
        show_reasons=show_reasons,
        whole_district=whole_district,
    )


# ----- the chart ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    y: int
    width: int
    label: str
    text_x: int


@dataclass(frozen=True)
class ChartRow:
    name: str
    y: int
    text_y: int
    accept: Bar
    complete: Bar


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart drawn as server-side SVG (no script, no style attribute: CSP)."""

    width: int
    height: int
    label_width: int
    bar_width: int
    rows: list[ChartRow]
    ticks: list[tuple[int, int]]  # (x, percent)


def chart_for(figures: list[Figures], *, label_width: int = 190, bar_width: int = 420, row_height: int = 34) -> Chart:
    """Two bars per unit with tasks: accepted on time and completed on time, in percent."""
    rows = []
    y = 24
    for f in figures:
        if not f.received:
            continue
        bars = []
        for offset, share in ((0, f.accept_share or 0), (13, f.complete_share or 0)):
            width = round(bar_width * share / 100)
            bars.append(Bar(y=y + offset, width=width, label=f"{share}%", text_x=label_width + width + 4))
        rows.append(ChartRow(name=f.name[:14], y=y, text_y=y + 16, accept=bars[0], complete=bars[1]))
        y += row_height
    ticks = [(label_width + round(bar_width * p / 100), p) for p in (0, 25, 50, 75, 100)]
    return Chart(
        width=label_width + bar_width + 50,
        height=y + 6,
        label_width=label_width,
        bar_width=bar_width,
        rows=rows,
        ticks=ticks,
    )


# ----- the spreadsheet ----------------------------------------------------------------------------


def figure_headers() -> list[str]:
    """The headings of the figures' columns, in the order of `figure_values`."""
    return [
        _("收到任务"),
        _("按时接收"),
        _("按时接收率(%)"),
        _("按时办结"),
        _("按时办结率(%)"),
        _("已办结"),
        _("退回"),
        _("超时升级督办"),
        _("当前逾期"),
        _("接收用时中位数(小时)"),
        _("办结用时中位数(小时)"),
    ]


def figure_values(f: Figures) -> list[Any]:
    return [
        f.received,
        f.accepted_on_time,
        f.accept_share,
        f.completed_on_time,
        f.complete_share,
        f.completed,
        f.declined,
        f.escalated,
        f.overdue_now,
        f.median_accept_hours,
        f.median_complete_hours,
    ]


def write_meeting(out: Any, *, actor: Any, period: Period, now: datetime | None = None) -> dict[str, Any]:
    """The joint-meeting tables as a watermarked workbook; returns the audit detail (no personal data)."""
    from openpyxl import Workbook

    from shouhu.lib.workbook import HEADER_FILL, HEADER_FONT, TITLE_FONT, Watermark, cells, notes_sheet, widths

    watermark = Watermark.for_actor(actor, now=now)
    meeting = meeting_for(actor, period=period, now=now)
    workbook = Workbook(write_only=True)
    sheets = []
    caption = _(
        "统计期间：%(start)s 至 %(end)s（按任务创建时间）；当前逾期为截至 %(now)s 仍未办结且已过期限的任务（不限期间）"
    ) % {"start": period.start.isoformat(), "end": period.end.isoformat(), "now": watermark.when}
    headers = figure_headers()
    for sheet, title, first, rows, drill in (
        (_("按成员单位"), _("联席会议成员单位任务办理情况"), _("成员单位"), meeting.units, True),
        (_("按镇街"), _("各镇（街道）任务办理情况"), _("镇（街道）"), meeting.towns, False),
    ):
        ws = workbook.create_sheet(sheet)
        widths(ws, [30, *[max(10, len(h) * 2) for h in headers]])
        ws.freeze_panes = "B4"
        ws.page_setup.orientation = "landscape"
        ws.append(cells(ws, [title], font=TITLE_FONT))
        ws.append(cells(ws, [caption]))
        ws.append(cells(ws, [first, *headers], font=HEADER_FONT, fill=HEADER_FILL))
        for f in rows:
            ws.append(cells(ws, [f.name, *figure_values(f)], font=HEADER_FONT if drill and f.children else None))
            if drill:
                for sub in f.children:
                    ws.append(cells(ws, [f"　└ {sub.name}", *figure_values(sub)]))
        ws.append(cells(ws, [_("合计"), *figure_values(meeting.total)], font=HEADER_FONT))
        sheets.append(ws)
    declines = 0
    if meeting.show_reasons:
        ws = workbook.create_sheet(_("退回情况"))
        widths(ws, [24, 17, 28, 12, 14, 60])
        ws.append(
            cells(
                ws,
                [_("成员单位"), _("退回时间"), _("承办单位"), _("类型"), _("需求类型"), _("退回理由")],
                font=HEADER_FONT,
                fill=HEADER_FILL,
            )
        )
        for unit in meeting.units:
            for d in meeting.declines.get(unit.key, []):
                ws.append(cells(ws, [unit.name, d.at, d.organization, d.kind, d.need_type, d.reason]))
                declines += 1
        sheets.append(ws)
    sheets.append(
        notes_sheet(
            workbook,
            watermark,
            [
                (_("内容"), _("联席会议任务办理情况：按成员单位（含下属单位）、按镇（街道）；不含儿童个人信息")),
                (_("统计期间"), period.label),
                (
                    _("口径"),
                    _(
                        "按时接收：接收时间不晚于办理期限；按时办结：已办结且办结时间不晚于办理期限；"
                        "比率以期间内收到的任务数为分母；超时升级督办：期间内收到、因超过办理期限未办结而升级督办的任务；"
                        "下属单位（学校、派出所、医疗机构等）计入其成员单位"
                    ),
                ),
            ],
        )
    )
    watermark.apply(workbook, sheets, title=_("联席会议任务办理情况"))
    workbook.save(out)
    return {
        "kind": "meeting",
        "period": period.as_params(),
        "rows": meeting.total.received,
        "units": len(meeting.units),
        "towns": len(meeting.towns),
        "declines": declines,
    }
