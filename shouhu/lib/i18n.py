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
from django.utils.translation import get_language

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


_LABELS: dict[tuple[type, str, str | None], dict[Any, str]] = {}


def choice_label(model: type, name: str, value: Any) -> Any:
    """The label of a choice field's value as text (`value` itself when it is not a choice), as
    `get_FOO_display` gives it. The labels are turned into text once per field and language:
    `get_FOO_display` hashes the lazy choices on every call, a quarter of a large export's time."""
    key = (model, name, get_language())
    labels = _LABELS.get(key)
    if labels is None:
        field = model._meta.get_field(name)  # type: ignore[attr-defined]
        labels = _LABELS[key] = {choice: str(label) for choice, label in field.flatchoices}
    return labels.get(value, value)
