"""Translation helpers beyond django.utils.translation.

`lazy_interpolate(gettext_lazy("江苏第%(n)d类"), {"n": 3})` is a label with a named placeholder
for import time (module-level tables, model choices): the message is translated and filled in
when the label is used, in the language active then. `gettext_lazy(...) % {...}` would instead be
translated once, at import, in the default language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise, lazy


def _interpolate(message: Promise | str, params: Mapping[str, Any]) -> str:
    return str(message) % params


_interpolate_lazy = lazy(_interpolate, str)


def lazy_interpolate(message: Promise | str, params: Mapping[str, Any]) -> Any:
    """`message % params`, evaluated (and translated) each time the result is used as text."""
    return _interpolate_lazy(message, dict(params))
