"""Background imports (shouhu.intake.jobs) through the pages, with huey immediate: upload → status
page with progress → stored preview → confirm → commit → result; restart after a dead worker."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.intake import jobs
from shouhu.intake.models import ImportState, SurveyImport
from shouhu.intake.tests.test_commit import _new_row, director, ledger_child  # noqa: F401 - fixtures
from shouhu.intake.tests.test_preview import HEADERS, _row
from shouhu.intake.tests.test_reader import xlsx
from shouhu.registry.models import Child


@pytest.fixture(autouse=True)
def background_for_all(settings):  # noqa: ANN001, ANN201
    """Every upload above 100 bytes goes to the background in these tests."""
    settings.SHOUHU_IMPORT_SYNC_MAX_BYTES = 100


def _upload(client, data: bytes, name: str = "湖塘村.xlsx"):  # noqa: ANN001, ANN202
    return client.post(reverse("intake:import"), {"file": SimpleUploadedFile(name, data)})


def _status(imp: SurveyImport) -> str:
    return reverse("intake:import_status", args=[imp.pk])


def test_background_upload_preview_confirm_commit(client, director, hutang_village, ledger_child):  # noqa: F811
    client.force_login(director)
    data = xlsx([HEADERS, _new_row(hutang_village), _row(hutang_village, ledger_child, 现住址="湖塘镇长安路100号")])
    before = Child.objects.count()

    response = _upload(client, data)
    imp = SurveyImport.objects.get(imported_by=director)
    assert response.status_code == 302 and response["Location"] == _status(imp)
    assert imp.state == ImportState.PREVIEWED and imp.attempts == 1 and imp.finished_at is not None
    assert imp.counts == {"new": 1, "changed": 1, "unchanged": 0, "invalid": 0}
    assert imp.get_result()["counts"] == imp.counts and imp.get_result()["changed"][0]["diffs"]
    with connection.cursor() as cursor:  # the stored preview is encrypted at rest
        cursor.execute("SELECT result FROM intake_surveyimport WHERE id = %s", [imp.pk])
        assert "湖塘镇" not in cursor.fetchone()[0]

    page = client.get(_status(imp))  # a reload shows the same stored preview
    html = page.content.decode()
    assert page.status_code == 200 and 'id="preview-counts"' in html and "确认导入" in html
    assert "湖塘镇长安路" in html and "湖塘镇长安路100号" not in html  # masked as the preview gives it
    assert AuditEvent.objects.filter(action="view", object_type="survey_import", object_id=str(imp.pk)).exists()
    assert Child.objects.count() == before
    assert imp.filename not in client.get(reverse("intake:imports")).content.decode()  # not yet an import

    done = client.post(reverse("intake:import_confirm", args=[imp.pk]))
    assert done.status_code == 302 and done["Location"] == _status(imp)
    imp.refresh_from_db()
    assert imp.state == ImportState.COMMITTED and imp.attempts == 2 and imp.counts["new"] == 1
    assert Child.objects.count() == before + 1
    result = client.get(_status(imp))
    assert result.status_code == 200 and 'id="import-counts"' in result.content.decode()
    assert AuditEvent.objects.filter(action="import", object_type="survey_import").count() == 1
    assert client.post(reverse("intake:import_confirm", args=[imp.pk])).status_code == 404  # not twice
    history = client.get(reverse("intake:imports")).content.decode()
    assert imp.filename in history and _status(imp) in history


def test_progress_is_visible_while_the_check_runs(client, director, hutang_village, monkeypatch):  # noqa: F811
    client.force_login(director)
    seen: dict[str, object] = {}
    real = jobs.preview_import

    def slow_preview(**kwargs):  # noqa: ANN003, ANN202
        kwargs["progress"](500, 2000)  # as the reader reports after 500 rows
        imp = SurveyImport.objects.get(imported_by=director)
        seen["state"] = imp.state
        seen["progress"] = jobs.progress_of(imp)
        fragment = client.get(_status(imp), HTTP_HX_REQUEST="true")
        seen["fragment"] = fragment.content.decode()
        seen["page"] = client.get(_status(imp)).content.decode()  # a reload mid-run
        return real(**kwargs)

    monkeypatch.setattr(jobs, "preview_import", slow_preview)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village)]))
    assert seen["state"] == ImportState.CHECKING
    assert seen["progress"].done == 500 and seen["progress"].percent == 25
    assert 'hx-trigger="every 2s"' in seen["fragment"] and 'value="25"' in seen["fragment"]
    assert "已处理 500 行" in seen["fragment"]
    assert 'id="import-progress"' in seen["page"] and "刷新" in seen["page"]  # works without JS too
    imp = SurveyImport.objects.get(imported_by=director)
    assert imp.state == ImportState.PREVIEWED
    # once the job ended, a poll asks htmx to reload the whole page
    poll = client.get(_status(imp), HTTP_HX_REQUEST="true")
    assert poll.status_code == 204 and poll["HX-Refresh"] == "true"


def test_an_unreadable_big_file_is_a_clear_error(client, director):  # noqa: F811
    client.force_login(director)
    response = _upload(client, b"this is not a spreadsheet at all " * 10, "fake.xlsx")
    imp = SurveyImport.objects.get(imported_by=director)
    assert response.status_code == 302 and imp.state == ImportState.FAILED and imp.job_error
    page = client.get(_status(imp))
    assert page.status_code == 200 and imp.job_error in page.content.decode()
    assert "确认导入" not in page.content.decode()


def test_rows_invalid_at_commit_time_are_a_failed_import_with_errors(client, director, hutang_village, monkeypatch):  # noqa: F811
    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village)]))
    imp = SurveyImport.objects.get(imported_by=director)
    from shouhu.intake.preview import CellError

    real = jobs.import_commit

    def ledger_changed(**kwargs):  # noqa: ANN003, ANN202
        done = real(**kwargs)
        assert done.state == ImportState.COMMITTED
        # stands for a ledger that changed after the preview: the service's failed record
        SurveyImport.objects.filter(pk=done.pk).update(state=ImportState.FAILED, committed_at=None)
        done.state = ImportState.FAILED
        done.preview.errors.append(CellError(2, "身份证号", "已在台账中", key="id_number", letter="C"))
        return done

    monkeypatch.setattr(jobs, "import_commit", ledger_changed)
    client.post(reverse("intake:import_confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.state == ImportState.FAILED and imp.finished_at is not None
    html = client.get(_status(imp)).content.decode()
    assert 'id="preview-errors"' in html and "已在台账中" in html and "确认导入" not in html
    assert '<span class="text-muted">C</span> 身份证号' in html  # kept with the stored result


def test_a_dead_worker_is_reported_and_the_import_restarts(client, director, hutang_village, monkeypatch):  # noqa: F811
    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village, name="重来一次")]))
    imp = SurveyImport.objects.get(imported_by=director)
    # The commit was queued, a worker took it and died: state committing, no sign of life since.
    monkeypatch.setattr(jobs, "commit_import", lambda import_id, attempt: None)
    client.post(reverse("intake:import_confirm", args=[imp.pk]))
    monkeypatch.undo()
    imp.refresh_from_db()
    assert imp.state == ImportState.COMMITTING
    jobs._reporter(imp.pk, imp.attempts)(0, 10)  # noqa: SLF001 - its last beat
    html = client.get(_status(imp)).content.decode()
    assert "后台导入中断" not in html and 'hx-trigger="every 2s"' in html
    # refusing to restart a live import
    response = client.post(reverse("intake:import_restart", args=[imp.pk]), follow=True)
    assert "没有中断" in response.content.decode()

    long_ago = time.time() - jobs.stale_seconds() - 5
    from huey.contrib.djhuey import HUEY

    HUEY.put(jobs._key(imp.pk, imp.attempts, "beat"), long_ago)  # noqa: SLF001
    html = client.get(_status(imp)).content.decode()
    assert "后台导入中断，台账没有任何改动" in html and 'id="import-restart"' in html
    assert "hx-trigger" not in html
    assert not Child.objects.filter(name="重来一次").exists()

    response = client.post(reverse("intake:import_restart", args=[imp.pk]))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.state == ImportState.COMMITTED and imp.attempts == 3
    assert Child.objects.filter(name="重来一次").count() == 1


def test_a_superseded_or_duplicate_job_does_nothing(db, director, hutang_village):  # noqa: F811
    imp = jobs.start_check(actor=director, data=xlsx([HEADERS, _new_row(hutang_village)]), filename="a.xlsx")
    imp.refresh_from_db()
    assert imp.state == ImportState.PREVIEWED
    jobs.check_import.call_local(imp.pk, 1)  # a second delivery of the same job: not claimed
    jobs.commit_import.call_local(imp.pk, 1)  # a commit for a row not confirmed: not claimed
    imp.refresh_from_db()
    assert imp.state == ImportState.PREVIEWED and imp.attempts == 1
    assert jobs.start_commit(actor=director, imp=imp)
    imp.refresh_from_db()
    before = Child.objects.count()
    jobs.commit_import.call_local(imp.pk, imp.attempts)  # again after it committed
    assert Child.objects.count() == before
    assert not jobs.start_commit(actor=director, imp=imp)  # a second confirm


def test_only_the_uploader_sees_the_status(client, users, director, hutang_village):  # noqa: F811
    client.force_login(director)
    _upload(client, xlsx([HEADERS, _new_row(hutang_village)]))
    imp = SurveyImport.objects.get(imported_by=director)
    client.force_login(users["town_hutang"])
    assert client.get(_status(imp)).status_code == 404
    assert client.post(reverse("intake:import_restart", args=[imp.pk])).status_code == 404
    assert client.post(reverse("intake:import_confirm", args=[imp.pk])).status_code == 404
    client.force_login(users["leader"])
    assert client.get(_status(imp)).status_code == 403


def test_stale_needs_a_running_state_and_old_signs_of_life(db, director):  # noqa: F811
    imp = SurveyImport(state=ImportState.COMMITTING, attempts=1, queued_at=timezone.now())
    fresh = jobs.JobProgress(done=0, estimate=0, beat=None)
    assert not jobs.is_stale(imp, fresh)
    assert jobs.is_stale(imp, fresh, now=time.time() + jobs.stale_seconds() + 1)
    assert not jobs.is_stale(imp, jobs.JobProgress(1, 2, time.time()))
    imp.state = ImportState.COMMITTED
    assert not jobs.is_stale(imp, fresh, now=time.time() + 10_000)


# ----- undoing a large import in the background -------------------------------------------------------------------


def _committed(actor, village, *names: str) -> SurveyImport:  # noqa: ANN001
    from datetime import date

    from shouhu.intake.services import import_commit

    rows = [HEADERS] + [_new_row(village, name=name, birth=date(2015, 5, 1 + n)) for n, name in enumerate(names)]
    imp = import_commit(actor=actor, source=xlsx(rows), filename="大文件.xlsx")
    assert imp.state == ImportState.COMMITTED
    return imp


def test_a_large_import_is_undone_in_the_background(client, director, hutang_village, settings):  # noqa: F811
    settings.SHOUHU_IMPORT_SYNC_MAX_UNDO = 1  # two children: "large"
    imp = _committed(director, hutang_village, "背撤甲", "背撤乙")
    client.force_login(director)
    response = client.post(reverse("intake:import_undo", args=[imp.pk]), follow=True)
    assert "正在后台撤销" in response.content.decode()
    imp.refresh_from_db()
    assert imp.state == ImportState.UNDONE and imp.attempts == 1 and imp.finished_at and imp.undone_by == director
    assert not Child.objects.filter(name__startswith="背撤").exists()
    assert AuditEvent.objects.filter(action="import_undo", object_id=str(imp.pk)).count() == 1


def test_a_refused_background_undo_goes_back_to_committed_and_says_why(
    client,
    director,  # noqa: F811
    hutang_village,
    settings,
):
    from shouhu.registry import services

    settings.SHOUHU_IMPORT_SYNC_MAX_UNDO = 1
    imp = _committed(director, hutang_village, "拒撤甲", "拒撤乙")
    edited = Child.objects.get(name="拒撤乙")
    services.child_update(actor=director, child=edited, data={"school_name": "湖塘小学"}, version=edited.version)
    client.force_login(director)
    client.post(reverse("intake:import_undo", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.state == ImportState.COMMITTED and not imp.running
    assert (
        imp.job_error.startswith("撤销未完成，台账没有任何改动：以下儿童在本次导入后已被修改")
        and "拒撤乙" in imp.job_error
    )
    assert Child.objects.filter(name__startswith="拒撤").count() == 2
    history = client.get(reverse("intake:imports")).content.decode()
    assert "拒撤乙" in history and reverse("intake:import_undo", args=[imp.pk]) in history  # may try again


def test_an_interrupted_background_undo_is_restarted(client, director, hutang_village, settings, monkeypatch):  # noqa: F811
    settings.SHOUHU_IMPORT_SYNC_MAX_UNDO = 1
    imp = _committed(director, hutang_village, "断撤甲", "断撤乙")
    undo_import = jobs.undo_import
    monkeypatch.setattr(jobs, "undo_import", lambda *args: None)  # queued, and no worker ever takes it
    client.force_login(director)
    client.post(reverse("intake:import_undo", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.state == ImportState.UNDOING
    settings.SHOUHU_IMPORT_STALE_SECONDS = 0
    time.sleep(0.01)
    history = client.get(reverse("intake:imports")).content.decode()
    assert "后台撤销中断，台账没有任何改动。" in history and reverse("intake:import_restart", args=[imp.pk]) in history
    monkeypatch.setattr(jobs, "undo_import", undo_import)
    response = client.post(reverse("intake:import_restart", args=[imp.pk]))
    assert response["Location"] == reverse("intake:imports")
    imp.refresh_from_db()
    assert imp.state == ImportState.UNDONE and imp.attempts == 2
    assert not Child.objects.filter(name__startswith="断撤").exists()
