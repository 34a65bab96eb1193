"""A town supervisor's Friday afternoon in a real browser: three village sheets chosen at once,
checked, shown on one page (one with an error), and the two good ones imported with one click —
at a desk and on a 360 px phone, with no console error."""

from __future__ import annotations

from datetime import date

import pytest

from shouhu.browser_testing import BROWSER, DESK, PHONE, log_in, open_page, scroll_width, shot
from shouhu.conftest import new_id_number
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.intake.tests.test_reader import xlsx

pytestmark = BROWSER


def _sheet(village, names: list[str], *, bad: bool = False) -> bytes:  # noqa: ANN001
    rows = [HEADERS] + [
        [village.name, name, new_id_number(date(2013, 4, 1 + n)), "小学", "湖塘镇人民路1号", "", "", ""]
        for n, name in enumerate(names)
    ]
    if bad:
        rows.append([village.name, "错号娃", "320481201501019999", "小学", "", "", "", ""])
    return xlsx(rows, title="摸底排查表")


@pytest.mark.parametrize("device", ["desk", "phone"])
def test_a_town_supervisor_imports_three_village_sheets_at_once(demo_live, browser, tmp_path, device):  # noqa: ANN001
    from playwright.sync_api import expect

    from shouhu.org.models import Region
    from shouhu.registry.models import Child

    villages = list(Region.objects.filter(code__startswith="320412100", level=5).order_by("code")[:3])
    suffix = "桌" if device == "desk" else "机"
    files = []
    for n, village in enumerate(villages):
        path = tmp_path / f"{village.name}.xlsx"
        path.write_bytes(_sheet(village, [f"批{suffix}{n}甲", f"批{suffix}{n}乙"], bad=n == 1))
        files.append(str(path))

    problems: list[str] = []
    context, page = open_page(browser, problems, **(DESK if device == "desk" else PHONE))
    try:
        log_in(page, demo_live.url, "town_hutang")
        page.goto(f"{demo_live.url}/intake/import/")
        page.set_input_files("#import-file", files)
        page.get_by_role("button", name="上传并预览").click()

        expect(page.locator("main h1")).to_contain_text("批量导入（3个文件）")
        table = page.locator("#import-batch")
        expect(table.get_by_text("无误，待导入")).to_have_count(2)
        expect(table.get_by_text("有错误")).to_have_count(1)
        expect(table.get_by_role("link", name="下载错误标注表")).to_have_count(1)
        assert scroll_width(page) <= page.viewport_size["width"]  # the table scrolls inside its card
        shot(page, f"intake-batch-{device}")

        page.get_by_role("button", name="导入全部无误的文件（2个）").click()
        expect(page.get_by_text("已开始导入2个文件")).to_be_visible()
        expect(table.get_by_text("已导入")).to_have_count(2)
        expect(page.get_by_role("button", name="导入全部无误的文件（2个）")).to_have_count(0)
        shot(page, f"intake-batch-done-{device}")
    finally:
        context.close()
    names = set(Child.objects.filter(name__startswith=f"批{suffix}").values_list("name", flat=True))
    assert names == {f"批{suffix}0甲", f"批{suffix}0乙", f"批{suffix}2甲", f"批{suffix}2乙"}
    assert problems == []


@pytest.mark.parametrize("device", ["desk", "phone"])
def test_a_long_export_its_requester_may_no_longer_see_is_refused_with_a_reason(  # noqa: ANN001
    demo_live, browser, settings, device
):
    """A supervisor moved to another town opens yesterday's export of their old town: the page says
    why it can no longer be downloaded instead of offering it."""
    from playwright.sync_api import expect

    from shouhu.org.models import Region, User

    settings.SHOUHU_EXPORT_SYNC_MAX_ROWS = 1  # the town's list is "long": written by the worker
    problems: list[str] = []
    context, page = open_page(browser, problems, **(DESK if device == "desk" else PHONE))
    try:
        log_in(page, demo_live.url, "town_niutang")
        page.goto(f"{demo_live.url}/intake/export/ledger.xlsx")
        download = page.locator("#export-download")
        expect(download).to_be_visible()  # written (the worker runs at once in tests)

        user = User.objects.select_related("organization").get(username="town_niutang")
        user.organization.regions.set([Region.objects.get(code="320412100000")])  # moved to 湖塘镇
        page.reload()
        expect(page.locator("#export-not-permitted")).to_contain_text("不能再下载")
        expect(download).to_have_count(0)
        assert scroll_width(page) <= page.viewport_size["width"]
        shot(page, f"intake-export-refused-{device}")
        assert not problems, problems
    finally:
        context.close()
