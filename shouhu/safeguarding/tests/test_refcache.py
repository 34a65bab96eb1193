"""The per-process memo of reference data on the submission path (shouhu/lib/refcache.py): a
station's jurisdiction or a deadline changed in this process applies to the very next report;
in another process (simulated: a change that sends no signal) within the TTL, never later."""

from __future__ import annotations

import pytest
from django.utils import timezone

from shouhu.lib import refcache
from shouhu.org.models import Organization, OrgKind, Region
from shouhu.policy.models import PolicyParameter
from shouhu.safeguarding import services
from shouhu.safeguarding.models import DeadlineKind, Report
from shouhu.safeguarding.tests.test_api import _body


def _submit(client, users, code: str) -> Report:  # noqa: ANN001
    from shouhu.safeguarding.tests.test_api import Api

    response = Api(client, users["school_hutang"]).post("/reports", _body(code))
    assert response.status_code == 201, response.content
    return Report.objects.get(pk=response.json()["id"])


@pytest.mark.django_db
def test_a_jurisdiction_moved_in_the_admin_routes_the_next_report(client, users, hutang_village):
    town = Region.objects.get(code=services.town_of(hutang_village))
    first = _submit(client, users, hutang_village.code)
    old = first.police_station
    assert old is not None
    new = Organization.objects.create(name="湖塘第二派出所", kind=OrgKind.POLICE_STATION, code="bench_ps_2")
    old.regions.remove(town)  # m2m_changed: the memo is cleared
    new.regions.add(town)
    assert _submit(client, users, hutang_village.code).police_station == new


@pytest.mark.django_db
def test_a_change_without_a_signal_applies_within_the_ttl(client, users, hutang_village, settings, monkeypatch):
    settings.SHOUHU_REFCACHE_SECONDS = 30
    now = [1000.0]
    monkeypatch.setattr(refcache.time, "monotonic", lambda: now[0])
    first = _submit(client, users, hutang_village.code)
    Organization.objects.filter(pk=first.police_station_id).update(is_active=False)  # no signal: another process
    assert _submit(client, users, hutang_village.code).police_station_id == first.police_station_id
    now[0] += 31
    assert _submit(client, users, hutang_village.code).police_station_id is None


@pytest.mark.django_db
def test_a_deadline_set_on_the_policy_page_applies_to_the_next_report(client, users, hutang_village):
    def accept_minutes(report: Report) -> float:
        due = report.deadlines.get(kind=DeadlineKind.ACCEPT).due_at
        return round((due - report.created_at).total_seconds() / 60)

    first = _submit(client, users, hutang_village.code)  # situation 4: urgent
    assert first.urgent and accept_minutes(first) == 60
    PolicyParameter.objects.create(
        key="report_accept_urgent_minutes",
        value=30,
        source="test",
        effective_from=timezone.localdate(),
        set_by=users["district"],
    )
    assert accept_minutes(_submit(client, users, hutang_village.code)) == 30


def test_zero_seconds_turns_the_memo_off(settings):
    settings.SHOUHU_REFCACHE_SECONDS = 0
    calls = []
    for _ in range(3):
        refcache.memo("t", 1, lambda: calls.append(1))
    assert len(calls) == 3


def test_a_clear_during_a_computation_keeps_its_answer_out(settings):
    settings.SHOUHU_REFCACHE_SECONDS = 30

    def compute() -> str:
        refcache.clear()  # a change saved while the old value was being read
        return "stale"

    assert refcache.memo("t", 2, compute) == "stale"
    assert refcache.memo("t", 2, lambda: "fresh") == "fresh"
