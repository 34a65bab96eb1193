from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def may_log_in(user: Any) -> bool:
    """Demo accounts exist only in demo mode: outside it they cannot log in or use a token."""
    return bool(user.is_active) and (settings.DEMO_MODE or not getattr(user, "is_demo", False))


class ShouhuBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return may_log_in(user)
