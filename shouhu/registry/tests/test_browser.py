"""The ledger in a real browser: Playwright driving Debian's Chromium against a live server.

A village child director logs in, registers a child with father, mother (out for work) and an
entrusted carer, finds the child by pinyin initials, edits it, sees the change in the history
tab, and a stale second tab's save is refused without losing what was typed. All along, the
pages must raise no CSP violation and no JavaScript error.

Set SHOUHU_SCREENSHOT_DIR to keep screenshots of the pages the scenario passes through.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest

from shouhu.browser_testing import BROWSER, PASSWORD
from shouhu.lib.idnumber import make_id_number

pytestmark = BROWSER

CHILD_NAME = "欧阳晓岚"  # pinyin initials "oyxl"
STALE_MESSAGE = "保存失败：在您编辑期间，该记录已被他人修改"
SHOT_DIR = os.environ.get("SHOUHU_SCREENSHOT_DIR", "")


def _id_with_x(region6: str, birth: date) -> str:
    """A valid ID number whose check character is X, to type it with a lower-case x."""
    for seq in range(1, 999):
        value = make_id_number(region6, birth, seq)
        if value.endswith("X"):
            return value
    raise AssertionError("no sequence gives an X check character")  # pragma: no cover


def _id_of_sex(region6: str, birth: date, female: bool) -> str:
    return make_id_number(region6, birth, 2 if female else 1)


# The Playwright fixtures (`browser`, `browser_type`, `playwright`) are in shouhu/conftest.py.


@pytest.fixture(scope="module")
def browser_context_args():  # noqa: ANN201
    return {"locale": "zh-CN", "viewport": {"width": 1366, "height": 900}}


@pytest.fixture
def world(demo_live):  # noqa: ANN001
    return demo_live


@pytest.fixture
def watched(page):  # noqa: ANN001
    """The page, with every console error, page error and failed static file collected."""
    problems: list[str] = []

    def on_console(msg):  # noqa: ANN001
        # A form answered 400/409 logs "Failed to load resource" for the document: that is the
        # page working as designed. Everything else (CSP refusals, script errors) is a problem.
        if msg.type in ("error", "warning") and "Failed to load resource" not in msg.text:
            problems.append(f"console {msg.type}: {msg.text}")

    def on_response(response):  # noqa: ANN001
        if "/static/" in response.url and response.status >= 400:
            problems.append(f"static {response.status}: {response.url}")

    def watch(p):  # noqa: ANN001
        p.on("console", on_console)
        p.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        p.on("response", on_response)
        return p

    watch(page)
    page.watch = watch  # type: ignore[attr-defined]
    page.problems = problems  # type: ignore[attr-defined]
    return page


def _shot(page, name: str) -> None:  # noqa: ANN001
    if SHOT_DIR:
        Path(SHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOT_DIR) / f"browser-{name}.png"), full_page=True)


def _no_horizontal_overflow(page) -> bool:  # noqa: ANN001
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_village_director_registers_finds_edits_and_a_stale_tab_loses_nothing(world, watched):  # noqa: ANN001
    from playwright.sync_api import expect

    from shouhu.registry.models import Child

    page = watched
    base = world.url
    child_id = _id_with_x("320481", date(2016, 5, 17))
    # Place codes must exist in the birth year: 武进县 (320421) for the parents, 常州市 (320400) for the carer.
    father_id = _id_of_sex("320421", date(1986, 2, 3), female=False)
    mother_id = _id_of_sex("320421", date(1988, 9, 12), female=True)
    carer_id = make_id_number("320400", date(1958, 3, 2), 4)

    # 1. Log in through the login page.
    page.goto(f"{base}/login/")
    expect(page.locator("h1")).to_contain_text("登录")
    page.fill("#id_username", "village_hutang")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("main h1")).to_contain_text("今日待办")

    # 2. Register a child with father, mother (out for work) and an entrusted carer.
    page.get_by_role("link", name="登记儿童").first.click()
    expect(page.locator("main h1")).to_contain_text("登记儿童")
    page.fill("#id_name", CHILD_NAME)
    page.fill("#id_id_number", child_id.lower())  # a lower-case x is what people type
    page.select_option("#id_school_stage", "primary")
    page.fill("#id_school_name", "湖塘中心小学")
    page.fill("#id_hh-address", "武进区湖塘镇示例路8号")
    page.fill("#id_father-name", "欧阳建国")
    page.fill("#id_father-id_number", father_id)
    page.fill("#id_father-phone", "13812345678")
    page.fill("#id_mother-name", "李秀英")
    page.fill("#id_mother-id_number", mother_id)
    page.fill("#id_mother-work_place", "广东省深圳市")
    page.locator("[data-add-form='mother-sit']").click()  # shouhu.js clones the formset's empty form
    expect(page.locator("#id_mother-sit-1-kind")).to_be_visible()
    expect(page.locator("#id_mother-sit-TOTAL_FORMS")).to_have_value("2")
    page.select_option("#id_mother-sit-0-kind", "out_for_work")
    page.fill("#id_mother-sit-0-since", "2023-03-01")
    page.fill("#id_carer-carer_name", "欧阳老太")
    page.select_option("#id_carer-carer_relation", "grandmother_p")
    spaced = f"{carer_id[:6]} {carer_id[6:14]} {carer_id[14:]}"
    page.fill("#id_carer-carer_id_number", spaced)  # spaces, as read off a card
    page.fill("#id_carer-since", "2023-03-01")
    _shot(page, "create-filled")
    page.get_by_role("button", name="保存登记").click()
    expect(page.locator(".alert-success")).to_contain_text(f"已登记：{CHILD_NAME}")
    expect(page.locator("main h1")).to_contain_text(CHILD_NAME)
    expect(page.locator("#child-id-number")).to_have_text(re.compile(r"320481\*+\d{3}X"))
    detail_url = page.url.split("?")[0]
    child = Child.objects.get(name=CHILD_NAME)
    assert child.id_number == child_id  # normalised to upper-case X

    page.get_by_role("link", name="家庭与监护").click()
    family = page.locator("main")
    expect(family).to_contain_text("父亲 · 欧阳建国")
    expect(family).to_contain_text("母亲 · 李秀英")
    expect(family).to_contain_text("外出务工（2023-03-01 起）")
    expect(family).to_contain_text("欧阳老太（祖母）")
    assert child.entrustments.get().carer_id_number == carer_id
    _shot(page, "detail-family")

    # 3. Find the child from the ledger's search box by pinyin initials.
    page.get_by_role("link", name="儿童台账").first.click()
    page.fill("#ledger-q", "oyxl")
    page.get_by_role("button", name="检索").click()
    expect(page.locator("#ledger-table")).to_contain_text("检索“oyxl”")
    assert "oyxl" not in page.url  # search terms never travel in a URL
    page.locator("#ledger-table").get_by_role("link", name=CHILD_NAME).click()
    expect(page.locator("main h1")).to_contain_text(CHILD_NAME)

    # 4. Edit the school; the change shows in the history tab.
    page.locator("main").get_by_role("link", name="编辑").first.click()
    expect(page.locator("main h1")).to_contain_text("编辑儿童信息")
    page.fill("#id_school_name", "湖塘实验小学")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator(".alert-success")).to_contain_text("已保存")
    page.get_by_role("link", name="变更记录").click()
    history = page.locator("main .sh-card").last
    expect(history).to_contain_text("学校")
    expect(history).to_contain_text("湖塘中心小学")
    expect(history).to_contain_text("湖塘实验小学")
    _shot(page, "detail-history")

    # 5. Two tabs open the edit form; the first saves, the second's save is refused, nothing lost.
    context = page.context
    first = page.watch(context.new_page())
    second = page.watch(context.new_page())
    for tab in (first, second):
        tab.goto(f"{detail_url}edit/")
        expect(tab.locator("main h1")).to_contain_text("编辑儿童信息")
    first.fill("#id_grade", "三年级")
    first.get_by_role("button", name="保存", exact=True).click()
    expect(first.locator(".alert-success")).to_contain_text("已保存")

    typed = "奶奶说孩子近来常去邻居家写作业，周末由姑姑接送。"
    second.fill("#id_note", typed)
    with second.expect_navigation() as navigation:
        second.get_by_role("button", name="保存", exact=True).click()
    assert navigation.value.status == 409
    expect(second.locator("main .alert").first).to_contain_text(STALE_MESSAGE)
    expect(second.locator("#id_note")).to_have_value(typed)
    expect(second.locator("#id_grade")).to_have_value("")  # the form the user had, not silently merged
    expect(second.get_by_role("link", name="在新窗口打开最新记录")).to_be_visible()
    _shot(second, "edit-stale")
    child.refresh_from_db()
    assert child.grade == "三年级" and child.note == ""

    # 6. The child's page prints without navigation, tabs or buttons; a phone shows it without overflow.
    second.goto(detail_url)
    second.emulate_media(media="print")
    expect(second.locator(".sh-sidebar")).to_be_hidden()
    expect(second.locator(".nav-tabs")).to_be_hidden()
    expect(second.locator("main .btn").first).to_be_hidden()
    expect(second.locator("main h1")).to_be_visible()
    _shot(second, "detail-print")
    second.emulate_media(media="screen")
    second.set_viewport_size({"width": 360, "height": 740})
    for url in (
        detail_url,
        f"{detail_url}?tab=family",
        f"{detail_url}edit/",
        f"{base}/children/new/",
        f"{base}/children/",
    ):
        second.goto(url)
        assert _no_horizontal_overflow(second), f"horizontal overflow at 360 px: {url}"

    assert page.problems == [], "\n".join(page.problems)
