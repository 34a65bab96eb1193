"""A whole case in the browser: Playwright driving Debian's Chromium.

A village director's visit found 王小川 (湖塘镇) living alone with poor guardianship. The town's
supervisor (`town_hutang`, desktop) opens a case from the visit's finding, assesses the eight
domains (orange: guardianship 3), plans a goal with two referred actions — "dropped out of school"
goes to the education bureau and the child's school, "legal aid" to the justice bureau. The school
(`school_hutang`, a 360 px phone) accepts and completes; the justice bureau declines with a reason;
the supervisor reads the reason and re-refers; the bureau accepts and completes. The supervisor asks
to close; an orange case needs the district office (`district`), which approves. The chronology
shows every step in order, and the case summary prints as a PDF whose text layer is Chinese.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid

import pytest
from django.utils import timezone

from shouhu.browser_testing import (
    BROWSER,
    DESK,
    PASSWORD,
    PHONE,
    log_in,
    open_page,
    scroll_width,
    shot,
)

pytestmark = BROWSER

CHILD = "王小川"
JUSTICE_USER = "justice_demo"


@pytest.fixture
def world(demo_live, users, make_child, hutang_village):  # noqa: ANN001
    """The live server, a justice-bureau account, and a submitted visit with findings."""
    from shouhu.org.models import Organization, Role, User, UserRole
    from shouhu.visits.services import visit_save

    justice = User.objects.create_user(
        username=JUSTICE_USER,
        password=PASSWORD,
        full_name="区司法局（演示）",
        organization=Organization.objects.get(code="justice"),
        is_demo=True,
    )
    UserRole.objects.create(user=justice, role=Role.UNIT_STAFF)
    child = make_child(
        hutang_village, actor=users["village_hutang"], name=CHILD, school_name=users["school_hutang"].organization.name
    )
    today = timezone.localdate()
    data = {
        "visited_on": today,
        "mode": "home",
        "met": ["child"],
        "checklist": {
            k: {"ok": k != "school", "note": "两周没去上学" if k == "school" else ""}
            for k in ("living", "safety", "food", "school", "health", "mood")
        },
        "child_lives_alone": True,
        "parents_contact_weekly": False,
        "parents_last_contact": today,
        "carer_performance": "poor",
        "guardianship_assessment": "poor",
        "notes": "",
        "location": "",
    }
    visit, _ = visit_save(actor=users["village_hutang"], child=child, data=data, key=uuid.uuid4(), submit=True)
    return {"base": demo_live.url, "child": child, "visit": visit}


def _flash(page, text: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    expect(page.locator("main")).to_contain_text(text)


def _add_action(page, text: str, need: str) -> None:  # noqa: ANN001
    """Open the plan's 添加措施 under the first goal and add a referred action."""
    form = page.locator("form[action$='/action/']").first
    page.locator("summary", has_text="添加措施").first.click()
    form.locator("[name=text]").fill(text)
    form.locator("[name=mode]").select_option("referral")
    form.locator("[name=need]").select_option(need)
    form.get_by_role("button", name="保存").click()


def _task_card(page, title: str):  # noqa: ANN001, ANN202
    return page.locator("main .border.rounded", has_text=title).first


def test_a_visit_finding_becomes_a_case_referred_answered_closed_and_printed(world, browser):  # noqa: ANN001
    from playwright.sync_api import expect

    from shouhu.cases.models import Case, CaseState
    from shouhu.tasks.models import Task, TaskState

    base, child = world["base"], world["child"]
    problems: list[str] = []

    # 1. The supervisor opens a case from the visit's finding.
    town_ctx, town = open_page(browser, problems, "town", **DESK)
    log_in(town, base, "town_hutang")
    town.goto(f"{base}/visits/{world['visit'].pk}/")
    town.get_by_role("link", name="立案（个案管理）").click()
    expect(town.locator("main h1")).to_contain_text(CHILD)
    assert town.locator("[name=opened_from]").input_value() == "visit"
    town.locator("main form").get_by_role("button", name="立案").click()
    _flash(town, "已立案，请进行调查评估")
    case = Case.objects.get(child=child, state=CaseState.OPEN)
    assert case.opened_from == "visit" and case.source_ref == str(world["visit"].pk)

    # 2. The assessment: guardianship 3 and schooling 3 make it orange, with the reasons shown.
    scores = {
        "safety": 2,
        "guardianship": 3,
        "physical_health": 1,
        "mental_health": 2,
        "schooling": 3,
        "economic": 2,
        "housing": 1,
        "social_support": 2,
    }
    for key, score in scores.items():
        town.locator(f"input[name=score_{key}][value='{score}']").check()
    town.locator("#id_evidence_guardianship").fill("父母在外务工，独自居住，无人照料")
    town.locator("#id_evidence_schooling").fill("已两周未到校")
    town.get_by_role("button", name="保存评估").click()
    _flash(town, "评估已保存")
    expect(town.locator("main h1 .badge").first).to_have_text("橙（高风险）")
    expect(town.locator("main")).to_contain_text("监护情况")
    shot(town, "cases-detail-assessed")

    # 3. The plan: one goal, two referred actions routed by the duty catalogue.
    town.locator("summary", has_text="添加目标").click()
    town.locator("form[action$='/goal/'] [name=text]").fill("恢复就学，落实监护")
    town.locator("form[action$='/goal/']").get_by_role("button", name="保存").click()
    _flash(town, "恢复就学，落实监护")
    _add_action(town, "劝返复学", "dropout")
    expect(town.locator("main")).to_contain_text("劝返复学")
    _add_action(town, "为监护问题提供法律援助", "legal_aid")
    expect(town.locator("main")).to_contain_text("为监护问题提供法律援助")
    owners = set(Task.objects.filter(child=child).values_list("owner__name", flat=True))
    assert owners == {"武进区教育局", "湖塘中心小学", "武进区司法局"}, owners

    # 4. The school, on a phone: accepts and completes its referral in the inbox.
    school_ctx, school = open_page(browser, problems, "school", **PHONE)
    log_in(school, base, "school_hutang")
    school.goto(f"{base}/tasks/")
    card = _task_card(school, "个案转介：控辍保学")
    expect(card).to_contain_text(CHILD)
    assert scroll_width(school) <= 360, "the inbox scrolls sideways at 360 px"
    card.locator("summary", has_text="办理").tap()
    card.get_by_role("textbox", name="接收，承办人").fill("张老师")
    card.get_by_role("button", name="接收").tap()
    card = _task_card(school, "个案转介：控辍保学")
    card.locator("summary", has_text="办理").tap()
    card.get_by_role("textbox", name="办理结果").fill("已家访劝返，孩子周一返校")
    card.get_by_role("button", name="办结").tap()
    _flash(school, "已办结：个案转介：控辍保学")
    expect(school.locator("main .border.rounded", has_text="个案转介：控辍保学")).to_have_count(0)
    shot(school, "cases-school-inbox-360")

    # 5. The justice bureau declines with a reason.
    justice_ctx, justice = open_page(browser, problems, "justice", **DESK)
    log_in(justice, base, JUSTICE_USER)
    justice.goto(f"{base}/tasks/")
    card = _task_card(justice, "个案转介：法律援助")
    card.locator("summary", has_text="办理").click()
    card.get_by_role("textbox", name="退回理由（退回发起单位）").fill("请先由镇里确认监护人联系方式后再转")
    card.get_by_role("button", name="退回").click()
    expect(justice.locator("main .border.rounded", has_text="个案转介：法律援助")).to_have_count(0)

    # 6. The supervisor reads the reason and re-refers; the bureau accepts and completes.
    town.goto(f"{base}/cases/{case.pk}/")
    expect(town.locator("main")).to_contain_text("请先由镇里确认监护人联系方式后再转")
    refer = town.locator("form[action$='/refer/']")
    refer.locator("[name=note]").fill("监护人（父亲）电话已核实：见个案记录")
    refer.get_by_role("button", name="重新转介").click()
    _flash(town, "已重新转介")
    justice.goto(f"{base}/tasks/")
    card = _task_card(justice, "个案转介：法律援助")
    expect(card).to_contain_text("监护人（父亲）电话已核实")
    card.locator("summary", has_text="办理").click()
    card.get_by_role("textbox", name="接收，承办人").fill("李律师")
    card.get_by_role("button", name="接收").click()
    card = _task_card(justice, "个案转介：法律援助")
    card.locator("summary", has_text="办理").click()
    card.get_by_role("textbox", name="办理结果").fill("已指派法律援助律师，督促父母履行监护职责")
    card.get_by_role("button", name="办结").click()
    _flash(justice, "已办结：个案转介：法律援助")
    legal = Task.objects.filter(child=child, owner__code="justice").order_by("pk")
    assert [t.state for t in legal] == [TaskState.DECLINED, TaskState.DONE]

    # 7. An orange case closes with the district office's approval.
    town.goto(f"{base}/cases/{case.pk}/")
    expect(town.locator("main")).to_contain_text("已指派法律援助律师")
    town.locator("summary", has_text="申请结案").click()
    close = town.locator("form[action$='/close/']")
    close.locator("[name=reason]").select_option("risk_removed")
    close.locator("[name=summary]").fill("已返校，父母每周联系，法律援助到位")
    close.get_by_role("button", name="提交结案申请").click()
    expect(town.locator("main")).to_contain_text("结案申请待区民政局（联席办）审批")
    district_ctx, district = open_page(browser, problems, "district", **DESK)
    log_in(district, base, "district")
    district.goto(f"{base}/cases/{case.pk}/")
    district.locator("#approve-note").fill("同意结案")
    district.get_by_role("button", name="批准结案").click()
    _flash(district, "已批准结案")
    case.refresh_from_db()
    assert case.state == CaseState.CLOSED and case.close_approved_by is not None

    # 8. The chronology shows every step, in order.
    town.goto(f"{base}/cases/child/{child.pk}/chronology/")
    text = town.locator("main").inner_text()
    steps = [
        "走访",
        "立案",
        "调查评估",
        "个案转介：控辍保学",
        "已家访劝返",
        "请先由镇里确认监护人联系方式后再转",
        "已指派法律援助律师",
        "结案",
    ]
    positions = [text.find(step) for step in steps]
    assert all(p >= 0 for p in positions), dict(zip(steps, positions, strict=True))
    shot(town, "cases-chronology")
    assert _in_order(text, steps), f"chronology order: {dict(zip(steps, positions, strict=True))}"

    # 9. The case summary prints as a PDF whose text layer is Chinese (poppler-utils: .ci/run).
    town.goto(f"{base}/cases/{case.pk}/")
    with town.expect_download() as download:
        town.get_by_role("link", name=re.compile("打印个案摘要")).click()
    pdf = download.value.path()
    with open(pdf, "rb") as fh:
        assert fh.read(5) == b"%PDF-"
    assert shutil.which("pdftotext"), "pdftotext missing: apt-get install poppler-utils"
    layer = subprocess.run(
        ["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for text in (CHILD, "控辍保学", "法律援助", "已结案", "第 1 页"):
        assert text in layer, f"{text!r} not in the PDF's text layer"

    for ctx in (town_ctx, school_ctx, justice_ctx, district_ctx):
        ctx.close()
    assert problems == []


def _in_order(text: str, steps: list[str]) -> bool:
    """Each step appears after the previous one (the chronology is oldest first)."""
    at = -1
    for step in steps:
        found = text.find(step, at + 1)
        if found < 0:
            return False
        at = found
    return True
