"""Reports and tasks through the API: idempotent submission, scoped reads, the organisation's tasks."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from shouhu.api.auth import issue_token
from shouhu.org.models import User
from shouhu.safeguarding import services
from shouhu.safeguarding.models import Report, Source

API = "/api/v1"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _body(region_code: str, **extra):
    return {
        "situations": [4, 9],
        "child": {"name": "小红", "sex": "F", "age": 9},
        "found_at": timezone.localtime().replace(microsecond=0, tzinfo=None).isoformat(),
        "place_region_code": region_code,
        "place": "学校门口",
        "description": "手臂多处淤青，说是被打的",
        "danger_now": False,
        **extra,
    }


class Api:
    def __init__(self, client: Client, user: User) -> None:
        self.client = client
        self.auth = f"Bearer {issue_token(user)}"

    def get(self, path: str):  # noqa: ANN201
        response = self.client.get(API + path, HTTP_AUTHORIZATION=self.auth)
        assert response.status_code < 500, response.content
        return response

    def post(self, path: str, body: object, key: str | None = None):  # noqa: ANN201
        extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        response = self.client.post(
            API + path, body, content_type="application/json", HTTP_AUTHORIZATION=self.auth, **extra
        )
        assert response.status_code < 500, response.content
        return response


@pytest.fixture
def api_as(db, client, users):  # noqa: ANN001
    return lambda username: Api(client, users[username])


@pytest.mark.django_db
def test_a_submission_gets_201_and_a_retry_with_the_same_key_the_same_report(api_as, hutang_village):
    school = api_as("school_hutang")
    first = school.post("/reports", _body(hutang_village.code), key="sis-20261129-0001")
    assert first.status_code == 201
    out = first.json()
    assert set(out) == {"id", "status", "receipt_code", "urgent", "created_at"}
    assert out["status"] == "received" and out["urgent"] is True and len(out["receipt_code"]) == 10
    again = school.post("/reports", _body(hutang_village.code, description="另一段文字"), key="sis-20261129-0001")
    assert again.status_code == 200 and again.json()["id"] == out["id"]
    assert Report.objects.count() == 1
    report = Report.objects.get()
    assert report.source == Source.API and report.reporter_org.name == "湖塘中心小学"
    assert report.police_station.name == "湖塘派出所" and report.child_sex == "F"
    other = school.post("/reports", _body(hutang_village.code), key="sis-20261129-0002")
    assert other.status_code == 201 and Report.objects.count() == 2


@pytest.mark.django_db
def test_bad_submissions_get_422_in_chinese_and_nothing_is_stored(api_as, hutang_village):
    school = api_as("school_hutang")
    cases = {
        "place_region_code": _body("320412999999"),
        "situations.0": _body(hutang_village.code, situations=[10]),
        "situations": _body(hutang_village.code, situations=[]),
        "child": _body(hutang_village.code, child={"sex": "F"}),
        "child.sex": _body(hutang_village.code, child={"name": "小红", "sex": "X"}),
        "found_at": _body(hutang_village.code, found_at=(timezone.now() + timedelta(days=2)).isoformat()),
        "description": _body(hutang_village.code, description=""),
    }
    for field, body in cases.items():
        response = school.post("/reports", body)
        assert response.status_code == 422, (field, response.content)
        errors = response.json()["errors"]
        assert field in errors, (field, errors)
        assert CJK.search(response.json()["detail"]) and all(CJK.search(m) for m in errors[field])
    assert school.post("/reports", _body(hutang_village.code), key="bad key with spaces").status_code == 422
    assert Report.objects.count() == 0


@pytest.mark.django_db
def test_a_child_named_by_id_must_be_one_the_caller_sees(api_as, hutang_village, make_child):
    child = make_child(hutang_village, name="台账小明")
    refused = api_as("school_hutang").post("/reports", _body(hutang_village.code, child={"id": str(child.pk)}))
    assert refused.status_code == 422 and "child.id" in refused.json()["errors"]
    village = api_as("village_hutang").post("/reports", _body(hutang_village.code, child={"id": str(child.pk)}))
    assert village.status_code == 201
    assert Report.objects.get().child_id == child.pk


@pytest.mark.django_db
def test_a_role_that_files_no_reports_gets_403(api_as, hutang_village):
    assert api_as("leader").post("/reports", _body(hutang_village.code)).status_code == 403
    assert api_as("procurator").post("/reports", _body(hutang_village.code)).status_code == 403


@pytest.mark.django_db
def test_each_caller_reads_what_the_report_lets_it_see(api_as, users, hutang_village, niutang_village):
    mine = api_as("school_hutang").post("/reports", _body(hutang_village.code)).json()["id"]
    elsewhere = api_as("district").post("/reports", _body(niutang_village.code)).json()["id"]

    school = api_as("school_hutang")
    own = school.get(f"/reports/{mine}")
    assert own.status_code == 200
    assert own.json()["details"] is None and own.json()["receipt_code"] and own.json()["status"] == "received"
    # A school cannot read another organisation's report: as missing as one that does not exist.
    assert school.get(f"/reports/{elsewhere}").status_code == 404
    assert school.get("/reports/999999999").status_code == 404
    assert school.get(f"/reports/{elsewhere}").json() == school.get("/reports/999999999").json()

    town = api_as("town_hutang").get(f"/reports/{mine}").json()
    assert town["details"]["description"] == "手臂多处淤青，说是被打的" and town["receipt_code"] is None
    assert api_as("town_hutang").get(f"/reports/{elsewhere}").status_code == 404
    police = api_as("police_hutang").get(f"/reports/{mine}").json()
    assert police["details"]["police_station"] == "湖塘派出所"
    supervise = api_as("procurator").get(f"/reports/{mine}").json()
    assert supervise["details"] is None and supervise["created_at"]

    report = Report.objects.get(pk=mine)
    services.report_accept(actor=users["police_hutang"], report=report, officer="张警官")
    services.report_result(actor=users["police_hutang"], report=report, outcome="已依法处理", close=False)
    after = school.get(f"/reports/{mine}").json()
    assert after["status"] == "accepted" and after["accepted_at"] and after["outcome"] == "已依法处理"
    assert "张警官" not in school.get(f"/reports/{mine}").content.decode()


@pytest.mark.django_db
def test_the_town_lists_its_task_after_the_police_notify_it(api_as, users, hutang_village):
    report_id = api_as("school_hutang").post("/reports", _body(hutang_village.code)).json()["id"]
    report = Report.objects.get(pk=report_id)
    services.check_deadlines(timezone.now() + timedelta(hours=2))  # the urgent hour to accept is gone
    police = users["police_hutang"]
    services.report_accept(actor=police, report=report, officer="张警官")
    assert not [t for t in api_as("town_hutang").get("/tasks").json()["items"] if t["report_id"] == report_id]
    services.report_notify_town(actor=police, report=report)

    page = api_as("town_hutang").get("/tasks").json()
    task = next(t for t in page["items"] if t["report_id"] == report_id)
    assert task["kind"] == "report" and task["escalated"] is True and task["overdue"] is False
    assert set(task) >= {"id", "kind", "report_id", "child_id", "due_at", "overdue", "escalated"}
    assert page["count"] >= 1
    assert not [t for t in api_as("town_niutang").get("/tasks").json()["items"] if t["report_id"] == report_id]
    assert api_as("procurator").get("/tasks").status_code == 403


# ----- the same submission three times at once -------------------------------------------------------


def _on_sqlite() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


@pytest.fixture
def committed_world(_audit_triggers_restored, transactional_db):  # noqa: ANN001
    """The fixture world, rebuilt if an earlier transactional test emptied the tables; the audit
    table's append-only triggers are off for the flush that follows this test only."""
    from shouhu.conftest import _audit_triggers, build_fixture_world

    if not User.objects.filter(username="school_hutang").exists():
        build_fixture_world()
    yield
    _audit_triggers(enabled=False)


@pytest.mark.skipif(
    _on_sqlite(),
    reason="SQLite lets one writer in at a time, so the race cannot happen there; "
    "this test runs on PostgreSQL (SHOUHU_DATABASE_URL)",
)
@pytest.mark.django_db(transaction=True)
def test_the_same_submission_sent_three_times_at_once_is_one_report(committed_world, hutang_village):
    token = f"Bearer {issue_token(User.objects.get(username='school_hutang'))}"
    body = _body(hutang_village.code)
    barrier = threading.Barrier(3)
    statuses: list[int] = []
    ids: list[int] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            response = client.post(
                API + "/reports",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=token,
                HTTP_IDEMPOTENCY_KEY="his-2026-777",
            )
            statuses.append(response.status_code)
            ids.append(response.json()["id"])
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=send) for _i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(statuses) == [200, 200, 201] and len(set(ids)) == 1
    assert Report.objects.filter(idempotency_key="his-2026-777").count() == 1
