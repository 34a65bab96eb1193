"""The error report of a survey import: the uploaded sheet with its bad cells marked.

`error_report(source=…, filename=…, preview=…)` returns an .xlsx (bytes):

* for an .xlsx upload, the uploaded workbook itself, opened once with openpyxl, each bad cell filled
  light red with a comment holding its Chinese message(s);
* for a .csv or .xls upload (which openpyxl cannot write back), a fresh .xlsx holding the rows of
  the sheet that was read, cell for cell at the same row and column (so "第5行 C列" means the same
  in both), written as a stream and marked the same way;

and in both cases a sheet 错误清单 listing every error (行, 列, 说明), in row order. Errors that
belong to no cell (a column the sheet lacks, a row as a whole) are listed there and noted on the
row's first cell.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill

from shouhu.intake import reader as r
from shouhu.intake.preview import Preview
from shouhu.intake.reader import CellError
from shouhu.lib.workbook import neutralise

ERROR_FILL = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")  # Excel's light red
HEADER_FONT = Font(bold=True)
LIST_SHEET = gettext_lazy("错误清单")
COMMENT_AUTHOR = gettext_lazy("守护")  # the platform, as the author of the comments on bad cells
_ROW_LEVEL = gettext_lazy("本行")  # what a comment on a row's first cell says the message is about


def _comment(messages: list[str]) -> Comment:
    text = "\n".join(messages)
    comment = Comment(text, str(COMMENT_AUTHOR))
    lines = sum(1 + len(line) // 18 for line in messages)
    comment.width, comment.height = 240, min(60 + 18 * lines, 400)
    return comment


def _by_cell(errors: Iterable[CellError]) -> dict[int, dict[str, list[str]]]:
    """row -> column letter -> messages; an error without a cell goes to column A, prefixed."""
    out: dict[int, dict[str, list[str]]] = {}
    for error in errors:
        if error.letter:
            out.setdefault(error.row, {}).setdefault(error.letter, []).append(error.message)
        else:
            what = f"“{error.column}”" if error.column else str(_ROW_LEVEL)
            out.setdefault(error.row, {}).setdefault("A", []).append(f"{what}：{error.message}")
    return out


def _cell_ref(error: CellError) -> str:
    if error.letter and error.column:
        return _("%(letter)s列 %(column)s") % {"letter": error.letter, "column": error.column}
    return error.column or str(_ROW_LEVEL)


def _list_sheet(workbook: Workbook, errors: list[CellError], *, write_only: bool) -> None:
    ws = workbook.create_sheet(_unique_title(workbook, str(LIST_SHEET)))
    header = [_("行"), _("列"), _("说明")]
    if write_only:
        ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 8, 24
        ws.column_dimensions["C"].width = 80
        cells = []
        for value in header:
            cell = WriteOnlyCell(ws, value)
            cell.font = HEADER_FONT
            cells.append(cell)
        ws.append(cells)
    else:
        ws.append(header)
        for cell in ws[1]:
            cell.font = HEADER_FONT
        ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 8, 24
        ws.column_dimensions["C"].width = 80
        ws.freeze_panes = "A2"
    for error in errors:
        ws.append([error.row, neutralise(_cell_ref(error)), neutralise(error.message)])


def _unique_title(workbook: Workbook, title: str) -> str:
    names = set(workbook.sheetnames)
    candidate, n = title, 2
    while candidate in names:
        candidate, n = f"{title}{n}", n + 1
    return candidate


def error_report(*, source: str | os.PathLike[str] | bytes | IO[bytes], filename: str = "", preview: Preview) -> bytes:
    """The uploaded sheet as .xlsx with the preview's bad cells marked, plus the 错误清单 sheet."""
    errors = sorted(preview.errors, key=lambda e: e.row)
    if hasattr(source, "seek"):
        source.seek(0)  # the preview read it already
    if preview.format == "xlsx":
        return _mark_workbook(_open(source), preview.sheet, errors)
    data = r._load(source)  # noqa: SLF001
    if preview.format == "csv":
        rows = r._csv_rows(data)  # noqa: SLF001
    else:
        rows = _xls_rows(data, preview.sheet)
    return _fresh_workbook(rows, preview.sheet, errors)


def _open(source: Any) -> Any:
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(source)
    return load_workbook(source, rich_text=False)


def _mark_workbook(workbook: Any, sheet: str, errors: list[CellError]) -> bytes:
    ws = workbook[sheet] if sheet in workbook.sheetnames else workbook.worksheets[0]
    for row, by_letter in _by_cell(errors).items():
        for letter, messages in by_letter.items():
            cell = ws[f"{letter}{row}"]
            if isinstance(cell, MergedCell):  # mark the merged range's first cell
                for merged in ws.merged_cells.ranges:
                    if cell.coordinate in merged:
                        cell = ws.cell(merged.min_row, merged.min_col)
                        break
            cell.fill = ERROR_FILL
            cell.comment = _comment(messages)
    _list_sheet(workbook, errors, write_only=False)
    workbook.active = workbook.sheetnames.index(ws.title)
    out = io.BytesIO()
    workbook.save(out)
    workbook.close()
    return out.getvalue()


def _xls_rows(data: bytes, sheet: str) -> Iterator[tuple[int, list[Any]]]:
    import python_calamine as pc

    workbook = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    found = workbook.get_sheet_by_name(sheet)
    row0, col0 = found.start or (0, 0)
    return r._sheet_rows(found, row0, col0)  # noqa: SLF001


def _fresh_workbook(rows: Iterable[tuple[int, list[Any]]], sheet: str, errors: list[CellError]) -> bytes:
    workbook = Workbook(write_only=True)
    ws = workbook.create_sheet(title=(sheet or "Sheet1")[:31])
    marks = _by_cell(errors)
    written = 0
    for number, cells in rows:
        while written < number - 1:  # keep the row numbers of the upload
            ws.append([])
            written += 1
        by_letter = marks.pop(number, {})
        width = max(len(cells), *(_index(letter) + 1 for letter in by_letter)) if by_letter else len(cells)
        out = []
        for i in range(width):
            cell = WriteOnlyCell(ws, cells[i] if i < len(cells) else None)
            if cell.data_type == "f":  # a cell of a CSV that begins with "=": the text, never a formula
                cell.data_type = "s"
            messages = by_letter.get(r.column_letter(i))
            if messages:
                cell.fill = ERROR_FILL
                cell.comment = _comment(messages)
            if isinstance(cell.value, str) and "\n" in cell.value:
                cell.alignment = Alignment(wrap_text=True)
            out.append(cell)
        ws.append(out)
        written = number
    _list_sheet(workbook, errors, write_only=True)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _index(letter: str) -> int:
    n = 0
    for ch in letter:
        n = n * 26 + ord(ch) - 64
    return n - 1
