"""Import an official list of statistical division codes (统计用区划代码) for any district."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from shouhu.org.models import Region, RegionLevel

CODE_HEADERS = ("统计用区划代码", "区划代码", "代码", "code")
NAME_HEADERS = ("名称", "name")
KIND_HEADERS = ("城乡分类代码", "urban_rural_code")


class RegionImportError(ValueError):
    pass


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def level_of(code: str) -> RegionLevel:
    if code[2:] == "0" * 10:
        return RegionLevel.PROVINCE
    if code[4:] == "0" * 8:
        return RegionLevel.CITY
    if code[6:] == "0" * 6:
        return RegionLevel.DISTRICT
    if code[9:] == "000":
        return RegionLevel.TOWN
    return RegionLevel.VILLAGE


def parent_code(code: str) -> str | None:
    level = level_of(code)
    keep = {RegionLevel.CITY: 2, RegionLevel.DISTRICT: 4, RegionLevel.TOWN: 6, RegionLevel.VILLAGE: 9}.get(level)
    return None if keep is None else code[:keep].ljust(12, "0")


def decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RegionImportError(_("文件编码无法识别（应为 UTF-8 或 GBK）"))


def read_rows(text: str) -> list[tuple[str, str, str]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]

    def find(options: tuple[str, ...]) -> int | None:
        for i, h in enumerate(header):
            if h.lower() in options:
                return i
        return None

    ci, ni, ki = find(CODE_HEADERS), find(NAME_HEADERS), find(KIND_HEADERS)
    if ci is None or ni is None:
        raise RegionImportError(_("找不到“统计用区划代码”和“名称”列"))
    rows = []
    for line_no, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        code = re.sub(r"\s", "", row[ci]) if ci < len(row) else ""
        name = row[ni].strip() if ni < len(row) else ""
        if not re.fullmatch(r"\d{12}", code):
            raise RegionImportError(
                _("第%(line)d行：区划代码应为12位数字，实际为“%(code)s”") % {"line": line_no, "code": code[:20]}
            )
        if not name or len(name) > 60:
            raise RegionImportError(_("第%(line)d行：名称为空或过长") % {"line": line_no})
        kind = row[ki].strip() if ki is not None and ki < len(row) else ""
        rows.append((code, name, kind))
    return rows


@transaction.atomic
def import_regions(rows: Iterable[tuple[str, str, str]], *, within: str = "") -> ImportResult:
    """Create or update regions (parents before children); all or nothing."""
    result = ImportResult()
    ordered = sorted(rows, key=lambda r: (level_of(r[0]), r[0]))
    for code, name, kind in ordered:
        if within and not code.startswith(within):
            continue
        level = level_of(code)
        parent = parent_code(code)
        if parent and not Region.objects.filter(code=parent).exists():
            raise RegionImportError(
                _("区划 %(code)s（%(name)s）的上级 %(parent)s 不存在：请在文件中包含上级区划")
                % {"code": code, "name": name, "parent": parent}
            )
        kind_name = {
            "111": "community",
            "112": "community",
            "121": "community",
            "122": "village",
            "123": "village",
            "210": "village",
            "220": "village",
        }.get(kind, "village" if level == 5 else "")
        obj = Region.objects.filter(code=code).first()
        values = {
            "name": name,
            "level": level,
            "parent_id": parent,
            "is_synthetic": False,
            "kind": kind_name or (obj.kind if obj else ""),
        }
        if obj is None:
            Region.objects.create(code=code, **values)
            result.created += 1
        elif any(getattr(obj, k) != v for k, v in values.items()):
            Region.objects.filter(code=code).update(**values)
            result.updated += 1
        else:
            result.unchanged += 1
    return result
