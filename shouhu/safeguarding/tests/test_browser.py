"""The report chain end to end in the browser: Playwright driving Debian's Chromium.

A teacher of 湖塘中心小学 (`school_hutang`) files an urgent report on a 360 px phone and gets a
receipt. The night shift of 湖塘派出所 (`police_hutang`, desktop) finds it at the top of its inbox,
marked urgent with a countdown; accepts it with the officer's name, records the dispatch and two
measures, and notifies the town government. The town's supervisor (`town_hutang`) finds the
assessment task in /tasks/ and the report in /reports/, with nothing telling who reported it. The
school's list says "已处置". Each user has its own browser context; no page scrolls sideways at
360 px and none logs a console error.

Screenshots go to SHOUHU_SCREENSHOT_DIR (default /tmp/shouhu_shots).
"""

from __future__ import annotations

import re

import pytest

from shouhu.browser_testing import BROWSER, DESK, PHONE, log_in, open_page, shot

pytestmark = BROWSER

SCHOOL_NAME = "湖塘中心小学"
RECEIPT_URL = re.compile(r"/reports/(\d+)/receipt/$")


@pytest.fixture
def world(demo_live):  # noqa: ANN001
    return demo_live


_open = open_page
_log_in = log_in


def _shot(page, name: str) -> None:  # noqa: ANN001
    shot(page, f"reports-{name}")


def _fits_360(page, what: str) -> None:  # noqa: ANN001
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"horizontal scroll at 360 px ({width} px): {what}"


def _flash(page, text: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    expect(page.locator("main")).to_contain_text(text)
    expect(page.locator("main")).not_to_contain_text("未保存")


def test_a_school_reports_the_police_respond_the_town_gets_its_task_the_school_sees_handled(world, browser):  # noqa: ANN001
    from playwright.sync_api import expect

    from shouhu.safeguarding.models import EventKind, Measure, Report, ReportStatus
    from shouhu.tasks.models import Task

    base = world.url
    problems: list[str] = []

    # 1. The teacher, on a phone: situation 4 and "in danger now", the child by description only.
    school, phone = _open(browser, problems, "school", **PHONE)
    _log_in(phone, base, "school_hutang")
    phone.goto(f"{base}/reports/new/")
    expect(phone.locator("main h1")).to_contain_text("强制报告")
    _fits_360(phone, "/reports/new/")
    phone.locator("label[for='sit-4']").tap()
    phone.locator("label[for='danger-yes']").tap()
    phone.fill("#id_child_name", "小芳")
    phone.select_option("#id_child_sex", "F")
    phone.fill("#id_child_age", "9")
    if not phone.locator("#id_place_town").input_value():
        phone.select_option("#id_place_town", "320412100000")
    assert phone.locator("#id_place_town").input_value() == "320412100000"  # the school's town, pre-filled
    phone.fill("#id_place", "学校门口")
    phone.fill("#id_description", "孩子手臂和背部多处淤青，说是昨晚被继父用皮带打的，不敢回家。")
    _fits_360(phone, "/reports/new/ filled in")
    _shot(phone, "form-360")
    phone.get_by_role("button", name="立即报告").tap()

    expect(phone).to_have_url(RECEIPT_URL, timeout=15_000)
    report = Report.objects.get(pk=int(RECEIPT_URL.search(phone.url).group(1)))
    assert report.urgent and report.danger_now and report.situations == [4]
    assert report.reporter_org.name == SCHOOL_NAME and report.police_station.name == "湖塘派出所"
    code = report.receipt_code
    expect(phone.locator("#receipt-code")).to_have_text(code)
    expect(phone.locator("main")).to_contain_text("报告已送达公安机关")
    expect(phone.locator("main .badge")).to_contain_text("紧急")
    _fits_360(phone, "the receipt")
    _shot(phone, "receipt-360")

    # 2. The station, at a desk: the report on top of the inbox, urgent, with a running countdown.
    station, desk = _open(browser, problems, "police", **DESK)
    _log_in(desk, base, "police_hutang")
    desk.goto(f"{base}/reports/")
    expect(desk.locator("main h1")).to_contain_text("强制报告受理")
    first = desk.locator("main .sh-card > div.d-flex").first
    expect(first).to_contain_text(code)
    expect(first.locator(".badge.text-bg-danger")).to_contain_text("紧急")
    countdown = first.locator("[data-due]").first
    expect(countdown).to_have_text(re.compile(r"^剩余 (59|60)分钟$|^剩余 1小时0分钟$"))
    expect(first).to_contain_text("公安受理")
    _shot(desk, "inbox-1280")
    first.get_by_role("link", name="受理").click()
    expect(desk).to_have_url(f"{base}/reports/{report.pk}/")
    expect(desk.locator("main")).to_contain_text(SCHOOL_NAME)  # the station handling it sees who reported

    accept = desk.locator("form[action$='/accept/']")
    accept.locator("[name='officer']").fill("张伟")
    accept.get_by_role("button", name="受理").click()
    _flash(desk, "已受理")
    desk.locator("form[action$='/dispatch/']").get_by_role("button", name="登记出警").click()
    _flash(desk, "已登记出警")

    def measure(value: str, note: str) -> None:
        form = desk.locator("form[action$='/measure/']")
        if not form.is_visible():
            desk.locator("summary", has_text="登记处置措施").click()
        form.locator("[name='measure']").select_option(value)
        form.locator("[name='note']").fill(note)
        form.get_by_role("button", name="保存措施").click()
        _flash(desk, "已登记处置措施")

    measure(Measure.ESCORT, "将儿童带离并护送至区未成年人救助保护中心")
    measure(Measure.INJURY, "委托法医鉴定伤情")
    desk.locator("summary", has_text="通报镇（街道）政府").click()
    notify = desk.locator("form[action$='/notify-town/']")
    notify.locator("[name='note']").fill("请湖塘镇评估监护状况并帮扶")
    notify.get_by_role("button", name="通报并派发评估帮扶任务").click()
    _flash(desk, "已通报镇（街道）政府")
    expect(desk.locator("main")).to_contain_text("带离护送、临时安置")
    expect(desk.locator("main")).to_contain_text("鉴定伤情")
    _shot(desk, "handled-1280")

    report.refresh_from_db()
    assert report.status == ReportStatus.HANDLED and report.officer == "张伟"
    assert report.accepted_at and report.dispatched_at and report.town_notified_at
    assert report.events.filter(kind=EventKind.MEASURE).count() == 2
    # The forms give times to the minute; no step lands before the receipt on the timeline.
    assert report.accepted_at >= report.created_at and report.dispatched_at >= report.created_at
    kinds = list(report.events.order_by("at", "id").values_list("kind", flat=True))
    assert kinds[:4] == [EventKind.RECEIVED, EventKind.ROUTED, EventKind.ACCEPTED, EventKind.DISPATCHED], kinds
    assert not report.deadlines.filter(kind__in=["accept", "feedback", "town_notify"], met_at__isnull=True).exists()
    station.close()

    # 3. The town: its assessment task, and the report — without the reporter's organisation.
    town, town_page = _open(browser, problems, "town", **DESK)
    _log_in(town_page, base, "town_hutang")
    task = Task.objects.get(source_type="report_assessment", source_id=str(report.pk))
    assert task.owner.kind == "town_government"
    town_page.goto(f"{base}/tasks/")
    expect(town_page.locator("main")).to_contain_text(task.title)
    _shot(town_page, "town-tasks-1280")
    town_page.goto(f"{base}/reports/")
    expect(town_page.locator("main h1")).to_contain_text("本镇（街道）强制报告")
    expect(town_page.locator("main")).to_contain_text(code)
    assert SCHOOL_NAME not in town_page.content()
    town_page.get_by_role("link", name=code).click()
    expect(town_page).to_have_url(f"{base}/reports/{report.pk}/")
    expect(town_page.locator("main")).to_contain_text("评估帮扶")
    expect(town_page.locator("main")).to_contain_text("报告人信息保密")
    steps = town_page.locator("main").get_by_text(re.compile(r"^(接收报告|受理)$"))
    expect(steps).to_have_text(["接收报告", "受理"])  # the timeline reads in order
    assert SCHOOL_NAME not in town_page.content()
    assert "school_hutang" not in town_page.content()
    _shot(town_page, "town-report-1280")
    town.close()

    # 4. The school, back on the phone: its list says "已处置", and nothing of the police's notes.
    phone.goto(f"{base}/reports/")
    row = phone.locator("main .sh-card > div.d-flex").filter(has_text=code)
    expect(row).to_have_count(1)
    expect(row.locator(".badge").first).to_have_text("已处置")
    expect(phone.locator("main")).not_to_contain_text("鉴定伤情")
    _fits_360(phone, "the school's /reports/")
    _shot(phone, "school-list-360")
    phone.goto(f"{base}/reports/{report.pk}/")
    expect(phone.locator("main")).to_contain_text("已处置")
    expect(phone.locator("main")).not_to_contain_text("张伟")
    _fits_360(phone, "the school's view of the report")
    _shot(phone, "school-report-360")
    school.close()

    assert problems == [], "\n".join(problems)
