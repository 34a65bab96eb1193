"""The report pages: the form, the role-shaped list, a report with its timeline and its steps."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.org.models import Organization, OrgKind, Region, Role, User, UserRole
from shouhu.safeguarding import services
from shouhu.safeguarding.models import EventKind, Report, ReportStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def town(hutang_village):
    return Region.objects.get(code=hutang_village.code[:9] + "000")


@pytest.fixture
def niutang_town(niutang_village):
    return Region.objects.get(code=niutang_village.code[:9] + "000")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _file(actor, region, **extra):
    data = {
        "situations": [4],
        "child_name": "小红",
        "child_sex": "F",
        "child_age": 9,
        "found_at": timezone.now(),
        "place_region": region,
        "place": "学校门口",
        "description": "手臂多处淤青，说是被打的",
        "danger_now": False,
        **extra,
    }
    report, _ = services.report_submit(actor=actor, data=data)
    return report


def _form_post(town, hutang_village, key, **extra):
    return {
        "key": key,
        "situations": ["4", "6"],
        "danger_now": "yes",
        "child_name": "王小花",
        "child_sex": "F",
        "child_age": "8",
        "place_town": town.code,
        "place_village": hutang_village.code,
        "place": "村口小卖部",
        "found_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "description": "孩子独自在家两天没有吃饭",
        **extra,
    }


def test_the_form_files_a_report_and_shows_the_receipt(users, town, hutang_village):
    client = _client(users["school_hutang"])
    page = client.get("/reports/new/")
    assert page.status_code == 200
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page.content.decode()).group(1)
    response = client.post("/reports/new/", _form_post(town, hutang_village, key))
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reports/{report.pk}/receipt/"
    assert report.urgent and report.danger_now and report.situations == [4, 6]
    assert report.place_region == hutang_village and report.police_station.name == "湖塘派出所"
    receipt = client.get(response["Location"])
    assert report.receipt_code in receipt.content.decode()


def test_a_double_submit_is_one_report(users, town, hutang_village):
    client = _client(users["school_hutang"])
    key = uuid.uuid4().hex
    first = client.post("/reports/new/", _form_post(town, hutang_village, key))
    second = client.post("/reports/new/", _form_post(town, hutang_village, key, description="再点了一次"))
    assert Report.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_a_form_without_situations_is_refused_and_nothing_stored(users, town, hutang_village):
    client = _client(users["school_hutang"])
    response = client.post("/reports/new/", _form_post(town, hutang_village, uuid.uuid4().hex, situations=[]))
    assert response.status_code == 400 and "请至少选择一种情形" in response.content.decode()
    assert Report.objects.count() == 0


def test_a_town_is_enough_and_villages_follow_the_town(users, town, hutang_village):
    client = _client(users["school_hutang"])
    options = client.get("/reports/new/villages/", {"place_town": town.code}).content.decode()
    assert hutang_village.name in options
    client.post("/reports/new/", _form_post(town, hutang_village, uuid.uuid4().hex, place_village=""))
    assert Report.objects.get().place_region == town


def test_each_role_lists_its_own_reports(users, town, niutang_town):
    mine = _file(users["school_hutang"], town)
    elsewhere = _file(users["district"], niutang_town)
    pages = {
        name: _client(users[name]).get("/reports/").content.decode()
        for name in (
            "school_hutang",
            "police_hutang",
            "police",
            "town_hutang",
            "town_niutang",
            "district",
            "procurator",
        )
    }
    assert mine.receipt_code in pages["school_hutang"] and elsewhere.receipt_code not in pages["school_hutang"]
    assert mine.receipt_code in pages["police_hutang"] and elsewhere.receipt_code not in pages["police_hutang"]
    assert mine.receipt_code in pages["town_hutang"] and elsewhere.receipt_code not in pages["town_hutang"]
    assert elsewhere.receipt_code in pages["town_niutang"] and mine.receipt_code not in pages["town_niutang"]
    for wide in ("police", "district", "procurator"):
        assert mine.receipt_code in pages[wide] and elsewhere.receipt_code in pages[wide]
    assert "各派出所响应时间" in pages["district"] and "各派出所响应时间" in pages["procurator"]


def test_a_school_cannot_see_another_schools_report(users, town):
    other_school = Organization.objects.create(name="湖塘实验小学", kind=OrgKind.SCHOOL)
    other_teacher = User.objects.create(username="teacher_other", organization=other_school)
    UserRole.objects.create(user=other_teacher, role=Role.REPORTER)
    theirs = _file(other_teacher, town)
    client = _client(users["school_hutang"])
    assert theirs.receipt_code not in client.get("/reports/").content.decode()
    assert client.get(f"/reports/{theirs.pk}/").status_code == 404
    assert client.get(f"/reports/{theirs.pk}/receipt/").status_code == 404


def test_the_reporting_school_sees_status_not_details(users, town):
    report = _file(users["school_hutang"], town)
    html = _client(users["school_hutang"]).get(f"/reports/{report.pk}/").content.decode()
    assert "已接收" in html and "手臂多处淤青" not in html and "学校门口" not in html


def test_the_reporters_identity_is_hidden_from_the_town(users, town):
    report = _file(users["school_hutang"], town)
    school = users["school_hutang"].organization.name
    for name in ("town_hutang",):
        for url in ("/reports/", f"/reports/{report.pk}/"):
            html = _client(users[name]).get(url).content.decode()
            assert school not in html and str(users["school_hutang"]) not in html, (name, url)
    assert "手臂多处淤青" in _client(users["town_hutang"]).get(f"/reports/{report.pk}/").content.decode()
    for name in ("police_hutang", "district"):
        html = _client(users[name]).get(f"/reports/{report.pk}/").content.decode()
        assert school in html, name


def test_the_procuratorate_sees_no_child_name_description_or_reporter(users, town):
    report = _file(users["school_hutang"], town)
    police = users["police_hutang"]
    services.report_accept(actor=police, report=report, officer="张警官")
    services.report_measure(actor=police, report=report, measure="hospital", note="送小红就医")
    for url in ("/reports/", f"/reports/{report.pk}/"):
        html = _client(users["procurator"]).get(url).content.decode()
        for secret in ("小红", "手臂多处淤青", "学校门口", users["school_hutang"].organization.name):
            assert secret not in html, (url, secret)
    html = _client(users["procurator"]).get(f"/reports/{report.pk}/").content.decode()
    assert "受理" in html and "协助就医" in html  # the timeline and its steps are there


def test_viewing_details_is_audited(users, town):
    report = _file(users["school_hutang"], town)
    before = AuditEvent.objects.filter(action="view", object_type="report").count()
    _client(users["police_hutang"]).get(f"/reports/{report.pk}/")
    _client(users["procurator"]).get(f"/reports/{report.pk}/")  # no details: nothing read to audit
    assert AuditEvent.objects.filter(action="view", object_type="report").count() == before + 1


def test_the_police_chain_through_the_pages(users, town):
    report = _file(users["school_hutang"], town)
    client = _client(users["police_hutang"])
    inbox = client.get("/reports/").content.decode()
    assert report.receipt_code in inbox and "data-due=" in inbox
    base = f"/reports/{report.pk}"
    assert client.post(f"{base}/dispatch/", {}).status_code == 302  # refused by the service: accept first
    assert Report.objects.get(pk=report.pk).dispatched_at is None
    client.post(f"{base}/accept/", {"officer": "张警官"})
    client.post(f"{base}/dispatch/", {})
    client.post(f"{base}/measure/", {"measure": "escort", "note": "护送至区救助站"})
    client.post(f"{base}/notify-town/", {"note": "请镇里入户评估"})
    report.refresh_from_db()
    assert report.officer == "张警官" and report.status == ReportStatus.HANDLED and report.town_notified_at
    kinds = list(report.events.values_list("kind", flat=True))
    assert kinds[-4:] == [EventKind.ACCEPTED, EventKind.DISPATCHED, EventKind.MEASURE, EventKind.TOWN_NOTIFIED]
    school = _client(users["school_hutang"]).get("/reports/").content.decode()
    assert "已处置" in school
    town_page = _client(users["town_hutang"]).get(f"{base}/").content.decode()
    assert "保存评估帮扶情况" in town_page
    _client(users["town_hutang"]).post(f"{base}/assess/", {"note": "已入户，安排亲属照料"})
    client.post(f"{base}/result/", {"outcome": "已依法处置，儿童安全", "close": "on"})
    report.refresh_from_db()
    assert report.status == ReportStatus.CLOSED
    school = _client(users["school_hutang"]).get("/reports/").content.decode()
    assert "已办结" in school and "已依法处置，儿童安全" in school
    detail = client.get(f"{base}/").content.decode()
    assert "张警官" in detail and "湖塘派出所" in detail  # who did each step


def test_steps_without_the_capability_are_refused(users, town, niutang_town):
    report = _file(users["school_hutang"], town)
    assert _client(users["town_hutang"]).post(f"/reports/{report.pk}/accept/", {"officer": "x"}).status_code == 403
    assert _client(users["school_hutang"]).post(f"/reports/{report.pk}/accept/", {"officer": "x"}).status_code == 403
    elsewhere = _file(users["district"], niutang_town)
    response = _client(users["police_hutang"]).post(f"/reports/{elsewhere.pk}/accept/", {"officer": "x"})
    assert response.status_code == 404  # not its station's report: not there at all
    assert _client(users["town_hutang"]).post(f"/reports/{elsewhere.pk}/assess/", {"note": "x"}).status_code == 404


def test_an_escalation_is_marked_on_the_timeline(users, town):
    report = _file(users["school_hutang"], town)
    services.check_deadlines(timezone.now() + timezone.timedelta(hours=2))
    html = _client(users["district"]).get(f"/reports/{report.pk}/").content.decode()
    assert "超时升级督办" in html and "已升级督办" in html


def test_the_district_places_and_commends(users, town):
    report = _file(users["school_hutang"], town)
    client = _client(users["district"])
    client.post(f"/reports/{report.pk}/placement/", {"kind": "relatives", "ground": "监护人无法联系"})
    placement = report.placements.get()
    client.post(f"/reports/{report.pk}/placement/{placement.pk}/end/", {"note": "父母返乡"})
    client.post(f"/reports/{report.pk}/commend/", {"note": "报告及时"})
    placement.refresh_from_db()
    report.refresh_from_db()
    assert placement.ended_at is not None and report.commended


def test_the_police_inbox_puts_urgent_first(users, town, django_assert_max_num_queries):
    calm = _file(users["school_hutang"], town, situations=[8])
    urgent = _file(users["school_hutang"], town, situations=[2])
    html = _client(users["police_hutang"]).get("/reports/").content.decode()
    assert html.index(urgent.receipt_code) < html.index(calm.receipt_code)
    for _i in range(5):
        _file(users["school_hutang"], town)
    client = _client(users["police_hutang"])
    with django_assert_max_num_queries(20):
        client.get("/reports/")
