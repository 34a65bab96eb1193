"""The import pages: upload → preview → confirm, the error workbook, the history and 撤销."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from shouhu.audit.models import AuditEvent
from shouhu.intake import views
from shouhu.intake.models import SurveyImport
from shouhu.intake.tests.test_commit import _new_row, director, ledger_child  # noqa: F401 - fixtures
from shouhu.intake.tests.test_preview import HEADERS, _row
from shouhu.intake.tests.test_reader import xlsx
from shouhu.registry.models import Child


def _upload(client, data: bytes, name: str = "湖塘村.xlsx"):  # noqa: ANN001, ANN202
    return client.post(reverse("intake:import"), {"file": SimpleUploadedFile(name, data)})


def _previewed(user) -> SurveyImport:  # noqa: ANN001
    return SurveyImport.objects.get(state="previewed", imported_by=user)


def test_upload_preview_then_confirm_creates_children(client, director, hutang_village, ledger_child):  # noqa: F811
    client.force_login(director)
    page = client.get(reverse("intake:import"))
    assert page.status_code == 200 and reverse("intake:template") in page.content.decode()
    data = xlsx([HEADERS, _new_row(hutang_village), _row(hutang_village, ledger_child, 现住址="湖塘镇长安路100号")])
    before = Child.objects.count()

    response = _upload(client, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="preview-counts"' in html and "确认导入" in html and "湖塘镇长安路" in html
    assert response.context["preview"].counts == {"new": 1, "changed": 1, "unchanged": 0, "invalid": 0}
    assert Child.objects.count() == before  # a preview writes nothing to the ledger
    stored = _previewed(director)
    assert stored.file_bytes() == data  # kept on the row (encrypted), not in the session
    assert "湖塘镇长安路100号" not in html  # diffs are masked
    assert data.hex() not in str(dict(client.session))

    done = client.post(reverse("intake:import_confirm", args=[stored.pk]))
    assert done.status_code == 200 and 'id="import-counts"' in done.content.decode()
    assert Child.objects.count() == before + 1
    imp = SurveyImport.objects.get(state="committed")
    assert imp.counts["new"] == 1 and imp.counts["changed"] == 1 and imp.file_bytes() == data
    assert not SurveyImport.objects.filter(state="previewed").exists()
    assert AuditEvent.objects.filter(action="import", object_type="survey_import").count() == 1
    # confirming twice is a 404, not a second import
    assert client.post(reverse("intake:import_confirm", args=[stored.pk])).status_code == 404


def test_invalid_file_shows_errors_no_confirm_and_the_error_workbook(client, director, hutang_village):  # noqa: F811
    client.force_login(director)
    data = xlsx(
        [HEADERS, _new_row(hutang_village), [hutang_village.name, "错号码", "12345", "小学", "湖塘镇1号", "", "", ""]]
    )
    response = _upload(client, data)
    html = response.content.decode()
    assert response.status_code == 200 and response.context["preview"].counts["invalid"] == 1
    assert 'id="preview-errors"' in html and "确认导入" not in html and "下载错误标注表" in html
    assert '<span class="text-muted">C</span> 身份证号' in html  # the column as Excel names it
    stored = _previewed(director)
    report = client.get(reverse("intake:import_errors", args=[stored.pk]))
    assert report.status_code == 200 and "attachment" in report["Content-Disposition"]
    assert "错误清单" in load_workbook(io.BytesIO(report.content)).sheetnames
    before = Child.objects.count()
    response = client.post(reverse("intake:import_confirm", args=[stored.pk]), follow=True)
    assert Child.objects.count() == before
    assert SurveyImport.objects.filter(state="failed").exists()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty.xlsx", b"", "文件"),
        ("fake.xlsx", b"this is not a spreadsheet at all" * 10, ""),
        ("notes.txt", b"hello", ""),
    ],
)
def test_bad_uploads_are_a_message_not_a_500(client, director, name, data, expected):  # noqa: F811
    client.force_login(director)
    response = _upload(client, data, name)
    assert response.status_code == 400
    assert response.context["upload_error"] and expected in response.context["upload_error"]
    assert not SurveyImport.objects.exists()


def test_no_file_and_oversized_file(client, director, monkeypatch):  # noqa: F811
    client.force_login(director)
    response = client.post(reverse("intake:import"), {})
    assert response.status_code == 400 and "请选择" in response.context["upload_error"]
    monkeypatch.setattr(views, "UPLOAD_MAX_BYTES", 1024)
    response = _upload(client, b"x" * 2048, "big.csv")
    assert response.status_code == 400 and "MB" in response.context["upload_error"]
    assert not SurveyImport.objects.exists()


def test_history_undo_and_other_villages_get_404(client, users, director, hutang_village):  # noqa: F811
    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village)]))
    client.post(reverse("intake:import_confirm", args=[_previewed(director).pk]))
    imp = SurveyImport.objects.get(state="committed")
    history = client.get(reverse("intake:imports"))
    assert (
        history.status_code == 200 and imp.filename in history.content.decode() and "撤销" in history.content.decode()
    )

    other = users["village_niutang"]
    client.force_login(other)
    assert imp.filename not in client.get(reverse("intake:imports")).content.decode()
    assert client.post(reverse("intake:import_undo", args=[imp.pk])).status_code == 404
    _upload(client, xlsx([HEADERS, _new_row(hutang_village, name="别人家")]))
    assert client.get(reverse("intake:import_errors", args=[_previewed(other).pk])).status_code == 200
    client.force_login(director)
    assert client.get(reverse("intake:import_errors", args=[_previewed(other).pk])).status_code == 404
    assert client.post(reverse("intake:import_confirm", args=[_previewed(other).pk])).status_code == 404

    created = Child.objects.count()
    response = client.post(reverse("intake:import_undo", args=[imp.pk]), follow=True)
    assert "已撤销" in response.content.decode()
    imp.refresh_from_db()
    assert imp.state == "undone" and Child.objects.count() == created - 1
    response = client.post(reverse("intake:import_undo", args=[imp.pk]), follow=True)
    assert "只有已导入的文件可以撤销" in response.content.decode()


def test_undo_refused_when_a_child_was_edited_since(client, director, hutang_village):  # noqa: F811
    from shouhu.registry import services

    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village, name="后改过", birth=date(2015, 1, 1))]))
    client.post(reverse("intake:import_confirm", args=[_previewed(director).pk]))
    child = Child.objects.get(name="后改过")
    services.child_update(actor=director, child=child, data={"school_name": "湖塘幼儿园"}, version=child.version)
    response = client.post(reverse("intake:import_undo", args=[SurveyImport.objects.get().pk]), follow=True)
    html = response.content.decode()
    assert "未撤销" in html and "后改过" in html
    assert SurveyImport.objects.get().state == "committed"


def test_leaders_get_403_and_the_ledger_links_to_the_import(client, users, director):  # noqa: F811
    client.force_login(users["leader"])
    assert client.get(reverse("intake:import")).status_code == 403
    assert client.get(reverse("intake:imports")).status_code == 403
    client.force_login(director)
    assert reverse("intake:import") in client.get(reverse("registry:ledger")).content.decode()


def test_a_new_upload_replaces_the_previous_preview(client, director, hutang_village):  # noqa: F811
    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village)]))
    first = _previewed(director).pk
    _upload(client, xlsx([HEADERS, _new_row(hutang_village, name="第二个")]))
    assert _previewed(director).pk != first
    assert SurveyImport.objects.filter(state="previewed").count() == 1


def test_unconfirmed_previews_of_others_expire(client, users, director, hutang_village):  # noqa: F811
    from django.utils import timezone

    client.force_login(users["village_niutang"])
    _upload(client, xlsx([HEADERS, _new_row(hutang_village)]))
    SurveyImport.objects.update(created_at=timezone.now() - views.PREVIEW_KEPT - views.timedelta(minutes=1))
    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village, name="新的")]))
    assert list(SurveyImport.objects.values_list("imported_by", flat=True)) == [director.pk]
