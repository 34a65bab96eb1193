"""The bearer token check: one query (token, user, organisation, roles), refusing wrong, revoked
and inactive credentials, and reading the roles afresh on every request."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from shouhu.api.auth import BearerAuth, hash_token, issue_token
from shouhu.api.models import ApiToken
from shouhu.org.models import Role, UserRole

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"


def _get(token: str) -> int:
    return Client().get(TASKS, HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_the_token_user_and_roles_come_in_one_query(users, django_assert_num_queries):
    token = issue_token(users["school_hutang"])
    assert _get(token) == 200  # the first use writes last_used_at (then once a minute)
    request = RequestFactory().get(TASKS)
    with django_assert_num_queries(1):
        user = BearerAuth().authenticate(request, token)
    assert user == users["school_hutang"] and user.role_set == frozenset({Role.REPORTER, Role.UNIT_STAFF})


def test_wrong_revoked_and_inactive_are_refused(users):
    token = issue_token(users["school_hutang"])
    assert _get(token) == 200
    assert _get(token[:-1] + ("A" if token[-1] != "A" else "B")) == 401  # one character off
    assert _get("shk_" + "x" * 43) == 401
    assert _get(hash_token(token)) == 401  # the stored hash is no token
    ApiToken.objects.filter(key_hash=hash_token(token)).update(revoked_at=timezone.now())
    assert _get(token) == 401
    other = issue_token(users["police_hutang"])
    users["police_hutang"].is_active = False
    users["police_hutang"].save(update_fields=["is_active"])
    assert _get(other) == 401


def test_a_role_taken_away_counts_from_the_next_request(users):
    user = users["school_hutang"]
    token = issue_token(user)
    assert _get(token) == 200
    UserRole.objects.filter(user=user, role=Role.UNIT_STAFF).delete()
    assert _get(token) == 403  # the unit's task list needs the unit-staff role it no longer has
    UserRole.objects.filter(user=user).delete()
    assert _get(token) == 403  # no role at all: a valid token opens nothing
    UserRole.objects.create(user=user, role=Role.UNIT_STAFF)
    assert _get(token) == 200
