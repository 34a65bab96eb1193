"""Printable documents: a Django template rendered to PDF bytes with WeasyPrint.

Templates extend `pdf/base.html`: A4, the platform's name and 内部资料 in the page header, the
viewer and the time in the footer with 第 X 页 / 共 Y 页, and the viewer's name, organisation and
time as a light diagonal watermark on every page. The font is the bundled Noto Sans SC subset
(`shouhu/lib/fonts/`, made by `make_subset.py`), so a document looks the same on any server; a
character outside it falls back to the system's CJK font.

WeasyPrint never goes to the network: the URL fetcher serves `file:` URLs inside the project's
`shouhu/` folder and refuses everything else (http, data, a file elsewhere), so neither a
template nor text typed by a user can make the server fetch a URL. Debian's
`libharfbuzz-subset0` keeps a page well under a second (about 6 s a page without it).
WeasyPrint is imported on first use: the import alone takes one to two seconds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

ROOT = Path(__file__).resolve().parent.parent  # the `shouhu` package: templates' relative URLs start here
BASE_URL = ROOT.as_uri() + "/"
FONT_DIR = Path(__file__).resolve().parent / "fonts"
CONTENT_TYPE = "application/pdf"


class Viewer(Protocol):
    """Who the document is printed for (`shouhu.lib.workbook.Watermark` fits)."""

    @property
    def who(self) -> str: ...

    @property
    def organization(self) -> str: ...

    @property
    def when(self) -> str: ...


def project_file(url: str) -> Path:
    """The file a `file:` URL names, if it is inside the project; ValueError for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ValueError(f"refused (not a project file): {url[:100]}")
    path = Path(url2pathname(parts.path)).resolve()
    if not path.is_relative_to(ROOT) or not path.is_file():
        raise ValueError(f"refused (outside the project): {url[:100]}")
    return path


@functools.cache
def _fetcher_class() -> type:
    from weasyprint.urls import URLFetcher

    class ProjectFilesOnly(URLFetcher):
        """Fetch files inside the project; refuse any other URL (WeasyPrint logs and skips it)."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            return super().fetch(project_file(url).as_uri(), headers)

    return ProjectFilesOnly


def css_string(text: str) -> str:
    """A CSS string literal: letters, digits, CJK and spaces as they are, anything else escaped."""
    out = []
    for char in text:
        if char.isalnum() or char == " " or ord(char) > 0x7F and char.isprintable():
            out.append(char)
        else:
            out.append(f"\\{ord(char):x} ")  # the space ends the escape and is consumed with it
    return '"' + "".join(out) + '"'


def page_counter() -> SafeString:
    """The CSS `content` of the page number: 第 X 页 / 共 Y 页 from one translatable string."""
    text = _("第 %(page)s 页 / 共 %(pages)s 页")
    parts = []
    for piece in re.split(r"(%\(page\)s|%\(pages\)s)", text):
        if piece == "%(page)s":
            parts.append("counter(page)")
        elif piece == "%(pages)s":
            parts.append("counter(pages)")
        elif piece:
            parts.append(css_string(piece))
    return mark_safe(" ".join(parts))  # every literal piece went through css_string


def render_pdf(template_name: str, context: dict[str, Any], *, viewer: Viewer) -> bytes:
    """The template rendered to a PDF, watermarked for `viewer`."""
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    html = render_to_string(template_name, {**context, "viewer": viewer, "page_counter": page_counter()})
    document = HTML(string=html, base_url=BASE_URL, url_fetcher=_fetcher_class()(), media_type="print")
    return bytes(document.write_pdf(font_config=FontConfiguration()))


def pdf_response(data: bytes, *, filename: str, ascii_filename: str) -> HttpResponse:
    """A download: `filename*` in UTF-8 for today's browsers, an ASCII `filename` for the rest."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ascii_filename) or "document.pdf"
    response = HttpResponse(data, content_type=CONTENT_TYPE)
    response["Content-Disposition"] = f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename, safe='')}"
    response["Cache-Control"] = "no-store"
    return response
