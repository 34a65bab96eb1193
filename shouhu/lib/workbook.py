"""Spreadsheets written for people (the ledger and statistics exports, the joint-meeting tables):
what every such workbook shares — cells that can never be formulas, the confidentiality marking,
and the watermark naming who exported it, from where and when, in each sheet's header and footer
and in the file's properties. The same `Watermark` names the viewer on printed PDFs (lib/pdf.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CONFIDENTIAL = gettext_lazy("内部资料 注意保密")

# ----- cells ---------------------------------------------------------------------------------

# A cell beginning with one of these is read as a formula (or DDE) by Excel, WPS or LibreOffice.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Text safe to put in a cell: no XML-illegal control characters, never a formula.

    A leading `'` makes a spreadsheet show the text as typed instead of evaluating it.
    """
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def _escape_header(value: str) -> str:
    """`&` starts a control code in a page header or footer; a literal one is `&&`."""
    return neutralise(value).replace("&", "&&")


# ----- the watermark ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Watermark:
    username: str
    full_name: str
    organization: str
    at: datetime

    @classmethod
    def for_actor(cls, actor: Any, *, now: datetime | None = None) -> Watermark:
        org = getattr(actor, "organization", None)
        return cls(
            username=actor.get_username(),
            full_name=getattr(actor, "full_name", "") or "",
            organization=org.name if org else "",
            at=timezone.localtime(now or timezone.now()),
        )

    @property
    def when(self) -> str:
        return self.at.strftime("%Y-%m-%d %H:%M")

    @property
    def who(self) -> str:
        return f"{self.full_name}（{self.username}）" if self.full_name else self.username

    def text(self) -> str:
        return _("%(confidential)s · 导出人：%(who)s · 单位：%(organization)s · 导出时间：%(when)s") % {
            "confidential": CONFIDENTIAL,
            "who": self.who,
            "organization": self.organization,
            "when": self.when,
        }

    def apply(self, workbook: Workbook, sheets: Iterable[Any], *, title: str) -> None:
        confidential = str(CONFIDENTIAL)
        for ws in sheets:
            for header in (ws.oddHeader, ws.evenHeader, ws.firstHeader):
                header.left.text = _escape_header(_("导出人：%(who)s") % {"who": self.who[:40]})
                header.center.text = _escape_header(confidential)
                header.right.text = _escape_header(
                    _("单位：%(organization)s") % {"organization": self.organization[:40]}
                )
            for footer in (ws.oddFooter, ws.evenFooter, ws.firstFooter):
                footer.left.text = _escape_header(_("导出时间：%(when)s") % {"when": self.when})
                # Translators: &P and &N are the spreadsheet's codes for the page number and the page count.
                footer.center.text = _("第 &P 页，共 &N 页")
                footer.right.text = _escape_header(f"{confidential} · {self.username[:40]}")
        props = workbook.properties
        props.title = str(title)
        props.subject = confidential
        props.creator = self.username
        props.lastModifiedBy = self.username
        props.description = self.text()
        props.keywords = f"{confidential}; {self.username}; {self.organization}; {self.when}"
        props.category = confidential
        props.created = props.modified = self.at.replace(tzinfo=None)


# ----- writing ---------------------------------------------------------------------------------

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLE_FONT = Font(bold=True, size=14)


def cells(ws: Any, values: Iterable[Any], *, font: Font | None = None, fill: PatternFill | None = None) -> list[Any]:
    row = []
    for value in values:
        if isinstance(value, Promise):  # a lazy translation (a label from a module-level table)
            value = str(value)
        if isinstance(value, str):
            value = neutralise(value)
        cell = WriteOnlyCell(ws, value=value)
        if isinstance(value, datetime):
            cell.value = timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
            cell.number_format = "yyyy-mm-dd hh:mm"
        elif isinstance(value, date):
            cell.number_format = "yyyy-mm-dd"
        if font is not None:
            cell.font = font
        if fill is not None:
            cell.fill = fill
        row.append(cell)
    return row


def widths(ws: Any, widths: Iterable[int]) -> None:
    for index, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(index)].width = width


def notes_sheet(workbook: Workbook, watermark: Watermark, lines: list[tuple[str, Any]]) -> Any:
    ws = workbook.create_sheet(_("说明"))
    widths(ws, [16, 70])
    ws.append(cells(ws, [CONFIDENTIAL], font=TITLE_FONT))
    for label, value in [
        (_("导出人"), watermark.who),
        (_("单位"), watermark.organization),
        (_("导出时间"), watermark.when),
        *lines,
    ]:
        ws.append(cells(ws, [label, value]))
    ws.append(cells(ws, [_("提示"), _("本表含未成年人个人信息，仅限工作使用，不得外传；用毕请删除。")]))
    return ws
