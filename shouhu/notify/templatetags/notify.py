from __future__ import annotations

from typing import Any

from django import template

from shouhu.notify.selectors import unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notifications(context: dict[str, Any]) -> int:
    """The current user's unread count for the top bar: one COUNT, only where the bar is drawn."""
    request = context.get("request")
    return unread_count(getattr(request, "user", None))
