"""The visit form on a phone with a weak network: Playwright driving Debian's Chromium.

A village director on a 360 px phone records a visit: most of the form is pre-filled, the note of a
checklist item appears only once "有问题" is chosen. The connection drops as the form is sent: the
page says so, keeps what was typed and sends it by itself when the connection returns — one
visit. A second visit's response is lost on its way back (the server saved it): the page keeps
the copy and, reloaded, sends it again with the same idempotency key — still one visit. No visit
page scrolls sideways at 360 px, and no page raises a CSP violation or a JavaScript error.

Screenshots at 360 px and 1280 px go to SHOUHU_SCREENSHOT_DIR (default /tmp/shouhu_shots).
"""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from django.utils import timezone

from shouhu.browser_testing import BROWSER, DESK, PHONE, log_in, open_page, scroll_width, shot

pytestmark = BROWSER

DIRECTOR = "village_hutang"
DETAIL_URL = re.compile(r"/visits/\d+/$")


@pytest.fixture
def world(demo_live):  # noqa: ANN001
    return demo_live


@pytest.fixture
def child(world, make_child, hutang_village, users):  # noqa: ANN001
    """A child newly registered in the director's village (no visit yet), the village's plans computed."""
    from shouhu.registry.selectors import children_visible_to
    from shouhu.visits.services import refresh_plans

    director = users[DIRECTOR]
    registered = make_child(hutang_village, actor=director, name="王小雨")
    visible = children_visible_to(director)
    assert visible.filter(pk=registered.pk).exists()
    refresh_plans(list(visible.values_list("pk", flat=True)))
    return registered


def _open(browser, problems: list[str], **options):  # noqa: ANN001, ANN202
    return open_page(browser, problems, **options)


def _log_in(page, base: str) -> None:  # noqa: ANN001
    log_in(page, base, DIRECTOR)


def _shot(page, name: str, *, full_page: bool = True) -> None:  # noqa: ANN001
    shot(page, f"visits-{name}", full_page=full_page)


_scroll_width = scroll_width


def _choose(page, group: str, label: str) -> None:  # noqa: ANN001
    """Tap a button-like radio or checkbox of a group by its visible label."""
    page.locator(f"input[name='{group}'] + label, input[name='{group}'] ~ label").filter(
        has_text=re.compile(f"^{re.escape(label)}$")
    ).first.tap()


def _stored_copies(page) -> list[str]:  # noqa: ANN001
    return page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('shouhu.visit.'))")


def test_village_director_records_a_visit_offline_and_a_lost_response_is_not_a_second_visit(world, child, browser):  # noqa: ANN001
    from playwright.sync_api import expect

    from shouhu.visits.models import Visit, VisitState

    base = world.url
    problems: list[str] = []
    context, page = _open(browser, problems, **PHONE)
    _log_in(page, base)

    # 1. The due list fits a 360 px screen.
    page.goto(f"{base}/visits/?due=all")
    expect(page.locator("main h1")).to_contain_text("走访计划")
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: /visits/"
    _shot(page, "due-360")

    # 2. The form: today's date and a home visit pre-filled, every checklist item "正常".
    form_url = f"{base}/visits/child/{child.pk}/new/"
    page.goto(form_url)
    expect(page.locator("main h1")).to_contain_text(child.name)
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: the visit form"
    expect(page.locator("#id_visited_on")).to_have_value(timezone.localdate().isoformat())
    expect(page.locator("input[name='mode'][value='home']")).to_be_checked()
    assert page.locator("input[name^='check_'][value='ok']:checked").count() == 6
    note = page.locator("#id_note_school")
    expect(note).to_be_hidden()  # the note of an item appears only with "有问题"
    height = page.locator("label[for='id_mode_0']").bounding_box()["height"]
    assert height >= 44, f"touch target only {height} px high"
    key = page.locator("#visit-form").get_attribute("data-key")

    _choose(page, "check_school", "有问题")
    expect(note).to_be_visible()
    note.fill("近两周有三天未到校")
    _choose(page, "met", "儿童本人")
    _choose(page, "guardianship_assessment", "一般")
    page.fill("#id_notes", "孩子在家，奶奶照看，作业已完成。")
    _shot(page, "form-360")
    page.locator("#id_note_school").scroll_into_view_if_needed()
    _shot(page, "form-screen-360", full_page=False)  # what the thumb sees, the sticky buttons included
    page.locator("#id_location").scroll_into_view_if_needed()
    _shot(page, "form-end-360", full_page=False)
    assert len(_stored_copies(page)) == 1  # what was typed is kept on the phone

    # 3. The connection drops as the form is sent: nothing reaches the server, the page says so.
    context.set_offline(True)
    page.get_by_role("button", name="提交走访记录").tap()
    expect(page.locator("#visit-offline")).to_be_visible()
    expect(page).to_have_url(form_url)
    assert not Visit.objects.filter(child=child).exists()
    assert len(_stored_copies(page)) == 1
    _shot(page, "form-offline-360")

    # 4. The connection returns: the form sends itself, once.
    context.set_offline(False)
    expect(page).to_have_url(DETAIL_URL, timeout=15_000)
    visit = Visit.objects.get(child=child)
    assert str(visit.idempotency_key) == key
    assert visit.state == VisitState.SUBMITTED
    assert visit.checklist["school"] == {"ok": False, "note": "近两周有三天未到校"}
    assert visit.met == ["child"] and visit.guardianship_assessment == "fair"
    assert _stored_copies(page) == []  # sent: the copy on the phone is gone
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: a visit"
    _shot(page, "detail-360")

    # 5. A second visit: an item marked "有问题" without a note is refused next to the item, and
    #    nothing typed is lost.
    page.goto(form_url)
    expect(page.locator("main")).to_contain_text("已按")  # pre-filled from the first visit
    expect(page.locator("#id_note_school")).to_be_visible()  # the last visit's concern, and its note
    second_key = page.locator("#visit-form").get_attribute("data-key")
    assert second_key != key
    page.locator("#id_note_school").fill("已按时到校")
    _choose(page, "check_school", "正常")
    expect(page.locator("#id_note_school")).to_be_hidden()
    _choose(page, "check_food", "有问题")
    page.fill("#id_notes", "第二次走访。")
    page.get_by_role("button", name="提交走访记录").tap()
    food_note = page.locator("#id_note_food")
    expect(food_note).to_be_visible()
    expect(page.locator("[data-note-for='check_food'] .errorlist")).to_contain_text("有问题时，请简要说明")
    expect(page.locator("#visit-form > .alert-danger")).to_be_visible()
    expect(page.locator("#id_notes")).to_have_value("第二次走访。")
    assert Visit.objects.filter(child=child).count() == 1
    _shot(page, "form-errors-360")
    food_note.fill("冰箱里的剩菜放了好几天")

    # 6. The server saves it but the answer never comes back: the page keeps the copy.
    seen: list[int] = []

    def lose_answer(route):  # noqa: ANN001
        if route.request.method == "POST":
            seen.append(route.fetch().status)  # the request reaches the server…
            route.abort("connectionreset")  # …the browser never hears back
        else:
            route.continue_()

    page.route(re.compile(r".*/visits/child/.*/new/$"), lose_answer)
    page.get_by_role("button", name="提交走访记录").tap()
    expect(page.locator("#visit-offline")).to_be_visible()
    assert seen == [201]
    assert Visit.objects.filter(idempotency_key=second_key).count() == 1
    assert len(_stored_copies(page)) == 1

    # 7. Reloaded, the page brings the copy back with its key and sends it again: the visit already
    #    made is returned, not a second one.
    page.unroute(re.compile(r".*/visits/child/.*/new/$"))
    page.reload()
    expect(page).to_have_url(DETAIL_URL, timeout=15_000)
    second = Visit.objects.get(idempotency_key=second_key)
    assert page.url.endswith(f"/visits/{second.pk}/")
    assert Visit.objects.filter(child=child).count() == 2
    assert second.checklist["food"] == {"ok": False, "note": "冰箱里的剩菜放了好几天"}
    assert second.checklist["school"]["ok"] is True
    assert _stored_copies(page) == []

    # 8. Typed but not sent, the page reloaded: what was typed comes back (and can be dropped).
    page.goto(form_url)
    page.fill("#id_notes", "还没写完")
    page.reload()
    expect(page.locator("#visit-restored")).to_be_visible()
    expect(page.locator("#id_notes")).to_have_value("还没写完")
    page.get_by_role("button", name="不用了，重新填写").tap()
    expect(page.locator("#visit-restored")).to_be_hidden()
    expect(page.locator("#id_notes")).to_have_value("")
    assert _stored_copies(page) == []

    # 9. The draft button is respected: the visit is saved as a draft.
    page.get_by_role("button", name="存为草稿").tap()
    expect(page).to_have_url(DETAIL_URL, timeout=15_000)
    assert Visit.objects.filter(child=child, state=VisitState.DRAFT).count() == 1
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: a draft visit"
    _shot(page, "draft-360")
    context.close()

    # 10. The same pages on a desk.
    desk, wide = _open(browser, problems, **DESK)
    _log_in(wide, base)
    for name, url in (
        ("due", f"{base}/visits/?due=all"),
        ("form", form_url),
        ("detail", f"{base}/visits/{visit.pk}/"),
        ("child", f"{base}/visits/child/{child.pk}/"),
    ):
        wide.goto(url)
        expect(wide.locator("main h1")).to_be_visible()
        assert _scroll_width(wide) <= 1280, f"horizontal scroll at 1280 px: {url}"
        _shot(wide, f"{name}-1280")
    wide.evaluate("localStorage.clear()")
    desk.close()

    assert problems == [], "\n".join(problems)


@pytest.fixture
def overdue_child(world, make_child, hutang_village, users):  # noqa: ANN001
    """A left-behind child of the director's village, last visited 60 days ago: 30 days overdue
    (left-behind children are visited every 30 days), the most overdue child of the village."""
    from datetime import timedelta

    from shouhu.policy.models import ChildCategory
    from shouhu.registry.selectors import children_visible_to
    from shouhu.visits import services
    from shouhu.visits.models import CHECKLIST, VisitPlan

    director = users[DIRECTOR]
    registered = make_child(hutang_village, actor=director, name="李小川", birth=date(2014, 6, 1))
    ChildCategory.objects.create(
        child=registered,
        code="left_behind",
        explanation="父母均在外地务工",
        valid_from=date(2026, 1, 1),
        confirmed_by=users["town_hutang"],
    )
    today = timezone.localdate()
    services.visit_save(
        actor=director,
        child=registered,
        key=uuid.uuid4(),
        submit=True,
        data={
            "visited_on": today - timedelta(days=60),
            "mode": "home",
            "met": ["child", "carer"],
            "checklist": {k: {"ok": True, "note": ""} for k, _label in CHECKLIST},
            "child_lives_alone": False,
            "parents_contact_weekly": True,
            "parents_last_contact": None,
            "carer_performance": "good",
            "guardianship_assessment": "good",
            "notes": "",
            "location": "",
        },
    )
    services.refresh_plans(list(children_visible_to(director).values_list("pk", flat=True)))
    plan = VisitPlan.objects.get(child=registered)
    assert plan.next_due == today - timedelta(days=30) and plan.interval_days == 30 and not plan.risk_level
    return registered


def test_director_records_a_visit_whose_finding_raises_the_risk_and_the_next_due_date_moves(
    world, overdue_child, browser
):  # noqa: ANN001
    from datetime import timedelta

    from playwright.sync_api import expect

    from shouhu.policy.params import DEFAULT_PARAMS
    from shouhu.visits.models import RiskAssessment, Visit, VisitPlan, VisitState

    base = world.url
    child = overdue_child
    today = timezone.localdate()
    interval = int(DEFAULT_PARAMS.visit_days_orange)
    problems: list[str] = []
    context, page = _open(browser, problems, **PHONE)
    _log_in(page, base)

    # 1. Today's list opens on the overdue tab: the child is there, 30 days late.
    page.goto(f"{base}/visits/")
    expect(page.locator(".sh-due-tabs .nav-link.active")).to_contain_text("已逾期")
    row = page.locator(".sh-card > div").filter(has=page.get_by_role("link", name=child.name, exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("逾期 30 天")
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: /visits/ (overdue)"
    _shot(page, "risk-due-overdue-360")

    # 2. 记录走访 from the row: the form, pre-filled from the last visit; the guardianship is poor now.
    row.get_by_role("link", name="记录走访").tap()
    expect(page).to_have_url(f"{base}/visits/child/{child.pk}/new/")
    expect(page.locator("main h1")).to_contain_text(child.name)
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: the visit form"
    expect(page.locator("#id_visited_on")).to_have_value(today.isoformat())
    _choose(page, "guardianship_assessment", "差")
    _choose(page, "carer_performance", "差")
    page.fill("#id_notes", "奶奶住院，孩子由邻居临时照看，饮食不规律。")
    _shot(page, "risk-form-360")
    page.get_by_role("button", name="提交走访记录").tap()

    # 3. The visit page: what the visit found, and the form to raise the risk level.
    expect(page).to_have_url(DETAIL_URL, timeout=15_000)
    visit = Visit.objects.get(child=child, visited_on=today)
    assert visit.state == VisitState.SUBMITTED and visit.guardianship_assessment == "poor"
    box = page.locator(".sh-card").filter(has_text="走访发现，请处理")
    expect(box).to_be_visible()
    expect(box).to_contain_text("监护状况评价为“差”")
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: a visit with findings"
    _shot(page, "risk-detail-findings-360")
    _choose(page, "level", "橙（高风险）")
    page.fill("#id_reason", "监护状况差：奶奶住院，无人稳定照护。")
    box.get_by_role("button", name="保存风险等级").tap()
    expect(page).to_have_url(f"{base}/visits/{visit.pk}/")
    expect(page.locator("main")).to_contain_text("风险等级已更新")
    risk = RiskAssessment.objects.get(child=child)
    assert risk.level == "orange" and risk.visit_id == visit.pk and risk.set_by.username == DIRECTOR
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: a visit, risk saved"
    _shot(page, "risk-detail-saved-360")

    # 4. The child's visits page: the next visit is due one orange interval after this visit.
    due = visit.visited_on + timedelta(days=interval)
    plan = VisitPlan.objects.get(child=child)
    assert (plan.next_due, plan.interval_days, plan.risk_level) == (due, interval, "orange")
    page.goto(f"{base}/visits/child/{child.pk}/")
    plan_card = page.locator(".sh-card").filter(has=page.get_by_role("heading", name="走访计划"))
    expect(plan_card).to_contain_text(f"下次走访截止：{due.isoformat()}")
    expect(plan_card).not_to_contain_text("已逾期")
    expect(plan_card).to_contain_text(f"每{interval}天走访一次")
    risk_card = page.locator(".sh-card").filter(has=page.get_by_role("heading", name="风险等级"))
    expect(risk_card.locator(".badge.sh-risk-orange")).to_have_text("橙（高风险）")
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: a child's visits"
    _shot(page, "risk-child-360")

    # 5. Back on today's list: no longer overdue; under 全部计划 with its new date and level.
    page.goto(f"{base}/visits/")
    expect(page.locator("main h1")).to_contain_text("走访计划")
    expect(page.locator("main").get_by_role("link", name=child.name, exact=True)).to_have_count(0)
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: /visits/ after the visit"
    _shot(page, "risk-due-after-360")
    page.goto(f"{base}/visits/?due=all")
    row = page.locator(".sh-card > div").filter(has=page.get_by_role("link", name=child.name, exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"截止 {due.isoformat()}")
    expect(row.locator(".badge.sh-risk-orange")).to_be_visible()
    assert _scroll_width(page) <= 360, "horizontal scroll at 360 px: /visits/?due=all"
    _shot(page, "risk-due-all-360")
    context.close()

    assert problems == [], "\n".join(problems)
