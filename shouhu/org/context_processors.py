from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from shouhu.org.access import Cap, scope_for


def shouhu(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    scope = scope_for(user)
    return {
        "DEMO_MODE": settings.DEMO_MODE,
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME * 60),
        "scope": scope,
        "can": {cap.name.lower(): scope.can(cap) for cap in Cap},
    }
