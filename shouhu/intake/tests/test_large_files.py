"""A 50 MB file through the import pages (background flow, huey immediate): a clear Chinese error or
a correct import, never a 500 and never a partial write. Few rows, big cells in an ignored column,
so it measures the file size path, not the per-row speed."""

from __future__ import annotations

from datetime import date

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from shouhu.conftest import new_id_number
from shouhu.intake.models import ImportState, SurveyImport
from shouhu.intake.tests.test_commit import director  # noqa: F401 - fixture
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.registry.models import Child

ROWS = 20
SIZE = 50 * 1024 * 1024
NOTES = 26


def _csv_of_50_mb(village_name: str) -> bytes:
    # 25 ignored 备注 columns of 100,000 characters a row (under the csv module's 131,072 a field)
    notes = [f"备注{n}" for n in range(1, NOTES + 1)]
    cell = "x" * 100_000
    lines = [",".join([*HEADERS, *notes])]
    for i in range(ROWS):
        lines.append(
            ",".join(
                [
                    village_name,
                    f"大文件{i:02d}",
                    new_id_number(date(2013, 1 + i % 12, 1 + i)),
                    "小学",
                    "",
                    "",
                    "",
                    "",
                    *[cell] * NOTES,
                ]
            )
        )
    data = ("\n".join(lines) + "\n").encode("utf-8")
    assert SIZE * 0.95 < len(data) < SIZE * 1.05
    return data


def test_a_50_mb_file_is_imported_whole_or_refused_clearly(client, director, hutang_village):  # noqa: F811
    client.force_login(director)
    before = Child.objects.count()
    data = _csv_of_50_mb(hutang_village.name)

    response = client.post(reverse("intake:import"), {"file": SimpleUploadedFile("全镇.csv", data)})
    assert response.status_code in (302, 400)
    if response.status_code == 400:  # refused at the upload: a Chinese sentence
        assert "文件" in response.context["upload_error"]
        assert not SurveyImport.objects.exists() and Child.objects.count() == before
        return
    imp = SurveyImport.objects.get(imported_by=director)
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    if imp.state == ImportState.FAILED:  # the file as a whole refused: said plainly, nothing written
        assert imp.job_error and imp.job_error in html
        assert Child.objects.count() == before
        return
    assert imp.state == ImportState.PREVIEWED, imp.job_error
    assert imp.size == len(data) and imp.file_bytes() == data
    assert imp.counts == {"new": ROWS, "changed": 0, "unchanged": 0, "invalid": 0}
    assert "确认导入" in html

    done = client.post(reverse("intake:import_confirm", args=[imp.pk]))
    assert done.status_code == 302
    imp.refresh_from_db()
    assert client.get(done["Location"]).status_code == 200
    if imp.state == ImportState.COMMITTED:
        assert Child.objects.count() == before + ROWS
        assert imp.counts["new"] == ROWS and imp.items.count() == ROWS
    else:
        assert imp.state == ImportState.FAILED and imp.job_error
        assert Child.objects.count() == before and not imp.items.exists()
