"""The downloadable survey template (摸底排查表): the columns of shouhu.intake.columns in Chinese,
drop-down lists for the coded columns, ID and phone columns formatted as text, an instructions
sheet (说明), and the village pre-filled when the template is made for one village."""

from __future__ import annotations

import io
from typing import Any, cast

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from shouhu.intake.columns import COLUMNS, Kind

# Sheet names, for people: the reader takes the first visible sheet with a header, whatever its name.
DATA_SHEET = gettext_lazy("摸底排查表")
HELP_SHEET = gettext_lazy("说明")
OPTIONS_SHEET = gettext_lazy("选项")
TITLE_ROW, HEADER_ROW = 1, 2
FIRST_DATA_ROW = 3
DEFAULT_ROWS = 500

_TEXT_KINDS = {Kind.ID, Kind.PHONE}
_CODED_KINDS = {Kind.CHOICE, Kind.MULTI, Kind.BOOL, Kind.GRADE}
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_REQUIRED_FONT = Font(bold=True, color="C00000")
_THIN = Side(style="thin", color="999999")


def build_template(region: Any = None, *, rows: int = DEFAULT_ROWS) -> Workbook:
    """The template workbook; `region` (an org.Region) names the sheet's area and, for a village,
    pre-fills the village columns."""
    from shouhu.org.models import Region, RegionLevel

    wb = Workbook()
    ws = cast(Worksheet, wb.active)  # a new workbook has one sheet, a Worksheet, and it is the active one
    ws.title = str(DATA_SHEET)
    options = wb.create_sheet(str(OPTIONS_SHEET))
    options.sheet_state = "hidden"
    help_ws = wb.create_sheet(str(HELP_SHEET))

    village = region if region is not None and region.level == RegionLevel.VILLAGE else None
    place = ""
    if region is not None:
        parent = region.parent.name if village is not None and region.parent else ""
        place = f"{parent}{region.name}"
    ws.cell(TITLE_ROW, 1, (_("%(place)s困境儿童和留守儿童摸底排查表") % {"place": place}).strip())
    ws.cell(TITLE_ROW, 1).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW, end_column=min(len(COLUMNS), 12))
    ws.row_dimensions[HEADER_ROW].height = 32

    last = FIRST_DATA_ROW + rows - 1
    villages: list[Any] = []
    if region is not None:
        villages = list(
            Region.objects.filter(code__startswith=region.prefix, level=RegionLevel.VILLAGE)
            .select_related("parent")
            .order_by("code")[:2000]
        )
    option_col = 0
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        cell = ws.cell(HEADER_ROW, index, column.header)
        cell.font = _REQUIRED_FONT if column.required else Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
        ws.column_dimensions[letter].width = column.width
        values: tuple[str, ...] = column.options
        if column.key == "region" and villages:
            values = tuple(v.name for v in villages)
        elif column.key == "region_code" and villages:
            values = tuple(v.code for v in villages)
        if column.kind in _TEXT_KINDS or column.key == "region_code":
            ws.column_dimensions[letter].number_format = "@"
            for row in range(FIRST_DATA_ROW, last + 1):
                ws.cell(row, index).number_format = "@"
        elif column.kind == Kind.DATE:
            for row in range(FIRST_DATA_ROW, last + 1):
                ws.cell(row, index).number_format = "yyyy-mm-dd"
        if values and (column.kind in _CODED_KINDS or column.kind == Kind.REGION):
            option_col += 1
            opt_letter = get_column_letter(option_col)
            options.cell(1, option_col, column.header)
            for i, value in enumerate(values, start=2):
                options.cell(i, option_col, value).number_format = "@"
            ref = f"{quote_sheetname(str(OPTIONS_SHEET))}!${opt_letter}$2:${opt_letter}${len(values) + 1}"
            multi = column.kind == Kind.MULTI
            dv = DataValidation(
                type="list", formula1=f"={ref}", allow_blank=True, showErrorMessage=not multi, errorStyle="stop"
            )
            dv.error = _("请从下拉列表中选择。")
            dv.errorTitle = column.header
            dv.prompt = column.help or (_("可从下拉列表选择；多项用顿号分隔。") if multi else _("请从下拉列表中选择。"))
            dv.promptTitle = column.header
            dv.showInputMessage = True
            dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{last}")
            ws.add_data_validation(dv)
        elif column.help:
            dv = DataValidation(allow_blank=True, showErrorMessage=False)
            dv.prompt, dv.promptTitle, dv.showInputMessage = column.help[:255], column.header, True
            dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{last}")
            ws.add_data_validation(dv)
        if village is not None and column.key in ("region", "region_code"):
            value = village.name if column.key == "region" else village.code
            for row in range(FIRST_DATA_ROW, last + 1):
                ws.cell(row, index, value)
    ws.freeze_panes = ws.cell(FIRST_DATA_ROW, 4).coordinate
    _instructions(help_ws, place, village)
    wb.active = 0
    return wb


def _instructions(ws: Any, place: str, village: Any) -> None:
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 8
    ws.column_dimensions["C"].width = 60
    ws.column_dimensions["D"].width = 60
    lines = [
        _("%(place)s困境儿童和留守儿童摸底排查表 填写说明") % {"place": place},
        _("1. 在“%(sheet)s”工作表中每行填写一名儿童，不要修改、删除或合并表头；可删除不需要的列。")
        % {"sheet": DATA_SHEET},
        _("2. 红色表头为必填列。身份证号须为18位；性别、出生日期可留空，系统按身份证号确定。"),
        _(
            "3. 身份证号、电话列已设为“文本”格式。请勿改为数字格式，否则Excel会把身份证号显示为 3.20412E+17，"
            "末几位数字丢失且无法恢复；若已发生，请将该列设置为“文本”后重新输入或粘贴号码。"
        ),
        _("4. 日期可写成 2015-03-08、2015.3.8、2015/3/8 或 2015年3月8日。"),
        # Translators: the quoted names are headers of the data sheet, which the import matches: keep them.
        _("5. 带下拉箭头的列请从列表中选择；“情况”“收入来源”“已获救助”可填多项，用顿号（、）分隔。"),
        # Translators: “无” is a value the import reads: keep it as it is.
        _("6. 父亲/母亲情况无特殊情况时留空或填“无”；重残时请同时填写残疾等级。"),
        _("7. 有委托监护（委托照护）的，请填写受委托人信息。"),
        _("8. 本表已预填所在村（社区）：%(name)s（%(code)s）。") % {"name": village.name, "code": village.code}
        if village is not None
        else _("8. 所在村（社区）请填写名称或12位统计用区划代码；同名村请填写代码。"),
        _("9. 可上传 .xlsx、.xls 或 .csv 文件；导入前会先预览，发现错误时按行列列出，全部无误后才会写入台账。"),
    ]
    for i, line in enumerate(lines, start=1):
        ws.cell(i, 1, line)
        ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=4)
        ws.cell(i, 1).alignment = Alignment(wrap_text=True, vertical="top")
    ws.cell(1, 1).font = Font(bold=True, size=13)
    start = len(lines) + 2
    for j, title in enumerate((_("列名"), _("必填"), _("填写说明"), _("可选值")), start=1):
        ws.cell(start, j, title).font = Font(bold=True)
        ws.cell(start, j).fill = _HEADER_FILL
    for i, column in enumerate(COLUMNS, start=start + 1):
        ws.cell(i, 1, column.header)
        ws.cell(i, 2, _("是") if column.required else "")
        note = column.help
        if column.variants:
            note = (note + " " if note else "") + _("也可写作：%(variants)s。") % {
                "variants": "、".join(column.variants[:6])
            }
        ws.cell(i, 3, note).alignment = Alignment(wrap_text=True, vertical="top")
        ws.cell(i, 4, "、".join(column.options)).alignment = Alignment(wrap_text=True, vertical="top")


def template_bytes(region: Any = None, *, rows: int = DEFAULT_ROWS) -> bytes:
    buffer = io.BytesIO()
    build_template(region, rows=rows).save(buffer)
    return buffer.getvalue()
