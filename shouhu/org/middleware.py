"""Deny by default, session timeouts, and no-store caching for pages with personal data."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from shouhu.org.access import rule_of, scope_for
from shouhu.org.mfa import MFA_URL_NAMES, mfa_pending

logger = logging.getLogger(__name__)

# URL namespaces that enforce access themselves: the API checks each operation's declaration
# when it is registered (shouhu.api.router), the admin site through ShouhuAdminSite.has_permission.
SELF_GUARDED_NAMESPACES = {"api", "admin"}


class AccessMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            # Pages of a logged-in user may carry personal data: never into a shared cache or history.
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is not None and match.namespaces and match.namespaces[0] in SELF_GUARDED_NAMESPACES:
            return None
        if getattr(view_func, "__module__", "").startswith("django.views.static"):
            return None
        rule = rule_of(view_func)
        if rule is None:
            logger.error("view %s declares no access rule: refused", getattr(view_func, "__name__", view_func))
            return forbidden(request, undeclared=True)
        if rule.public:
            return None  # public views (login, the second-factor pages) handle their own state
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if mfa_pending(request) and (match is None or match.url_name not in MFA_URL_NAMES):
            return redirect_to_login(request.get_full_path(), login_url=reverse("mfa_verify"))
        if not rule.permits(scope_for(request.user)):
            return forbidden(request)
        return None


def forbidden(request: HttpRequest, *, undeclared: bool = False) -> HttpResponse:
    message = _("此页面未声明访问规则，已拒绝。") if undeclared else _("您的角色无权访问此页面。")
    return render(request, "403.html", {"message": message}, status=403)


class SessionTimeoutMiddleware:
    """Idle timeout and absolute lifetime of a login session (等保 2.0)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            session = request.session
            login_at = session.get("shouhu_login_at", now)
            last_seen = session.get("shouhu_last_seen", now)
            if now - last_seen > settings.SHOUHU_SESSION_IDLE_SECONDS or (
                now - login_at > settings.SHOUHU_SESSION_ABSOLUTE_SECONDS
            ):
                logout(request)
                if request.path.startswith("/api/"):
                    return self.get_response(request)
                return redirect_to_login(request.get_full_path())
            session.setdefault("shouhu_login_at", now)
            if now - last_seen >= 30 or "shouhu_last_seen" not in session:
                session["shouhu_last_seen"] = now
        return self.get_response(request)


class DatabaseBusyMiddleware:
    """A write that waited past the database's lock timeout answers 503 with a Chinese sentence and
    Retry-After, never a 500. Only the embedded SQLite database (demo, single office) has one
    writer at a time: a large survey import holds it for its whole all-or-nothing transaction.
    Placed outermost, so it also covers the session save in SessionMiddleware's response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.db import OperationalError

        try:
            return self.get_response(request)
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            logger.warning("database busy: %s %s", request.method, request.path)
            response = render(
                request,
                "503.html",
                {"message": _("系统正忙（可能正在导入大批数据），您的操作没有保存。请稍等一两分钟后重试。")},
                status=503,
            )
            response["Retry-After"] = "60"
            return response
