"""Small normalisers for what people type: full-width characters, ID numbers, phones, pinyin."""

from __future__ import annotations

import re
import unicodedata

from pypinyin import lazy_pinyin

_SPACES = re.compile(r"\s+")


def normalize_text(value: str) -> str:
    """NFKC (full-width digits and letters become ASCII), collapse white space."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def normalize_compact(value: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).upper()


def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials of a Chinese name: 张三 -> ("zhangsan", "zs")."""
    syllables = [s.lower() for s in lazy_pinyin(name, errors="ignore") if s.strip()]
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
