"""Translation helpers beyond django.utils.translation.

`lazy_interpolate(gettext_lazy("江苏第%(n)d类"), {"n": 3})` is a label with a named placeholder
for import time (module-level tables, model choices): the message is translated and filled in
when the label is used, in the language active then. `gettext_lazy(...) % {...}` would instead be
translated once, at import, in the default language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from django.utils.functional import Promise, lazy

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


def _interpolate(message: Promise | str, params: Mapping[str, Any]) -> str:
    return str(message) % params


_interpolate_lazy = lazy(_interpolate, str)


def lazy_interpolate(message: Promise | str, params: Mapping[str, Any]) -> Any:
    """`message % params`, evaluated (and translated) each time the result is used as text."""
    return _interpolate_lazy(message, dict(params))


def lazy_str(message: StrPromise) -> str:
    """A lazy message where a library declares `str` but keeps the object as it is: django-ninja's
    `summary`, `title` and `description`, pydantic's `Field(description=...)`. They store it and
    the OpenAPI document renders it through Django's JSON encoder, translated in the language
    active then. Only the type changes: `lazy_str(gettext_lazy("…"))` is the same object."""
    return cast(str, message)
