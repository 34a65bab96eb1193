"""Reading survey sheets (摸底排查表) and validating their rows through the ledger's forms.

Two steps, both streaming:

* `read_rows(path_or_bytes, filename)` opens an .xlsx, .xls or .csv file, finds the header row
  (anywhere in the first 10 rows, also under a title row or as a two-row merged header), matches
  the columns by name (shouhu.intake.columns) and yields one `RawRow` per non-empty row. Anything
  wrong with the file as a whole raises `SurveyFileError` with a Chinese message.
* `RowValidator(actor).validate(raw_row)` (or `validate_row(raw_row, actor)`) normalises the cells,
  resolves the village within the importer's scope, maps the coded values and validates through
  the registry's forms (ChildForm, HouseholdForm, FamilyMemberForm + SituationForm,
  EntrustmentForm), so the messages are the pages' own. It returns a `RowResult`: either the
  cleaned data ready for `shouhu.registry.services.child_create(**result.create_kwargs(), actor=…)`,
  or the errors by row and column. A validator remembers the ID numbers it has seen, so a second
  row with the same ID in one file is flagged.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import unicodedata
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from shouhu.intake import columns as cols
from shouhu.intake.columns import Kind
from shouhu.intake.dates import parse_date

MAX_FILE_BYTES = 100 * 1024 * 1024  # what is read at all
MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024  # all members of an .xlsx together, once unpacked
MAX_COMPRESSION_RATIO = 200  # a real sheet packs 5-20 to 1; a zip bomb 1000 to 1
MAX_ROWS = 200_000
HEADER_SEARCH_ROWS = 10

_REGION_KEYS = frozenset({"region", "region_code"})
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")


# Called as progress(rows_done, rows_estimate) every few hundred rows by the preview and the commit.
Progress = Callable[[int, int], None]


class SurveyFileError(Exception):
    """The file as a whole cannot be read; `message` says why, in Chinese."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SourceColumn:
    index: int  # 0-based column in the sheet
    header: str  # as written in the file (two-row headers joined with "/")
    key: str | None  # the canonical column key, None when unknown
    letter: str  # A, B, … AA

    def name(self) -> str:
        """The column as a message names it: C列“联系电话”."""
        return _("%(letter)s列“%(header)s”") % {"letter": self.letter, "header": self.header}


@dataclass
class Header:
    sheet: str
    row: int  # 1-based row number of the (last) header row
    columns: list[SourceColumn]
    by_key: dict[str, SourceColumn]
    unknown: list[SourceColumn]  # columns not recognised: reported, ignored
    duplicates: list[SourceColumn]  # a second column for a key already matched: ignored

    def header_of(self, key: str) -> str:
        column = self.by_key.get(key)
        return column.header if column else cols.BY_KEY[key].header if key in cols.BY_KEY else ""

    @property
    def missing(self) -> list[str]:
        """Headers of columns every row needs but the sheet lacks (each row will say so too)."""
        out = [cols.BY_KEY[k].header for k in ("school_stage",) if k not in self.by_key]
        if "region" not in self.by_key and "region_code" not in self.by_key:
            out.append(cols.BY_KEY["region"].header)
        return out

    def warnings(self) -> list[str]:
        """Chinese notices about the header: unknown, duplicate and missing columns."""
        out = []
        if self.missing:
            out.append(_("表中没有以下列：%(c)s。") % {"c": "、".join(f"“{h}”" for h in self.missing)})
        if self.unknown:
            out.append(_("以下列无法识别，已忽略：%(c)s。") % {"c": "、".join(c.name() for c in self.unknown)})
        if self.duplicates:
            out.append(_("以下列与前面的列重复，已忽略：%(c)s。") % {"c": "、".join(c.name() for c in self.duplicates)})
        return out


@dataclass
class RawRow:
    row: int  # 1-based row number in the sheet, as Excel shows it
    values: dict[
        str, Any
    ]  # column key -> the cell as read (str, float, int, bool, date, datetime; "" or None when empty)
    header: Header = field(repr=False)
    # Set by `RowValidator.prefetch(mark_duplicates=True)` (a pipelined import marks the rows in file
    # order before they are validated elsewhere): the first row with this row's ID number, when this one repeats it.
    duplicate_of: int | None = None


# -- reading ---------------------------------------------------------------------------------------------------


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class SurveyReader(Iterator[RawRow]):
    """An iterator of the rows of one survey file; `header` is known once it is constructed."""

    def __init__(self, source: str | os.PathLike[str] | bytes | IO[bytes], filename: str = "") -> None:
        if not filename:
            filename = str(source) if isinstance(source, str | os.PathLike) else str(getattr(source, "name", "") or "")
        self.filename = filename
        self._data = _load(source)
        self.format = _detect_format(self._data, self.filename)
        self.rows_read = 0
        if self.format == "csv":
            self._grid, self.sheet = _csv_rows(self._data), "CSV"
            self.header, self._pending = _find_header(self._grid, self.sheet, 0)
            lines = self._data.count(b"\n") + 1
            self._height: Callable[[], int] = lambda: lines
        else:
            self.header, self._grid, self._pending, self.sheet, self._height = _open_workbook(self._data, self.format)
        self._it = self._rows()

    @property
    def total_estimate(self) -> int:
        """Rows below the header, blank ones included: the denominator of a progress bar, not a count."""
        return max(self._height() - self.header.row, 0)

    def __iter__(self) -> SurveyReader:
        return self

    def __next__(self) -> RawRow:
        return next(self._it)

    def _rows(self) -> Iterator[RawRow]:
        header = self.header
        keyed = [(c.index, c.key) for c in header.columns if c.key and c not in header.duplicates]
        for row_number, cells in _chain(self._pending, self._grid):
            values: dict[str, Any] = {}
            empty = True
            for index, key in keyed:
                value = cells[index] if index < len(cells) else None
                if isinstance(value, str):
                    if value.strip():
                        empty = False
                elif value is not None:
                    empty = False
                values[key] = value
            if empty or all(_blank(v) for k, v in values.items() if k not in _REGION_KEYS):
                continue  # nothing, or only the village the template pre-fills
            self.rows_read += 1
            if self.rows_read > MAX_ROWS:
                raise SurveyFileError(_too_many_rows())
            yield RawRow(row=row_number, values=values, header=header)


def read_rows(source: str | os.PathLike[str] | bytes | IO[bytes], filename: str = "") -> SurveyReader:
    """Open a survey file; iterate the result for its rows. Raises SurveyFileError (Chinese message)."""
    return SurveyReader(source, filename)


def _chain(*parts: Iterable[tuple[int, list[Any]]]) -> Iterator[tuple[int, list[Any]]]:
    for part in parts:
        yield from part


def _load(source: Any) -> bytes:
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        elif isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SurveyFileError(_too_big())
            data = path.read_bytes()
        else:
            data = source.read(MAX_FILE_BYTES + 1)
    except OSError:
        raise SurveyFileError(_("无法读取上传的文件，请重新上传。")) from None
    if len(data) > MAX_FILE_BYTES:
        raise SurveyFileError(_too_big())
    if not data.strip():
        raise SurveyFileError(_("文件是空的。"))
    return data


def _too_big() -> str:
    return _("文件超过%(n)d MB，请拆分成几个文件分别导入。") % {"n": MAX_FILE_BYTES // (1024 * 1024)}


def _not_a_sheet() -> str:
    return _(
        "文件不是有效的Excel表格或CSV文件（可能是其他类型的文件改了扩展名），请在Excel中打开后另存为 .xlsx 再上传。"
    )


def _detect_format(data: bytes, filename: str) -> str:
    ext = Path(filename).suffix.lower()
    if ext not in {".xlsx", ".xlsm", ".xls", ".et", ".csv", ".txt", ""}:
        raise SurveyFileError(_("不支持“%(e)s”文件：请上传 .xlsx、.xls 或 .csv 文件。") % {"e": ext})
    if data.startswith(_ZIP):
        _check_zip(data)
        return "xlsx"
    if data.startswith(_OLE2):
        return "xls"  # or an encrypted .xlsx, which is an OLE2 file too: told apart on opening
    if ext in {".xlsx", ".xlsm", ".xls", ".et"} and not _looks_like_text(data):
        raise SurveyFileError(_not_a_sheet())
    if not _looks_like_text(data):
        raise SurveyFileError(_not_a_sheet())
    return "csv"


def _encrypted() -> str:
    return _(
        "文件设置了打开密码，无法读取：请在Excel中打开，通过“文件—信息—保护工作簿—用密码进行加密”清除密码后另存再上传。"
    )


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    return b"\x00" not in head


def _check_zip(data: bytes) -> None:
    """An .xlsx is a zip: refuse one that is not a workbook, or that unpacks to more than the limit
    (declared sizes first, then the bytes actually inflated, since a header can lie)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception:  # noqa: BLE001 - BadZipFile, NotImplementedError (a "zip version 14.1"), …
        raise SurveyFileError(_not_a_sheet()) from None
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        raise SurveyFileError(_not_a_sheet())
    if "xl/workbook.bin" in names:
        raise SurveyFileError(_("不支持 .xlsb 格式：请在Excel中另存为 .xlsx 再上传。"))
    declared = sum(i.file_size for i in infos)
    if declared > MAX_UNCOMPRESSED_BYTES or any(_bomb_ratio(i.file_size, i.compress_size) for i in infos):
        raise SurveyFileError(_bomb())
    total = 0
    try:
        for info in infos:
            inflated = 0
            with archive.open(info) as member:
                while chunk := member.read(1 << 20):
                    inflated += len(chunk)
                    total += len(chunk)
                    if total > MAX_UNCOMPRESSED_BYTES or _bomb_ratio(inflated, info.compress_size):
                        raise SurveyFileError(_bomb())
    except SurveyFileError:
        raise
    except Exception:  # noqa: BLE001 - BadZipFile, zlib.error (a damaged member), RuntimeError (a zip password) …
        raise SurveyFileError(_not_a_sheet()) from None


def _bomb_ratio(size: int, compressed: int) -> bool:
    return size > 10 * 1024 * 1024 and size > MAX_COMPRESSION_RATIO * max(compressed, 1)


def _bomb() -> str:
    return _(
        "文件解压后过大（超过%(n)d MB）或压缩比异常，疑似恶意文件，已拒绝读取。如确为正常表格，请拆分后再上传。"
    ) % {"n": MAX_UNCOMPRESSED_BYTES // (1024 * 1024)}


def _open_workbook(
    data: bytes, fmt: str
) -> tuple[Header, Iterator[tuple[int, list[Any]]], list[tuple[int, list[Any]]], str, Callable[[], int]]:
    """The header of the first visible sheet that has one, the rows after it, and a function giving
    the rows the sheet has, roughly (the progress bar's denominator). An .xlsx is streamed
    (shouhu.intake.xlsx: the sheet is never held whole); an .xls, at most 65,536 rows by its
    format, is read by python-calamine."""
    if fmt == "xlsx":
        return _open_xlsx(data)
    import python_calamine as pc

    try:
        workbook = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except pc.PasswordError:
        raise SurveyFileError(_encrypted()) from None
    except Exception:  # noqa: BLE001 - calamine raises several kinds for a damaged file
        if data.startswith(_OLE2) and _ENCRYPTED_STREAM in data:
            raise SurveyFileError(_encrypted()) from None
        raise SurveyFileError(_not_a_sheet()) from None
    first_error: SurveyFileError | None = None
    try:
        metas = workbook.sheets_metadata
        names = [
            meta.name
            for meta in metas
            if str(meta.visible).endswith("Visible") and "worksheet" in str(meta.typ).lower()
        ]
        names = names or list(workbook.sheet_names)
        for name in names:
            try:
                sheet = workbook.get_sheet_by_name(name)
            except Exception:  # noqa: BLE001
                continue
            if sheet.height == 0:
                continue
            if sheet.height - HEADER_SEARCH_ROWS > MAX_ROWS * 1.05:
                raise SurveyFileError(_too_many_rows())
            row0, col0 = sheet.start or (0, 0)
            grid = _sheet_rows(sheet, row0, col0)
            try:
                header, pending = _find_header(grid, name, 0)
            except SurveyFileError as exc:
                first_error = first_error or exc
                continue
            return header, grid, pending, name, lambda height=sheet.height: height
    except SurveyFileError:
        raise
    except Exception:  # noqa: BLE001
        raise SurveyFileError(_not_a_sheet()) from None
    raise first_error or SurveyFileError(_("文件中没有内容。"))


def _too_many_rows() -> str:
    return _("文件超过%(n)d行，请拆分成几个文件分别导入。") % {"n": MAX_ROWS}


def _open_xlsx(
    data: bytes,
) -> tuple[Header, Iterator[tuple[int, list[Any]]], list[tuple[int, list[Any]]], str, Callable[[], int]]:
    from shouhu.intake import xlsx

    try:
        workbook = xlsx.Workbook(data)
    except xlsx.XlsxError:
        raise SurveyFileError(_not_a_sheet()) from None
    sheets = [s for s in workbook.sheets if s.visible and s.worksheet] or [s for s in workbook.sheets if s.worksheet]
    first_error: SurveyFileError | None = None
    try:
        for sheet in sheets:
            declared = workbook.dimension(sheet)
            if declared is not None and declared - HEADER_SEARCH_ROWS > MAX_ROWS * 1.05:
                raise SurveyFileError(_too_many_rows())
            read = [0, 0]  # XML bytes parsed, last row number parsed
            grid = _damaged_is_unreadable(workbook.rows(sheet, progress=read))
            first = next(grid, None)
            if first is None:
                continue  # an empty sheet
            try:
                # itertools.chain: a generator chaining them would close `grid` when dropped.
                header, pending = _find_header(itertools.chain([first], grid), sheet.name, 0)
            except SurveyFileError as exc:
                first_error = first_error or exc
                continue
            size = workbook.member_size(sheet)

            def height(declared: int | None = declared, read: list[int] = read, size: int = size) -> int:
                # The declared used range, or the rows seen so far scaled by the XML bytes not yet parsed.
                if declared:
                    return declared
                return round(read[1] * size / read[0]) if read[0] else 0

            return header, grid, pending, sheet.name, height
    except SurveyFileError:
        raise
    except Exception:  # noqa: BLE001 - a damaged member (zlib, XML) reads as "not a sheet"
        raise SurveyFileError(_not_a_sheet()) from None
    raise first_error or SurveyFileError(_("文件中没有内容。"))


def _damaged_is_unreadable(rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, list[Any]]]:
    """The rows; a damaged sheet met halfway through the file is a file that cannot be read
    (SurveyFileError), as it is when opening it."""
    from shouhu.intake import xlsx

    try:
        yield from rows
    except (xlsx.XlsxError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise SurveyFileError(_not_a_sheet()) from exc


def _sheet_rows(sheet: Any, row0: int, col0: int) -> Iterator[tuple[int, list[Any]]]:
    """Rows numbered as Excel shows them, padded to column A. python-calamine yields the rows from
    row 1 (empty ones above the used range included) but the columns from the used range's first."""
    pad = [None] * col0
    rows = iter(sheet.iter_rows())
    first = next(rows, None)
    if first is None:
        return
    # Older versions yield from the used range's first row, which is never all empty.
    offset = 0 if row0 == 0 or all(_blank(v) for v in first) else row0
    for i, cells in enumerate(_chain([first], rows)):
        yield offset + i + 1, pad + list(cells) if col0 else list(cells)


def _csv_encoding(data: bytes) -> tuple[str, int]:
    """The CSV's encoding and the length of its byte-order mark. The whole file is checked to
    decode, a chunk at a time, without keeping the text."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom) and _decodes(data, len(bom), encoding):
            return encoding, len(bom)
    for encoding in ("utf-8", "gb18030"):
        if _decodes(data, 0, encoding):
            return encoding, 0
    raise SurveyFileError(_("无法识别CSV文件的编码：请在Excel中另存为“CSV UTF-8（逗号分隔）”或 .xlsx 后再上传。"))


def _decodes(data: bytes, start: int, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(data)
    try:
        for offset in range(start, len(data), 1 << 20):
            decoder.decode(view[offset : offset + (1 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[Any]]]:
    """The CSV's rows, decoded as they are read (the text of the whole file is never held)."""
    encoding, skip = _csv_encoding(data)
    sample = data[skip : skip + 8192].decode(encoding, errors="ignore")
    delimiter = ","
    first_lines = sample.splitlines()[:HEADER_SEARCH_ROWS]
    counts = {d: sum(line.count(d) for line in first_lines) for d in (",", "\t", ";")}
    if counts[","] == 0:
        delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    # A cell may be long (a note pasted from a report): the csv module's default 128 KB per field
    # would call a valid file malformed. The file's own size is already bounded (MAX_FILE_BYTES).
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES))
    buffer = io.BytesIO(data)
    buffer.seek(skip)
    text = io.TextIOWrapper(buffer, encoding=encoding, newline="")
    try:
        yield from enumerate(csv.reader(text, delimiter=delimiter), start=1)
    except csv.Error:
        raise SurveyFileError(_("CSV文件格式有误（引号不成对等），请在Excel中打开后另存为 .xlsx 再上传。")) from None


# -- the header --------------------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def _match(name: str, group: str = "") -> str | None:
    key = cols.header_key(name)
    if not key:
        return None
    if group:
        person = _person_group(group)
        for candidate in (cols.header_key(group) + key, *((person + key,) if person else ())):
            if candidate in cols.HEADER_INDEX:
                return cols.HEADER_INDEX[candidate]
        if person:
            return None  # 父亲/姓名 is the father's name or nothing: never the child's
    return cols.HEADER_INDEX.get(key)


def _person_group(group: str) -> str:
    key = cols.header_key(group)
    for suffix in cols.GROUP_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)]
            break
    return cols.PERSON_GROUPS.get(key, "")


def _header_from(cells: list[Any], above: list[Any] | None) -> list[tuple[str, str | None]]:
    """(header text, key) per column; with `above`, a two-row header whose top cells group columns."""
    out: list[tuple[str, str | None]] = []
    group = ""
    width = max(len(cells), len(above or []))
    for i in range(width):
        bottom = _cell_text(cells[i]) if i < len(cells) else ""
        if above is None:
            out.append((bottom, _match(bottom)))
            continue
        top = _cell_text(above[i]) if i < len(above) else ""
        if top and bottom:
            group = top
        elif top:
            group = ""  # a cell merged down over both rows: the header is the top cell
        if bottom and group:
            out.append((f"{group}/{bottom}", _match(bottom, group)))
        elif bottom:
            out.append((bottom, _match(bottom)))
        else:
            out.append((top, _match(top)))
    return out


def _score(matched: list[tuple[str, str | None]]) -> int:
    keys = {k for _h, k in matched if k}
    if not all(k in keys for k in cols.REQUIRED_HEADERS):
        return 0
    return len(keys)


def _find_header(
    grid: Iterator[tuple[int, list[Any]]], sheet: str, _offset: int
) -> tuple[Header, list[tuple[int, list[Any]]]]:
    """Look at the first rows for the header; return it and the rows read past it (to yield first)."""
    head: list[tuple[int, list[Any]]] = []
    for item in grid:
        head.append(item)
        if len(head) >= HEADER_SEARCH_ROWS + 1:
            break
    best: tuple[int, int, list[tuple[str, str | None]]] | None = None  # (score, index in head, header)
    for i in range(min(HEADER_SEARCH_ROWS, len(head))):
        candidates = [_header_from(head[i][1], None)]
        if i > 0:
            candidates.append(_header_from(head[i][1], head[i - 1][1]))
        for matched in candidates:
            score = _score(matched)
            if score and (best is None or score > best[0]):
                best = (score, i, matched)
    if best is None:
        raise SurveyFileError(
            _(
                "在工作表“%(s)s”的前%(n)d行中没有找到表头：表头至少应包含“姓名”和“身份证号”两列。"
                "建议下载本系统的模板填写。"
            )
            % {"s": sheet, "n": HEADER_SEARCH_ROWS}
        )
    _score_value, index, matched = best
    columns: list[SourceColumn] = []
    by_key: dict[str, SourceColumn] = {}
    unknown: list[SourceColumn] = []
    duplicates: list[SourceColumn] = []
    for col, (text, key) in enumerate(matched):
        column = SourceColumn(index=col, header=text, key=key, letter=column_letter(col))
        if not text:
            continue
        columns.append(column)
        if key is None:
            if cols.header_key(text) not in cols.IGNORED_HEADERS:
                unknown.append(column)
        elif key in by_key:
            duplicates.append(column)
        else:
            by_key[key] = column
    header = Header(
        sheet=sheet, row=head[index][0], columns=columns, by_key=by_key, unknown=unknown, duplicates=duplicates
    )
    return header, head[index + 1 :]


# -- validating ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellError:
    row: int  # 1-based row number in the sheet
    column: str  # the header as written in the file ("" for the row as a whole)
    message: str  # a Chinese sentence
    key: str = ""  # canonical column key ("" for the row as a whole)
    letter: str = ""  # the column letter in the file, when the column is in it

    def __str__(self) -> str:
        if self.column:
            return _("第%(row)d行“%(column)s”：%(message)s") % {
                "row": self.row,
                "column": self.column,
                "message": self.message,
            }
        return _("第%(row)d行：%(message)s") % {"row": self.row, "message": self.message}


@dataclass
class RowResult:
    row: int
    errors: list[CellError] = field(default_factory=list)
    warnings: list[CellError] = field(default_factory=list)
    id_number: str = ""  # normalised, when it could be read
    id_index: str = ""  # blind_index(id_number, purpose="child_id"): the key against the ledger
    existing_child_id: Any = None  # the ledger's child with that index, when the importer can see it
    child: dict[str, Any] = field(default_factory=dict)  # ChildForm.cleaned_data (region: a Region)
    household: dict[str, Any] | None = None  # HouseholdForm.cleaned_data, None when no household column has a value
    members: list[dict[str, Any]] = field(default_factory=list)  # FamilyMemberForm data, each with "situations"
    entrustment: dict[str, Any] | None = None  # EntrustmentForm.cleaned_data, None without a carer
    present: frozenset[str] = frozenset()  # the column keys with a value in this row (blank cells are not edits)

    @property
    def ok(self) -> bool:
        return not self.errors

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `services.child_create` (add actor= and request=)."""
        return {
            "data": self.child,
            "household": self.household,
            "members": self.members,
            "entrustment": self.entrustment,
        }


_SCI = re.compile(r"^[0-9.]+E\+?\d+$", re.IGNORECASE)
_SPLIT = re.compile(r"[、,，;；/／\s]+")
_SPACES = re.compile(r"\s+")
_DECIMAL_ID = re.compile(r"\d{16,}\.0+")

# Parent situations after which, unless the sheet says otherwise, the parent cannot act as guardian.
_INCAPACITATING = frozenset(
    {
        "severe_disability",
        "serious_illness",
        "imprisoned",
        "drug_rehab",
        "restricted_liberty",
        "lost_contact",
        "deceased",
        "declared_missing",
        "guardianship_revoked",
        "deported",
        "no_capacity",
    }
)
_PARENTS = (("father", "father"), ("mother", "mother"))
_PARENT_KEYS = {prefix: tuple(c.key for c in cols.COLUMNS if c.key.startswith(prefix + "_")) for prefix, _r in _PARENTS}
_GRANDPARENTS = ("grandfather_p", "grandmother_p", "grandfather_m", "grandmother_m")
_HOUSEHOLD_KEYS = ("address", "economic_status", "housing", "income_sources", "assistance_received")
_CARER_FIELDS = {
    "carer_name": "carer_name",
    "carer_relation": "carer_relation",
    "carer_id_number": "carer_id_number",
    "carer_phone": "carer_phone",
    "carer_birth_date": "carer_birth_date",
    "since": "carer_since",
    "agreement_signed": "carer_agreement_signed",
    "agreement_date": "carer_agreement_date",
}


def lost_precision_message(raw: Any) -> str:
    return _(
        "身份证号“%(v)s”被Excel当作数字保存，超过15位的数字已丢失（显示为科学计数法或末几位变成0），无法恢复。"
        "请在Excel中选中该列，设置单元格格式为“文本”，再重新输入或粘贴完整的身份证号（也可在号码前加英文单引号 '）。"
    ) % {"v": raw}


class SeenIds:
    """The rows' ID numbers seen so far in a file, each with the row it was first seen in, in 48 to
    96 bytes per row: the only state of a validation that grows with the file (a second row with
    an ID number must be refused wherever it is).

    Keys are blind indexes (40 hex digits: 20 bytes), stored in an open-addressing table of fixed
    20-byte slots with the row numbers in a parallel array, kept at most half full."""

    _WIDTH = 20

    def __init__(self, capacity: int = 1024) -> None:
        self._slots = capacity  # a power of two
        self._keys = bytearray(self._WIDTH * capacity)
        self._rows = array("I", bytes(4 * capacity))  # 0: empty slot (row numbers start at 1)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _find(self, key: bytes) -> int:
        mask, width, keys, rows = self._slots - 1, self._WIDTH, self._keys, self._rows
        slot = int.from_bytes(key[:8], "little") & mask
        while rows[slot] and keys[slot * width : (slot + 1) * width] != key:
            slot = (slot + 1) & mask
        return slot

    def get(self, index: str) -> int | None:
        """The first row with this blind index, or None."""
        return self._rows[self._find(bytes.fromhex(index))] or None

    def add(self, index: str, row: int) -> None:
        """Remember the first row of this blind index (a later `add` of the same one is ignored)."""
        key = bytes.fromhex(index)
        slot = self._find(key)
        if self._rows[slot]:
            return
        self._keys[slot * self._WIDTH : (slot + 1) * self._WIDTH] = key
        self._rows[slot] = row
        self._count += 1
        if 2 * self._count > self._slots:
            self._grow()

    def _grow(self) -> None:
        old_keys, old_rows, width = self._keys, self._rows, self._WIDTH
        self._slots *= 2
        self._keys = bytearray(width * self._slots)
        self._rows = array("I", bytes(4 * self._slots))
        for slot, row in enumerate(old_rows):
            if row:
                key = bytes(old_keys[slot * width : (slot + 1) * width])
                new = self._find(key)
                self._keys[new * width : (new + 1) * width] = key
                self._rows[new] = row


class RowValidator:
    """Validates rows for one importer; remembers the ID numbers seen to flag duplicates in a file."""

    def __init__(self, actor: Any) -> None:
        from shouhu.org.access import scope_for

        self.actor = actor
        self.scope = scope_for(actor)
        self.seen = SeenIds()  # the ID numbers of the file so far (blind indexes) -> first row
        self._villages: dict[str, Any] | None = None
        self._by_name: dict[str, list[Any]] | None = None
        self._forms: dict[str, Any] = {}  # one form object per kind, rebound for each row
        # Filled by `prefetch` for a batch of rows: the ledger's children with those ID numbers.
        self._known: dict[str, tuple[Any, bool]] | None = None  # index -> (pk, visible)
        self._instances: dict[Any, Any] = {}  # pk -> Child, the visible ones
        # What the cells of a coded or date column converted to, per column (`_convert`).
        self._converted: dict[str, dict[Any, Any]] = {}
        # True once `prefetch(mark_duplicates=True)` decides the repeated ID numbers (before
        # validation, in file order): `validate` then reads `RawRow.duplicate_of` instead.
        self.duplicates_marked = False

    def _form(self, kind: str, data: dict[str, Any], instance: Any = None) -> Any:
        """The registry's form of that kind bound to `data`: built once per file, rebound per row."""
        from shouhu.registry import forms as f

        form = self._forms.get(kind)
        if form is None:
            form = self._forms[kind] = f.bulk_form(kind, self.actor)
        form.rebind(data, instance=instance)
        if isinstance(form, f.ChildForm):
            form.known_ids = self._known
        return form

    def prefetch(self, rows: list[RawRow], *, mark_duplicates: bool = False) -> None:
        """Read the ledger's children for the ID numbers of a batch of rows in two queries; the
        rows' `validate` then asks no per-row question of the database about them.

        With `mark_duplicates`, also decide here, for rows given in file order, which repeat an
        earlier row's ID number (`mark_duplicates`), before they are validated — by another
        process, in a pipelined import (shouhu.intake.pipeline). From then on `validate` takes that
        decision from the row instead of making it."""
        indexes = id_indexes(rows)
        if mark_duplicates:
            self.mark_duplicates(rows, indexes)
        self._known, self._instances = self.lookup(indexes)

    def mark_duplicates(self, rows: list[RawRow], indexes: list[str | None]) -> None:
        """For rows given in file order, with their `id_indexes`, which repeat an earlier row's ID
        number (`RawRow.duplicate_of`); `validate` then takes that decision from the row."""
        self.duplicates_marked = True
        for raw, index in zip(rows, indexes, strict=True):
            if index:
                raw.duplicate_of = self._remember(index, raw.row)

    def lookup(self, indexes: list[str | None]) -> tuple[dict[str, tuple[Any, bool]], dict[Any, Any]]:
        """The ledger's children with these blind indexes (a batch's `id_indexes`), for `validate`:
        ({blind index: (id, visible to the importer)}, {id: child} for those visible). Only reads
        the database (a pipelined import asks it from its writer thread, lib.writebehind)."""
        from shouhu.registry.models import Child
        from shouhu.registry.selectors import children_visible_to

        found = dict(
            Child.objects.filter(id_number_index__in={i for i in indexes if i}).values_list("id_number_index", "pk")
        )
        if not found:  # a batch of new children: nothing to ask of the importer's scope
            return {}, {}
        visible = {c.pk: c for c in children_visible_to(self.actor).filter(pk__in=found.values())}
        return {index: (pk, pk in visible) for index, pk in found.items()}, visible

    def _first_row_with(self, index: str, raw: RawRow) -> int | None:
        """The earlier row of the file with this ID number's blind index, or None."""
        return raw.duplicate_of if self.duplicates_marked else self._remember(index, raw.row)

    def _remember(self, index: str, row: int) -> int | None:
        """The first row seen with this blind index; None, and remembered, when this row is it."""
        first = self.seen.get(index)
        if first is None:
            self.seen.add(index, row)
        return first

    def warm(self) -> None:
        """Ask the database now everything validating a valid row asks it once per file: the
        importer's villages, the forms and the villages the child's form may be given. A pipelined
        import forks its validation processes after this, and they never ask it again."""
        from shouhu.registry import forms as f

        if self._villages is None:
            self._load_villages()
        assert self._villages is not None
        for kind in ("child", "household", "member", "situation", "entrustment"):
            self._form(kind, {})
        f.field_of(self._forms["child"], "region", f.RegionChoiceField).remember(self._villages.values())

    # villages ------------------------------------------------------------------------------------
    def _load_villages(self) -> None:
        from django.db.models import Q

        from shouhu.org.models import Region, RegionLevel

        self._villages, self._by_name = {}, {}
        if not self.scope.prefixes:
            return
        q = Q()
        for prefix in self.scope.prefixes:
            q |= Q(code__startswith=prefix)
        for region in Region.objects.filter(q, level=RegionLevel.VILLAGE).select_related("parent"):
            self._villages[region.code] = region
            names = {region.name, _strip_committee(region.name)}
            if region.parent:
                names |= {region.parent.name + n for n in list(names)}
            for name in names:
                self._by_name.setdefault(cols.value_key(name), []).append(region)

    def resolve_region(self, raw: Any) -> tuple[str | None, str | None]:
        """(village code, None) or (None, Chinese error message)."""
        if self._villages is None:
            self._load_villages()
        assert self._villages is not None and self._by_name is not None
        text = _cell_text(raw)
        compact = re.sub(r"\s+", "", text)
        if re.fullmatch(r"\d{12}", compact):
            if compact in self._villages:
                return compact, None
            from shouhu.org.models import Region, RegionLevel

            region = Region.objects.filter(code=compact).first()
            if region is None:
                return None, _("区划代码“%(v)s”不存在，请核对。") % {"v": compact}
            if region.level != RegionLevel.VILLAGE:
                return None, _("区划代码“%(v)s”是%(n)s，不是村（社区），请填写村（社区）的12位代码。") % {
                    "v": compact,
                    "n": region.name,
                }
            return None, _("村（社区）“%(n)s”（%(v)s）不在您的管辖范围内，不能导入。") % {
                "n": region.name,
                "v": compact,
            }
        if re.fullmatch(r"\d+", compact):
            return None, _("区划代码“%(v)s”应为12位数字。") % {"v": compact}
        found = self._by_name.get(cols.value_key(text)) or self._by_name.get(cols.value_key(_strip_committee(text)))
        if not found:
            from shouhu.org.models import Region, RegionLevel

            if Region.objects.filter(level=RegionLevel.VILLAGE, name=text).exists():
                return None, _("村（社区）“%(v)s”不在您的管辖范围内，不能导入。") % {"v": text}
            return None, _("找不到村（社区）“%(v)s”：请填写本系统中的村（社区）名称或12位区划代码。") % {"v": text}
        if len({r.code for r in found}) > 1:
            return None, _("有多个名为“%(v)s”的村（社区）（%(c)s），请在“村（社区）代码”列填写12位区划代码。") % {
                "v": text,
                "c": "、".join(f"{r.parent.name if r.parent else ''}{r.name} {r.code}" for r in found),
            }
        return found[0].code, None

    def default_region(self) -> str | None:
        """A village director's own village, when the sheet has no village column."""
        if len(self.scope.prefixes) == 1 and len(self.scope.prefixes[0]) == 12:
            return self.scope.prefixes[0]
        return None

    # a row ---------------------------------------------------------------------------------------
    def _convert(self, column: cols.Column, value: Any) -> Any:
        """`_convert(column, value)`, kept per column for the coded and date columns, whose few
        values repeat row after row and whose conversion is a function of the cell alone (a
        choice's code, a yes or no, a date). A cell that fails is converted again each time (its
        message is in the active language); at most `_KEPT` values a column."""
        if column.kind not in _KEPT_KINDS:
            return _convert(column, value)
        kept = self._converted.get(column.key)
        if kept is None:
            kept = self._converted[column.key] = {}
        key = (type(value), value)  # typed apart: 1.0 == True, and a date cell may be a number
        try:
            found = kept.get(key, _UNSEEN)
        except TypeError:  # not a cell value a reader gives
            return _convert(column, value)
        if found is _UNSEEN:
            found = _convert(column, value)
            if len(kept) < _KEPT:
                kept[key] = tuple(found) if type(found) is list else found
        return list(found) if type(found) is tuple else found  # a list of codes: the row's own

    def validate(self, raw: RawRow) -> RowResult:
        """The row's result. Its dates are checked as of the day `registry.forms.one_day` fixed
        around a batch of rows, else as of today."""
        from shouhu.registry.forms import one_day

        with one_day():
            return self._validate(raw)

    def _validate(self, raw: RawRow) -> RowResult:
        from shouhu.lib.crypto import blind_index

        header = raw.header
        result = RowResult(row=raw.row)
        present = {k for k, v in raw.values.items() if not _blank(v)}
        result.present = frozenset(present)
        errors: dict[str, list[str]] = {}

        def err(key: str, message: str) -> None:
            errors.setdefault(key, []).append(strip_tags(str(message)))

        values: dict[str, Any] = {}
        convert = self._convert
        for key, value in raw.values.items():
            column = cols.BY_KEY[key]
            try:
                values[key] = convert(column, value)
            except ValidationError as exc:
                for message in exc.messages:
                    err(key, message)
                values[key] = _FAILED

        # The village: a code column wins over a name column; none at all means the importer's own village.
        region = None
        region_key = "region_code" if "region_code" in present else "region"
        if region_key in present:
            region, problem = self.resolve_region(values[region_key])
            if problem:
                err(region_key, problem)
        elif self.default_region():
            region = self.default_region()
        else:
            err("region", _("请填写所在村（社区）。"))

        # The child: ChildForm, on the ledger's child with the same ID when the importer may see it.
        id_value = values.get("id_number")
        instance = None
        if isinstance(id_value, str) and id_value:
            from shouhu.lib.idnumber import normalize_id_number

            result.id_number = normalize_id_number(id_value)
            if len(result.id_number) == 18:
                result.id_index = blind_index(result.id_number, purpose="child_id")
                first = self._first_row_with(result.id_index, raw)
                if first is not None:
                    err("id_number", _("与第%(r)d行的身份证号重复：同一儿童在文件中只能出现一次。") % {"r": first})
                if self._known is not None:
                    pk, visible = self._known.get(result.id_index, (None, False))
                    instance = self._instances.get(pk) if visible else None
                else:
                    from shouhu.registry.selectors import children_visible_to

                    instance = children_visible_to(self.actor).filter(id_number_index=result.id_index).first()
                if instance is not None:
                    result.existing_child_id = instance.pk
        child_data = {
            "name": _text(values.get("name")),
            "id_number": _text(id_value),
            "gender": values.get("gender") or "",
            "birth_date": _date(values.get("birth_date")),
            "ethnicity": _text(values.get("ethnicity")) or "汉族",
            "hukou_registered": _bool(values.get("hukou_registered"), True),
            "hukou_type": values.get("hukou_type") or "rural",
            "hukou_place": _text(values.get("hukou_place")),
            "region": region or "",
            "health": values.get("health") or "healthy",
            "disability_type": values.get("disability_type") or "",
            "disability_grade": values.get("disability_grade") or "",
            "illness": _text(values.get("illness")),
            "school_stage": values.get("school_stage") or "",
            "school_name": _text(values.get("school_name")),
            "grade": _text(values.get("grade")),
            "boarding": _bool(values.get("boarding"), False),
            "lives_with_parents": _bool(values.get("lives_with_parents"), False),
            "guardianship_type": values.get("guardianship_type") or "ordinary",
            "guardianship_assessment": values.get("guardianship_assessment") or "",
            "note": _text(values.get("note")),
        }
        if instance is not None:
            child_data["version"] = instance.version
        form = self._form("child", child_data, instance=instance)
        if form.is_valid():
            result.child = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        else:
            # The form filled the instance in memory only; nothing is saved here.
            _collect(form, {}, errors, skip=set(errors) | ({"region"} if region is None else set()))

        # The household.
        if any(k in present for k in _HOUSEHOLD_KEYS):
            hh = self._form(
                "household",
                {
                    "address": _text(values.get("address")),
                    "economic_status": values.get("economic_status") or "ordinary",
                    "housing": _text(values.get("housing")),
                    "income_sources": values.get("income_sources") or [],
                    "assistance_received": values.get("assistance_received") or [],
                },
            )
            if hh.is_valid():
                result.household = {k: v for k, v in hh.cleaned_data.items() if k != "version"}
            else:
                _collect(hh, {}, errors, skip=set(errors))

        # Parents (with their situations) and grandparents.
        for prefix, relation in _PARENTS:
            member = self._member(prefix, relation, values, present, errors)
            if member is not None:
                result.members.append(member)
        for relation in _GRANDPARENTS:
            if any(k in present for k in (f"{relation}_name", f"{relation}_birth_date")):
                member = self._validate_member(
                    relation,
                    relation,
                    {
                        "relation": relation,
                        "name": _text(values.get(f"{relation}_name")),
                        "birth_date": _date(values.get(f"{relation}_birth_date")),
                        "id_number": "",
                        "phone": "",
                        "work_place": "",
                        "is_guardian": False,
                        "capacity": "full",
                    },
                    errors,
                )
                if member is not None:
                    member["situations"] = []
                    result.members.append(member)

        # The entrusted carer.
        if any(key in present for key in _CARER_FIELDS.values()):
            ent = self._form(
                "entrustment",
                {
                    "carer_name": _text(values.get("carer_name")),
                    "carer_relation": values.get("carer_relation") or "",
                    "carer_id_number": _text(values.get("carer_id_number")),
                    "carer_phone": _text(values.get("carer_phone")),
                    "carer_birth_date": _date(values.get("carer_birth_date")),
                    "since": _date(values.get("carer_since")),
                    "until": None,
                    "agreement_signed": _bool(values.get("carer_agreement_signed"), False),
                    "agreement_date": _date(values.get("carer_agreement_date")),
                    "village_informed": False,
                    "school_informed": False,
                },
            )
            if ent.is_valid():
                result.entrustment = {k: v for k, v in ent.cleaned_data.items() if k != "version"}
            else:
                _collect(ent, _CARER_FIELDS, errors, skip=set(errors))

        for key, messages in errors.items():
            source = header.by_key.get(key)
            for message in messages:
                result.errors.append(
                    CellError(
                        row=raw.row,
                        key=key if key in cols.BY_KEY else "",
                        message=message,
                        column=header.header_of(key) if key in cols.BY_KEY else "",
                        letter=source.letter if source else "",
                    )
                )
        if result.errors:
            result.child, result.household, result.members, result.entrustment = {}, None, [], None
        return result

    def _member(
        self, prefix: str, relation: str, values: dict[str, Any], present: set[str], errors: dict[str, list[str]]
    ) -> dict[str, Any] | None:

        if not any(k in present for k in _PARENT_KEYS[prefix]):
            return None
        kinds = values.get(f"{prefix}_situation") or []
        if kinds is _FAILED:
            kinds = []
        capacity = values.get(f"{prefix}_capacity") or ("none" if set(kinds) & _INCAPACITATING else "full")
        member = self._validate_member(
            prefix,
            relation,
            {
                "relation": relation,
                "name": _text(values.get(f"{prefix}_name")),
                "id_number": _text(values.get(f"{prefix}_id_number")),
                "birth_date": _date(values.get(f"{prefix}_birth_date")),
                "phone": _text(values.get(f"{prefix}_phone")),
                "work_place": _text(values.get(f"{prefix}_work_place")),
                "is_guardian": capacity != "none",
                "capacity": capacity,
            },
            errors,
        )
        situations = []
        grade = values.get(f"{prefix}_disability_grade") or ""
        since = _date(values.get(f"{prefix}_situation_since"))
        for kind in kinds:
            form = self._form(
                "situation",
                {
                    "kind": kind,
                    "since": since,
                    "until": None,
                    "note": "",
                    "disability_type": "",
                    "disability_grade": grade if kind == "severe_disability" else "",
                },
            )
            if form.is_valid():
                situations.append({k: v for k, v in form.cleaned_data.items() if k not in {"id", "member"}})
            else:
                _collect(
                    form,
                    {
                        "kind": f"{prefix}_situation",
                        "since": f"{prefix}_situation_since",
                        "until": f"{prefix}_situation_since",
                        "disability_grade": f"{prefix}_disability_grade",
                        "disability_type": f"{prefix}_situation",
                        "note": f"{prefix}_situation",
                    },
                    errors,
                    skip=set(errors),
                )
        if member is None:
            return None
        member["situations"] = situations
        return member

    def _validate_member(
        self, prefix: str, relation: str, data: dict[str, Any], errors: dict[str, list[str]]
    ) -> dict[str, Any] | None:

        form = self._form("member", data)
        if form.is_valid():
            return {k: v for k, v in form.cleaned_data.items() if k != "version"}
        mapping = {name: f"{prefix}_{name}" for name in form.fields}
        _collect(form, mapping, errors, skip=set(errors), who=cols.BY_KEY[f"{prefix}_name"].header.removesuffix("姓名"))
        return None


def validate_row(raw: RawRow, actor: Any, *, validator: RowValidator | None = None) -> RowResult:
    """Validate one row. Pass the same `validator` for every row of a file to flag duplicate IDs."""
    return (validator or RowValidator(actor)).validate(raw)


def validate_rows(rows: Iterable[RawRow], actor: Any) -> Iterator[RowResult]:
    validator = RowValidator(actor)
    for raw in rows:
        yield validator.validate(raw)


# -- cells ---------------------------------------------------------------------------------------------------------


class _Failed:
    def __bool__(self) -> bool:
        return False


_FAILED: Any = _Failed()  # a cell that could not be converted (its error is already recorded)
_UNSEEN: Any = object()
_KEPT = 1024
_KEPT_KINDS = frozenset({Kind.CHOICE, Kind.GRADE, Kind.BOOL, Kind.MULTI, Kind.DATE})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _strip_committee(name: str) -> str:
    for suffix, replacement in (
        ("村民委员会", "村"),
        ("居民委员会", ""),
        ("村委会", "村"),
        ("居委会", ""),
        ("村委", "村"),
    ):
        if name.endswith(suffix):
            return name[: -len(suffix)] + replacement
    return name


def _text(value: Any) -> str:
    if value is None or value is _FAILED:
        return ""
    return value if isinstance(value, str) else _cell_text(value)


def _date(value: Any) -> date | None:
    return value if isinstance(value, date) else None


def _bool(value: Any, default: bool) -> bool:
    return default if value is None or value is _FAILED or value == "" else bool(value)


def _convert(column: cols.Column, value: Any) -> Any:
    """A cell as the form expects it; ValidationError (Chinese) when it cannot be."""
    if _blank(value):
        return None
    kind = column.kind
    if kind == Kind.ID:
        return _id_cell(value)
    if kind == Kind.PHONE:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValidationError(_("电话号码“%(v)s”不是有效的号码。") % {"v": value})
            value = int(value)
        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value)))
    if kind == Kind.DATE:
        return parse_date(value)
    if kind == Kind.BOOL:
        text = cols.value_key(_cell_text(value) if not isinstance(value, bool) else ("是" if value else "否"))
        if text in cols.YES:
            return True
        if text in cols.NO:
            return False
        raise ValidationError(_("“%(v)s”无法识别，请填写“是”或“否”。") % {"v": _cell_text(value)})
    if kind in (Kind.CHOICE, Kind.GRADE):
        code = column.lookup(_cell_text(value))
        if code is None:
            raise ValidationError(
                _("“%(v)s”不是有效的选项，可选：%(o)s。") % {"v": _cell_text(value), "o": "、".join(column.options)}
            )
        return int(code) if kind == Kind.GRADE else code
    if kind == Kind.MULTI:
        text = _cell_text(value)
        if column.key.endswith("_situation") and cols.value_key(text) in {cols.value_key(v) for v in cols.NO_SITUATION}:
            return []
        codes: list[str] = []
        whole = column.lookup(text)
        parts = [text] if whole else [p for p in _SPLIT.split(text) if p]
        bad = []
        for part in parts:
            code = column.lookup(part)
            if code is None:
                bad.append(part)
            elif code not in codes:
                codes.append(code)
        if bad:
            raise ValidationError(
                _("“%(v)s”不是有效的选项，可选：%(o)s（多项用顿号分隔）。")
                % {"v": "、".join(bad), "o": "、".join(column.options)}
            )
        return codes
    if kind == Kind.REGION:
        return value
    return _cell_text(value) if not isinstance(value, str) else unicodedata.normalize("NFKC", value).strip()


def id_indexes(rows: list[RawRow]) -> list[str | None]:
    """Each row's `_row_id_index`: the keys of `RowValidator.prefetch`."""
    return [_row_id_index(raw) for raw in rows]


def _row_id_index(raw: RawRow) -> str | None:
    """The blind index of the row's child ID number, when it reads as 18 characters; the key of
    `prefetch` and of its duplicate marking, computed as `validate` computes it."""
    from shouhu.lib.crypto import blind_index
    from shouhu.lib.idnumber import normalize_id_number

    value = raw.values.get("id_number")
    if _blank(value):
        return None
    try:
        number = normalize_id_number(_id_cell(value))
    except ValidationError:
        return None
    return blind_index(number, purpose="child_id") if len(number) == 18 else None


def _id_cell(value: Any) -> str:
    """An ID number cell as text; refuse one that Excel stored as a number and so cut short."""
    if isinstance(value, bool):
        raise ValidationError(_("身份证号格式不正确，请核对。"))
    if isinstance(value, float):
        if value.is_integer() and value < 1e15:
            return str(int(value))  # a short number: parse_id_number explains what is wrong with it
        raise ValidationError(lost_precision_message(_excel_shown(value)))
    if isinstance(value, int):
        return str(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().lstrip("'")
    if _SCI.match(_SPACES.sub("", text)):
        raise ValidationError(lost_precision_message(text))
    if _DECIMAL_ID.fullmatch(text):
        raise ValidationError(lost_precision_message(text))
    return text


def _excel_shown(value: float) -> str:
    """How Excel shows a long number in a General cell: 3.20412E+17."""
    mantissa, exponent = f"{value:.5E}".split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E+{int(exponent)}"


def _collect(
    form: Any, mapping: dict[str, str], errors: dict[str, list[str]], *, skip: set[str], who: str = ""
) -> None:
    """Copy a form's errors to column keys; a column whose cell already failed keeps its first message."""
    for name, messages in form.errors.items():
        key = mapping.get(name, name) if name != "__all__" else ""
        if key and key not in cols.BY_KEY:
            key = ""
        if key in skip and key:
            continue
        for message in messages:
            text = strip_tags(str(message))
            if who and key == "":
                text = f"{who}：{text}"
            errors.setdefault(key, []).append(text)
