"""Dates as people type them in survey sheets: 2015.3.8, 2015-03-08, 2015/3/8, 2015年3月8日,
20150308, an Excel serial number (42071), or the date object a spreadsheet reader gives."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01, counting Excel's phantom 1900-02-29
_MIN_SERIAL, _MAX_SERIAL = 1, 2958465  # 1900-01-01 … 9999-12-31
_YMD = re.compile(
    r"^(\d{4})\s*[./\-年]\s*(\d{1,2})\s*[./\-月]\s*(\d{1,2})\s*[日号]?(?:\s+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_YM = re.compile(r"^(\d{4})\s*[./\-年]\s*(\d{1,2})\s*月?$")
_SERIAL = re.compile(r"^\d{1,7}(?:\.0+)?$")


def _example() -> str:
    return _("请写成 2015-03-08、2015.3.8 或 2015年3月8日。")


def _make(year: int, month: int, day: int, shown: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValidationError(
            _("日期“%(v)s”不存在（%(y)d年%(m)d月没有%(d)d日，或月份不在1-12之间）。")
            % {"v": shown, "y": year, "m": month, "d": day},
            code="invalid_date",
        ) from None


def from_excel_serial(serial: float) -> date:
    if not _MIN_SERIAL <= serial <= _MAX_SERIAL:
        raise ValidationError(_("日期“%(v)s”无法识别。") % {"v": serial} + _example(), code="invalid_date")
    return _EXCEL_EPOCH + timedelta(days=int(serial))


def parse_date(value: Any) -> date | None:
    """A date, None for an empty cell, or ValidationError with a Chinese message."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise ValidationError(_("日期“%(v)s”无法识别。") % {"v": value} + _example(), code="invalid_date")
    if isinstance(value, int | float):
        if value != value:  # NaN
            return None
        number = int(value)
        if value == number and 10000101 <= number <= 99991231:
            return parse_date(str(number))  # 20150308 typed as a number
        return from_excel_serial(value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return None
    match = _YMD.match(text)
    if match:
        return _make(int(match[1]), int(match[2]), int(match[3]), text)
    match = _COMPACT.match(text)
    if match:
        return _make(int(match[1]), int(match[2]), int(match[3]), text)
    if _YM.match(text):
        raise ValidationError(
            _("日期“%(v)s”缺少日：请填写完整的年月日。") % {"v": text} + _example(), code="incomplete"
        )
    if _SERIAL.match(text) and len(text.split(".")[0]) <= 5:
        return from_excel_serial(float(text))  # a date column saved as its serial number (CSV from Excel)
    raise ValidationError(_("日期“%(v)s”无法识别。") % {"v": text} + _example(), code="invalid_date")
