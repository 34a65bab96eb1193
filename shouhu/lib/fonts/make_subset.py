"""Make the bundled PDF font: Noto Sans CJK SC cut down to GB2312, Regular and Bold.

Why: the printable documents (`shouhu.lib.pdf`) must look the same on any server, so the font
travels with the code instead of depending on what the host has installed; the whole Noto Sans
CJK collection is 20 MB a weight, this subset 1.6 MB. Characters outside the subset (a rare
hanzi in a child's name) fall back to the system's CJK font through the CSS font stack
(`templates/pdf/base.html`), so nothing prints as a box where `fonts-noto-cjk` is installed.

Source: Debian's `fonts-noto-cjk` (version 1:20220127, Noto Sans CJK 2.004), the collections
`/usr/share/fonts/opentype/noto/NotoSansCJK-{Regular,Bold}.ttc`; the Simplified Chinese face is
chosen by its name table ("Noto Sans CJK SC"), not by its index in the collection.

Kept: printable ASCII; Latin-1 punctuation (· × ÷ ° ±); general punctuation (— ‘’ “” …);
CJK symbols and punctuation (U+3000–303F); full-width and half-width forms (U+FF00–FFEF); and
everything GB2312 encodes — its symbol rows (①, №, ℃, arrows, box drawing, Greek, Cyrillic,
kana) and its 6,763 hanzi, derived by decoding every GB2312 two-byte code with Python's codec.
Dropped: hinting (no use in a PDF), vertical metrics, the other regions' glyph forms (`locl`),
every other script.

The subset is renamed "Noto Sans SC GB2312" (PostScript `NotoSansSCGB2312-Regular`/`-Bold`), so
a PDF's font list (`pdffonts`) tells the bundled font from the system's `NotoSansCJKsc-*`. The
licence is the SIL Open Font License 1.1 (`OFL.txt`, written beside the fonts by this script;
its reserved font name "Source" is not used). Output is reproducible: no timestamps change.

Run from the repository root, with fontTools and brotli installed (WeasyPrint brings them):

    .venv/bin/python shouhu/lib/fonts/make_subset.py [--source-dir /usr/share/fonts/opentype/noto]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

HERE = Path(__file__).resolve().parent
FAMILY = "Noto Sans SC GB2312"
PS_FAMILY = "NotoSansSCGB2312"
SOURCE_FACE = "Noto Sans CJK SC"
WEIGHTS = ("Regular", "Bold")

RANGES = (
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00BF),  # Latin-1 punctuation and signs
    (0x00D7, 0x00D7),
    (0x00F7, 0x00F7),  # × ÷
    (0x2000, 0x206F),  # general punctuation
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # full-width and half-width forms
)


def gb2312_characters() -> set[int]:
    """Every character GB2312 encodes: rows 1–9 (symbols) and 16–87 (the 6,763 hanzi)."""
    chars: set[int] = set()
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                text = bytes((high, low)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            chars.add(ord(text))
    return chars


def hanzi_count(chars: set[int]) -> int:
    return sum(1 for c in chars if 0x4E00 <= c <= 0x9FFF)


def wanted() -> set[int]:
    chars = gb2312_characters()
    for first, last in RANGES:
        chars.update(range(first, last + 1))
    return chars


def source_face(path: Path) -> int:
    """The index of the Simplified Chinese face in a Noto Sans CJK collection."""
    collection = TTCollection(str(path), lazy=True)
    for index, font in enumerate(collection.fonts):
        if font["name"].getDebugName(1) == SOURCE_FACE:
            return index
    raise SystemExit(f"{path}: no face named {SOURCE_FACE!r}")


def rename(font: TTFont, weight: str) -> None:
    ps_name = f"{PS_FAMILY}-{weight}"
    full = FAMILY if weight == "Regular" else f"{FAMILY} {weight}"
    name = font["name"]
    # Only the names that identify the font change; copyright, trademark, designers and the
    # licence (IDs 0, 7–14) stay as the original has them.
    name.names = [r for r in name.names if r.nameID not in (1, 2, 3, 4, 6, 16, 17)]
    for name_id, value in (
        (1, FAMILY),
        (2, weight),
        (3, f"{ps_name};subset of NotoSansCJKsc-{weight} 2.004"),
        (4, full),
        (6, ps_name),
    ):
        name.setName(value, name_id, 3, 1, 0x409)
        name.setName(value, name_id, 1, 0, 0)
    cff = font["CFF "].cff
    cff.fontNames = [ps_name]
    top = cff.topDictIndex[0]
    top.FullName = full
    top.FamilyName = FAMILY


def make(source_dir: Path, out_dir: Path) -> list[Path]:
    chars = wanted()
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = False
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    options.name_languages = [0x409]
    options.notdef_outline = True
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE"]
    # No `locl`: it pulls in the Japanese, Korean and Traditional forms of thousands of glyphs
    # (13,570 glyphs instead of 7,763, 2.8 MB instead of 1.6 MB) that a Simplified face never shows.
    options.layout_features = ["kern", "palt", "halt", "ccmp", "liga"]
    written = []
    for weight in WEIGHTS:
        source = source_dir / f"NotoSansCJK-{weight}.ttc"
        font = TTFont(str(source), fontNumber=source_face(source), recalcTimestamp=False)
        subsetter = subset.Subsetter(options=options)
        subsetter.populate(unicodes=chars)
        subsetter.subset(font)
        rename(font, weight)
        target = out_dir / f"{PS_FAMILY}-{weight}.otf"
        font.save(str(target))
        written.append(target)
    return written


OFL_HEADER = """\
The fonts NotoSansSCGB2312-Regular.otf and NotoSansSCGB2312-Bold.otf in this folder are subsets
of Noto Sans CJK SC 2.004 (Debian fonts-noto-cjk 1:20220127), made by make_subset.py.

Copyright © 2014-2021 Adobe (http://www.adobe.com/), with Reserved Font Name 'Source'.
Noto is a trademark of Google Inc.

This Font Software is licensed under the SIL Open Font License, Version 1.1.
This license is copied below, and is also available with a FAQ at: https://openfontlicense.org

"""


def write_licence(out_dir: Path) -> Path:
    """OFL.txt: the notice above and the licence text from Debian's copyright file."""
    copyright_file = Path("/usr/share/doc/fonts-noto-cjk/copyright")
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    # The stand-alone licence paragraph (the first "License: SIL-1.1" line only names it).
    start = (
        next(i for i, line in enumerate(lines[:-1]) if line == "License: SIL-1.1" and lines[i + 1].startswith(" ")) + 1
    )
    body = []
    for line in lines[start:]:
        if not line.startswith(" "):
            break
        body.append("" if line == " ." else line[1:])
    target = out_dir / "OFL.txt"
    target.write_text(OFL_HEADER + "\n".join(body).rstrip() + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", type=Path, default=Path("/usr/share/fonts/opentype/noto"))
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    chars = gb2312_characters()
    assert hanzi_count(chars) == 6763, hanzi_count(chars)
    for path in [*make(args.source_dir, args.out_dir), write_licence(args.out_dir)]:
        print(f"{path.name}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
