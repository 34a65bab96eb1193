"""The security baseline (等保 2.0 level 3, application layer): headers, sessions, logins, URLs."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
import time
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from shouhu.audit.models import Action, AuditEvent
from shouhu.org.models import User
from shouhu.registry.demo import DEMO_PASSWORD
from shouhu.registry.models import Child

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[3]


def _client(user: User | None = None, ip: str = "10.0.2.7") -> Client:
    client = Client(REMOTE_ADDR=ip)
    if user is not None:
        client.force_login(user)
    return client


def _pages(users: dict[str, User], child: Child) -> list[tuple[Client, str]]:
    """A logged-in page of every kind: home, ledger, child, forms, stats, audit, API, admin, errors."""
    district, admin = _client(users["district"]), _client(users["admin"])
    return [
        (district, reverse("home")),
        (district, reverse("registry:ledger")),
        (district, reverse("registry:child_detail", args=[child.pk])),
        (district, reverse("registry:child_detail", args=[child.pk]) + "?tab=history"),
        (district, reverse("registry:child_edit", args=[child.pk])),
        (district, reverse("registry:child_create")),
        (district, reverse("stats")),
        (district, reverse("audit:log")),
        (district, "/api/v1/children"),
        (district, f"/api/v1/children/{child.pk}"),
        (district, "/api/v1/openapi.json"),
        (district, "/api/v1/docs"),
        (district, "/children/00000000-0000-4000-8000-000000000000/"),  # 404
        (_client(users["leader"]), reverse("registry:ledger")),  # 403
        (admin, reverse("admin:index")),
        (admin, reverse("admin:org_user_changelist")),
    ]


# ----- headers -----------------------------------------------------------------------------------


def test_every_authenticated_response_is_not_stored(users, hutang_village, make_child):
    child = make_child(hutang_village)
    for client, url in _pages(users, child):
        response = client.get(url)
        assert response.status_code in {200, 403, 404}, url
        assert "no-store" in response["Cache-Control"], url


CSP_SOURCES_ALLOWED = {"'self'", "'none'", "data:"}


def _csp(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_content_security_policy_allows_no_third_party_origin(users, hutang_village, make_child):
    child = make_child(hutang_village)
    responses = [_client().get(reverse("login"))] + [client.get(url) for client, url in _pages(users, child)]
    for response in responses:
        csp = _csp(response)
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["default-src"] == ["'self'"]
        assert csp["object-src"] == ["'none'"]
        for name, sources in csp.items():
            assert set(sources) <= CSP_SOURCES_ALLOWED, f"{name}: {sources}"
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]


def test_other_security_headers(users):
    for response in (
        _client().get(reverse("login")),
        _client(users["district"]).get(reverse("home")),
        _client(users["district"]).get("/api/v1/children"),
    ):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def test_pages_load_nothing_from_another_origin(users, hutang_village, make_child):
    """Government intranets have no internet: every script, style and font comes from the project."""
    child = make_child(hutang_village)
    for client, url in [(_client(), reverse("login")), *_pages(users, child)]:
        response = client.get(url)
        if "html" not in response.get("Content-Type", ""):
            continue
        foreign = [
            link
            for link in ASSET.findall(response.content.decode())
            if re.match(r"^(?:[a-z]+:)?//", link, re.IGNORECASE)
        ]
        assert foreign == [], url


# ----- sessions ----------------------------------------------------------------------------------


def _age_session(client: Client, **seconds_ago: int) -> None:
    session = client.session
    now = int(time.time())
    for key, ago in seconds_ago.items():
        session[f"shouhu_{key}"] = now - ago
    session.save()


def _logged_out(client: Client) -> bool:
    return "_auth_user_id" not in client.session


def test_session_survives_within_the_idle_timeout(users):
    client = _client(users["village_hutang"])
    _age_session(client, last_seen=29 * 60)
    assert client.get(reverse("home")).status_code == 200


def test_idle_session_times_out_after_30_minutes(users):
    assert django_settings.SHOUHU_SESSION_IDLE_SECONDS == 30 * 60
    user = users["village_hutang"]
    client = _client(user)
    _age_session(client, last_seen=31 * 60)
    response = client.get(reverse("registry:ledger"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert _logged_out(client)
    assert client.get(reverse("home")).status_code == 302  # and stays logged out
    assert AuditEvent.objects.filter(action=Action.LOGOUT, actor_id=user.pk).exists()


def test_idle_api_session_answers_401(users):
    client = _client(users["village_hutang"])
    _age_session(client, last_seen=31 * 60)
    assert client.get("/api/v1/children").status_code == 401
    assert _logged_out(client)


def test_absolute_session_lifetime_logs_out_an_active_user(users):
    assert django_settings.SHOUHU_SESSION_ABSOLUTE_SECONDS == 12 * 3600
    client = _client(users["village_hutang"])
    _age_session(client, login_at=12 * 3600 + 60, last_seen=10)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert _logged_out(client)


def test_logout_destroys_the_server_side_session(users):
    client = _client(users["village_hutang"])
    key = client.session.session_key
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    assert store().exists(key)
    client.post(reverse("logout"))
    assert not store().exists(key)


# ----- logins ------------------------------------------------------------------------------------


def _login(client: Client, username: str, password: str) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.fixture
def demo_account(users):
    user = users["village_hutang"]
    User.objects.filter(pk=user.pk).update(is_demo=True)
    return user


def test_demo_account_logs_in_in_demo_mode_and_the_login_is_audited(demo_account, settings):
    settings.DEMO_MODE = True
    client = _client(ip="10.3.0.1")
    response = _login(client, demo_account.username, DEMO_PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(demo_account.pk)
    event = AuditEvent.objects.filter(action=Action.LOGIN, actor_id=demo_account.pk).latest("seq")
    assert event.ip == "10.3.0.1" and event.organization_id == demo_account.organization_id


def test_demo_account_cannot_log_in_outside_demo_mode(demo_account, settings):
    settings.DEMO_MODE = False
    client = _client(ip="10.3.0.2")
    response = _login(client, demo_account.username, DEMO_PASSWORD)
    assert response.status_code == 200 and "用户名或密码不正确" in response.content.decode()
    assert _logged_out(client)
    assert AuditEvent.objects.filter(
        action=Action.LOGIN_FAILED, actor_name=demo_account.username, ip="10.3.0.2"
    ).exists()
    # ... nor use a token it was issued before.
    from shouhu.api.auth import issue_token

    token = issue_token(demo_account)
    assert Client().get("/api/v1/children", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_ordinary_account_logs_in_outside_demo_mode(users, settings):
    settings.DEMO_MODE = False
    user = users["town_hutang"]  # conftest turned the demo accounts into ordinary ones
    client = _client(ip="10.3.0.3")
    assert _login(client, user.username, DEMO_PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_login_failure_is_audited_without_the_password(users):
    client = _client(ip="10.3.0.4")
    response = _login(client, "town_hutang", "wrong-password-1")
    assert response.status_code == 200
    event = AuditEvent.objects.filter(action=Action.LOGIN_FAILED, actor_name="town_hutang").latest("seq")
    assert event.ip == "10.3.0.4"
    assert "wrong-password-1" not in str(event.detail)


def test_new_session_id_at_login(users):
    client = _client(ip="10.3.0.5")
    session = client.session
    session["before_login"] = True
    session.save()
    before = session.session_key
    assert _login(client, "town_hutang", DEMO_PASSWORD).status_code == 302
    assert client.session.session_key != before
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    assert not store().exists(before)


def test_lockout_after_five_failures(users):
    assert django_settings.AXES_FAILURE_LIMIT == 5
    client = _client(ip="10.3.0.6")
    responses = [_login(client, "town_niutang", f"wrong-{i}") for i in range(5)]
    assert [r.status_code for r in responses[:4]] == [200] * 4
    locked = _login(client, "town_niutang", DEMO_PASSWORD)  # even the right password, now
    assert locked.status_code in {403, 429}
    assert "登录失败次数过多" in locked.content.decode()
    assert _logged_out(client)
    assert AuditEvent.objects.filter(action=Action.LOCKOUT, actor_name="town_niutang", ip="10.3.0.6").exists()
    # Another user at another address is not affected.
    assert _login(_client(ip="10.3.0.66"), "town_hutang", DEMO_PASSWORD).status_code == 302


def test_admin_site_requires_the_second_factor(users, settings):
    """The admin guards itself (AccessMiddleware leaves its namespace alone), second factor included."""
    settings.SHOUHU_MFA_REQUIRED = True
    client = _client(users["admin"])
    response = client.get(reverse("admin:org_user_changelist"), follow=True)
    visited = [urlsplit(url).path for url, _ in response.redirect_chain]
    assert reverse("mfa_verify") in visited and visited[-1] == reverse("mfa_setup")
    assert "admin/org/user" not in response.content.decode()


# ----- production settings -----------------------------------------------------------------------


def test_check_deploy_passes_with_production_settings(tmp_path):
    """`manage.py check --deploy` in a fresh interpreter (no pytest, so not TESTING) with production env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOUHU_", "PYTEST", "DJANGO_"))}
    env |= {
        "SHOUHU_SECRET_KEY": secrets.token_urlsafe(64),
        "SHOUHU_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SHOUHU_DEMO": "0",
        "SHOUHU_SECURE": "1",
        "SHOUHU_ALLOWED_HOSTS": "shouhu.wj.gov.example",
        "SHOUHU_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# ----- no personal data in URLs ------------------------------------------------------------------


def test_ledger_search_posts_to_a_url_without_the_query(users, hutang_village, make_child):
    child = make_child(hutang_village, name="检索娃")
    client = _client(users["village_hutang"])
    html = client.get(reverse("registry:ledger")).content.decode()
    form = re.search(r'<form[^>]*role="search"[^>]*>', html)
    assert form is not None
    assert 'method="post"' in form.group(0)
    action = re.search(r'action="([^"]*)"', form.group(0)).group(1)
    assert unquote(action).startswith(reverse("registry:search")) and "q=" not in action

    for query in (child.id_number, "检索娃", "jsw"):
        response = client.post(action, {"q": query})
        assert response.status_code == 302
        location = response["Location"]
        for secret in (query, quote(query), child.id_number, child.id_number[-6:], "检索娃", quote("检索娃")):
            assert secret not in location and secret not in unquote(location), (query, location)
        assert "检索娃" in client.get(location).content.decode(), query  # the search still finds the child
    searches = AuditEvent.objects.filter(action=Action.SEARCH, actor_id=users["village_hutang"].pk)
    assert searches.count() == 3
    assert not [e for e in searches if child.id_number in str(e.detail) or "检索娃" in str(e.detail)]


def test_api_refuses_an_id_number_in_the_query_string(users, hutang_village, make_child):
    child = make_child(hutang_village)
    client = _client(users["village_hutang"])
    for id_number in (child.id_number, child.id_number.lower(), child.id_number[:17]):
        response = client.get("/api/v1/children", {"q": id_number})
        assert response.status_code == 400, id_number
    found = client.post("/api/v1/children/search", {"q": child.id_number}, content_type="application/json")
    assert found.status_code == 200 and [c["id"] for c in found.json()["items"]] == [str(child.pk)]


def test_a_locked_database_answers_503_in_chinese_not_500(rf):
    """SQLite has one writer: a request that waits past the lock timeout gets a sentence and Retry-After."""
    from django.contrib.auth.models import AnonymousUser
    from django.db import OperationalError

    from shouhu.org.middleware import DatabaseBusyMiddleware

    def locked(request):
        raise OperationalError("database is locked")

    request = rf.get("/children/")
    request.user = AnonymousUser()
    response = DatabaseBusyMiddleware(locked)(request)
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert "系统正忙" in response.content.decode()

    def broken(request):
        raise OperationalError("no such table: registry_child")

    with pytest.raises(OperationalError):  # any other database error is a real fault, not hidden
        DatabaseBusyMiddleware(broken)(request)
