"""API authentication (bearer token or the browser session) and the per-operation access check."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Aggregate, CharField, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from ninja import Router
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from shouhu.api.models import ApiToken
from shouhu.org.access import AccessRule, rule_of, scope_for
from shouhu.org.backends import may_log_in
from shouhu.org.mfa import mfa_pending
from shouhu.org.models import User

TOKEN_PREFIX = "shk_"


def hash_token(token: str) -> str:
    """SHA-256 of the token: tokens are 256-bit random strings, so a fast unkeyed hash is enough
    (a slow password hash would only cost every request its milliseconds)."""
    return hashlib.sha256(token.encode()).hexdigest()


class _JoinedRoles(Aggregate):
    """A user's role codes joined by commas (string_agg on PostgreSQL, group_concat on SQLite)."""

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s, ',')"
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra_context)


def _role_codes() -> Subquery:
    from shouhu.org.models import UserRole

    return Subquery(
        UserRole.objects.filter(user_id=OuterRef("user_id"))
        .order_by()
        .values("user_id")
        .annotate(codes=_JoinedRoles("role"))
        .values("codes")[:1]
    )


@functools.cache
def _tokens_in_force() -> QuerySet[ApiToken]:
    """The tokens not revoked, each with its user, the user's organisation and role codes (the
    access check's): built once per process and filtered by each request's token (resolving the
    roles' subquery anew was a third of the check's time). Querysets clone on `filter`: this one
    is never evaluated itself."""
    return (
        ApiToken.objects.select_related("user", "user__organization")
        .annotate(role_codes=_role_codes())
        .filter(revoked_at__isnull=True)
    )


def issue_token(user: Any) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=hash_token(token), prefix=token[:12])
    return token


class AuthedRequest(HttpRequest):
    """The request an API operation receives: authentication passed and ninja set `auth` to what
    the authenticator returned, a `User` (BearerAuth, ActiveSessionAuth). For annotations only:
    ninja passes Django's own request object."""

    auth: User


class RuleCheck:
    """Checks the operation's declared capabilities right after authentication, before the body
    is parsed: a role that may not use an operation gets 403, whatever it sends."""

    def __init__(self, rule: AccessRule | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule

    def __call__(self, request: HttpRequest) -> Any:
        user = super().__call__(request)  # type: ignore[misc]
        if user and self.rule is not None and not self.rule.permits(scope_for(user)):
            raise HttpError(403, gettext("您的角色无权使用此接口。"))
        return user


class BearerAuth(RuleCheck, HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        # One query: the token, its user, the user's organisation and roles (the access check's).
        row = _tokens_in_force().filter(key_hash=hash_token(token)).first()
        if row is None or not may_log_in(row.user):
            return None
        row.user._role_cache = frozenset(code for code in (getattr(row, "role_codes", None) or "").split(",") if code)
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        request.user = row.user
        return row.user


class ActiveSessionAuth(RuleCheck, SessionAuth):
    def authenticate(self, request: HttpRequest, key: Any) -> Any:
        user = super().authenticate(request, key)
        if user is None or not may_log_in(user) or mfa_pending(request):
            return None
        return user


class GuardedRouter(Router):
    """Refuses, at import time, an operation that declares no access rule (deny by default),
    and checks the declared capabilities on every call."""

    def add_api_operation(self, path: str, methods: list[str], view_func: Callable[..., Any], **kwargs: Any) -> None:
        rule = rule_of(view_func)
        if rule is None:
            raise ImproperlyConfigured(f"API operation {view_func.__name__} declares no access rule")
        if not rule.public:
            kwargs["auth"] = [BearerAuth(rule), ActiveSessionAuth(rule)]

        @functools.wraps(view_func)
        def guarded(request: AuthedRequest, *args: Any, **kw: Any) -> Any:
            if not rule.permits(scope_for(request.auth)):
                raise HttpError(403, gettext("您的角色无权使用此接口。"))  # defence in depth
            return view_func(request, *args, **kw)

        return super().add_api_operation(path, methods, guarded, **kwargs)


def docs_access(view: Callable[..., Any]) -> Callable[..., Any]:
    """The OpenAPI document and docs page: a bearer token, or a fully logged-in session."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        from django.contrib.auth.views import redirect_to_login
        from django.urls import reverse

        if BearerAuth()(request):
            return view(request, *args, **kwargs)
        if request.user.is_authenticated and may_log_in(request.user):
            if mfa_pending(request):
                return redirect_to_login(request.get_full_path(), login_url=reverse("mfa_verify"))
            return view(request, *args, **kwargs)
        return redirect_to_login(request.get_full_path())

    return wrapped
