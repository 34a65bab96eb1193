"""Resident identity numbers (公民身份号码, GB 11643): validation and the facts they carry."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric

from shouhu.lib.text import normalize_compact


@dataclass(frozen=True)
class IdNumber:
    value: str  # normalised: 18 characters, upper-case X
    birth_date: date
    gender: str  # "M" or "F"
    birth_place: str  # the 6-digit region code of first registration


def normalize_id_number(raw: str) -> str:
    """Full-width digits, spaces and a lower-case x are what people type; normalise them."""
    return normalize_compact(raw or "")


@functools.lru_cache(maxsize=8192)
def _birth_place_known(place: str, year: int) -> bool:
    """python-stdnum's place check (the code existed in the birth year), memoised: it reads its
    table of codes on every call, about a tenth of a survey import's validation."""
    try:
        ric.get_birth_place(f"{place}{year:04d}0101000")
    except stdnum_exc.ValidationError:
        return False
    return True


def parse_id_number(raw: str, *, today: date | None = None) -> IdNumber:
    """Validate an 18-digit resident ID; raise ValidationError with a Chinese message."""
    value = normalize_id_number(raw)
    if not value:
        raise ValidationError(_("请填写身份证号。"), code="required")
    if len(value) == 15:
        raise ValidationError(_("这是15位旧身份证号，请填写18位公民身份号码。"), code="legacy")
    if len(value) != 18:
        raise ValidationError(_("身份证号应为18位，当前为%(n)d位。") % {"n": len(value)}, code="length")
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise ValidationError(_("身份证号只能包含数字，最后一位可以是X。"), code="format")
    try:
        birth = ric.get_birth_date(value)
    except (stdnum_exc.ValidationError, ValueError):
        raise ValidationError(_("身份证号中的出生日期（第7-14位）不是有效日期。"), code="birth_date") from None
    if value[17] != ric.calc_check_digit(value):
        raise ValidationError(_("身份证号校验位不正确，请逐位核对。"), code="checksum")
    if not _birth_place_known(value[:6], birth.year):
        # The birth date was checked above: what is left is the place code (first 6 digits),
        # unknown or not yet in existence in the birth year (e.g. 320412 before 2002).
        raise ValidationError(_("身份证号前6位的地区代码不存在，或在出生年份尚未设立，请核对。"), code="birth_place")
    if birth > (today or date.today()):
        raise ValidationError(_("身份证号中的出生日期晚于今天，请核对。"), code="future")
    gender = "M" if int(value[16]) % 2 == 1 else "F"
    return IdNumber(value=value, birth_date=birth, gender=gender, birth_place=value[:6])


def make_id_number(region6: str, birth: date, sequence: int) -> str:
    """Build a valid ID number (for demo data and tests): `sequence` is 0-999, odd for males."""
    body = f"{region6}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum ignores the last character
