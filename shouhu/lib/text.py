"""Small normalisers for what people type: full-width characters, ID numbers, phones, pinyin."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pypinyin.converter import UltimateConverter
from pypinyin.core import Pinyin

_SPACES = re.compile(r"\s+")


class _KeptStyles(UltimateConverter):
    """The converter `pypinyin.lazy_pinyin` makes on every call (its options at their defaults),
    made once, keeping what each character's reading became in each style: putting a reading in
    a style is a few regular-expression substitutions, and names repeat their characters (a
    survey import names about five people a row)."""

    LIMIT = 50_000  # readings kept (there are about 8,000 characters in common use)

    def __init__(self) -> None:
        super().__init__(v_to_u=False, neutral_tone_with_five=False, tone_sandhi=False)
        self._kept: dict[tuple[Any, ...], Any] = {}

    def convert_style(self, han: str, orig_pinyin: str, style: Any, strict: Any, **kwargs: Any) -> Any:
        if kwargs:
            return super().convert_style(han, orig_pinyin, style=style, strict=strict, **kwargs)
        key = (han, orig_pinyin, style, strict)
        kept = self._kept.get(key)
        if kept is None:
            kept = super().convert_style(han, orig_pinyin, style=style, strict=strict)
            if len(self._kept) < self.LIMIT:
                self._kept[key] = kept
        return kept


_PINYIN = Pinyin(_KeptStyles())


def normalize_text(value: str) -> str:
    """NFKC (full-width digits and letters become ASCII), collapse white space."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def normalize_compact(value: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).upper()


def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials of a Chinese name: 张三 -> ("zhangsan", "zs")."""
    syllables = [s.lower() for s in _PINYIN.lazy_pinyin(name, errors="ignore") if s.strip()]
    full = "".join(syllables)
    initials = "".join(s[0] for s in syllables if s)
    return full[:120], initials[:30]


def mask_id_number(value: str) -> str:
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_address(value: str) -> str:
    if len(value) <= 6:
        return value[:2] + "****"
    return value[:6] + "****"
