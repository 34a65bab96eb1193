"""Typed requests, for views' annotations only: what the middleware adds to Django's request.

Django passes its own request object; these classes tell the type checker what a view may rely on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from shouhu.org.models import User


class UserRequest(HttpRequest):
    """The request of an `@allow` view: AccessMiddleware lets only a logged-in user reach one."""

    user: User


class HtmxUserRequest(UserRequest):
    """... with django-htmx's `request.htmx` (HtmxMiddleware)."""

    htmx: HtmxDetails
