"""Several village sheets uploaded at once: each is checked in the background, one page shows them
all, and 导入全部无误的文件 imports those without errors, each all or nothing."""

from __future__ import annotations

from datetime import date

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from shouhu.conftest import new_id_number
from shouhu.intake import views
from shouhu.intake.models import ImportState, SurveyImport
from shouhu.intake.tests.test_commit import director  # noqa: F401 - fixture
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.intake.tests.test_reader import xlsx
from shouhu.registry.models import Child


def _sheet(village, *names: str, bad: bool = False) -> bytes:  # noqa: ANN001
    rows = [HEADERS]
    for n, name in enumerate(names):
        rows.append([village.name, name, new_id_number(date(2014, 3, 1 + n)), "小学", "", "", "", ""])
    if bad:
        rows.append([village.name, "错号娃", "320481201501019999", "小学", "", "", "", ""])
    return xlsx(rows)


def _files(*named: tuple[str, bytes]) -> dict[str, list[SimpleUploadedFile]]:
    return {"file": [SimpleUploadedFile(name, data) for name, data in named]}


def test_a_batch_is_checked_shown_and_its_good_files_imported(client, director, hutang_village):  # noqa: F811
    client.force_login(director)
    before = Child.objects.count()
    response = client.post(
        reverse("intake:import"),
        _files(
            ("一村.xlsx", _sheet(hutang_village, "批甲", "批乙")),
            ("二村.xlsx", _sheet(hutang_village, "批丙", bad=True)),
            ("三村.xlsx", _sheet(hutang_village, "批丁")),
        ),
    )
    assert response.status_code == 302
    imports = list(SurveyImport.objects.filter(imported_by=director).order_by("pk"))
    assert [i.filename for i in imports] == ["一村.xlsx", "二村.xlsx", "三村.xlsx"]
    assert len({i.batch for i in imports}) == 1 and imports[0].batch is not None
    assert response["Location"] == reverse("intake:import_batch", args=[imports[0].batch])
    assert [i.state for i in imports] == [ImportState.PREVIEWED] * 3  # huey runs at once in tests
    assert Child.objects.count() == before  # checked, nothing imported yet

    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "导入全部无误的文件（2个）" in html and "下载错误标注表" in html
    assert page.context["totals"] == {"new": 4, "changed": 0, "unchanged": 0, "invalid": 1}
    assert "hx-trigger" not in html  # nothing running: the table does not poll

    done = client.post(reverse("intake:import_batch_confirm", args=[imports[0].batch]))
    assert done.status_code == 302
    states = {i.filename: i.state for i in SurveyImport.objects.filter(imported_by=director)}
    assert states == {"一村.xlsx": "committed", "二村.xlsx": "previewed", "三村.xlsx": "committed"}
    assert set(Child.objects.filter(name__startswith="批").values_list("name", flat=True)) == {"批甲", "批乙", "批丁"}
    page = client.get(response["Location"]).content.decode()
    assert page.count("已导入") == 2 and "导入全部无误的文件" not in page
    # A second click imports nothing more.
    client.post(reverse("intake:import_batch_confirm", args=[imports[0].batch]))
    assert Child.objects.count() == before + 3


def test_only_the_uploader_sees_the_batch(client, users, director, hutang_village):  # noqa: F811
    client.force_login(director)
    response = client.post(
        reverse("intake:import"),
        _files(("一村.xlsx", _sheet(hutang_village, "他甲")), ("二村.xlsx", _sheet(hutang_village, "他乙"))),
    )
    client.force_login(users["town_hutang"])
    assert client.get(response["Location"]).status_code == 404
    assert client.post(response["Location"] + "confirm/").status_code == 404
    assert not Child.objects.filter(name__startswith="他").exists()


def test_an_empty_file_is_named_and_the_others_go_on(client, director, hutang_village):  # noqa: F811
    client.force_login(director)
    response = client.post(
        reverse("intake:import"),
        _files(("空.xlsx", b""), ("一村.xlsx", _sheet(hutang_village, "空甲"))),
        follow=True,
    )
    html = response.content.decode()
    assert "以下文件未导入：“空.xlsx”是空文件。" in html
    assert [i.filename for i in SurveyImport.objects.filter(imported_by=director)] == ["一村.xlsx"]


def test_too_many_files_are_refused_whole(client, director, hutang_village, monkeypatch):  # noqa: F811
    monkeypatch.setattr(views, "BATCH_MAX_FILES", 2)
    client.force_login(director)
    sheet = _sheet(hutang_village, "多甲")
    response = client.post(reverse("intake:import"), _files(*[(f"{n}.xlsx", sheet) for n in range(3)]))
    assert response.status_code == 400 and "一次最多选择2个文件" in response.content.decode()
    assert not SurveyImport.objects.filter(imported_by=director).exists()


def test_the_upload_page_points_to_a_batch_not_yet_imported(client, director, hutang_village):  # noqa: F811
    client.force_login(director)
    response = client.post(
        reverse("intake:import"),
        _files(("一村.xlsx", _sheet(hutang_village, "待甲")), ("二村.xlsx", _sheet(hutang_village, "待乙"))),
    )
    page = client.get(reverse("intake:import")).content.decode()
    assert 'id="pending-batch"' in page and response["Location"] in page
