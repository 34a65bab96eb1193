"""`manage.py import_survey FILE --as USERNAME [--dry-run] [--report OUT.xlsx]`."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from shouhu.conftest import new_id_number
from shouhu.intake.models import SurveyImport
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.intake.tests.test_reader import xlsx
from shouhu.registry.models import Child


def _file(tmp_path, rows, name="湖塘村.xlsx"):  # noqa: ANN001
    path = tmp_path / name
    path.write_bytes(xlsx([HEADERS, *rows]))
    return path


def _good(village, name="命令导入娃"):  # noqa: ANN001
    return [village.name, name, new_id_number(date(2016, 6, 6)), "幼儿园", "", "", "", ""]


def _bad(village):  # noqa: ANN001
    return [village.name, "王错号", "320481201501019999", "小学", "", "", "", ""]


def _run(*args: str) -> tuple[dict, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("import_survey", *args, stdout=out)
    except CommandError as exc:
        return (json.loads(out.getvalue()) if out.getvalue() else {}), exc
    return json.loads(out.getvalue()), None


def test_imports_and_prints_the_summary(users, hutang_village, tmp_path):
    path = _file(tmp_path, [_good(hutang_village)])
    summary, error = _run(str(path), "--as", "village_hutang")
    assert error is None
    assert {k: summary[k] for k in ("new", "changed", "unchanged", "invalid", "committed")} == {
        "new": 1,
        "changed": 0,
        "unchanged": 0,
        "invalid": 0,
        "committed": True,
    }
    imp = SurveyImport.objects.get(pk=summary["import"])
    assert imp.imported_by == users["village_hutang"] and imp.filename == "湖塘村.xlsx"
    assert Child.objects.filter(name="命令导入娃").exists()

    again, error = _run(str(path), "--as", "village_hutang")
    assert error is None and again["unchanged"] == 1 and again["new"] == 0 and again["committed"] is True


def test_dry_run_writes_nothing(users, hutang_village, tmp_path):
    path = _file(tmp_path, [_good(hutang_village, "试运行娃")])
    imports = SurveyImport.objects.count()
    summary, error = _run(str(path), "--as", "village_hutang", "--dry-run")
    assert error is None
    assert summary == {"new": 1, "changed": 0, "unchanged": 0, "invalid": 0, "committed": False}
    assert not Child.objects.filter(name="试运行娃").exists() and SurveyImport.objects.count() == imports


@pytest.mark.parametrize("dry_run", [False, True])
def test_invalid_rows_exit_1_commit_nothing_and_write_the_report(users, hutang_village, tmp_path, dry_run):
    path = _file(tmp_path, [_good(hutang_village, "不该导入娃"), _bad(hutang_village)])
    report = tmp_path / "errors.xlsx"
    summary, error = _run(
        str(path), "--as", "village_hutang", "--report", str(report), *(["--dry-run"] if dry_run else [])
    )
    assert error is not None and error.returncode == 1
    assert summary["invalid"] == 1 and summary["new"] == 1 and summary["committed"] is False
    assert not Child.objects.filter(name="不该导入娃").exists()
    assert "错误清单" in load_workbook(report).sheetnames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["errors.xlsx", "湖塘村.xlsx"]


def test_out_of_scope_rows_are_invalid(users, hutang_village, niutang_village, tmp_path):
    path = _file(tmp_path, [_good(niutang_village, "外村命令娃")])
    summary, error = _run(str(path), "--as", "village_hutang")
    assert error is not None and error.returncode == 1 and summary["invalid"] == 1
    assert not Child.objects.filter(name="外村命令娃").exists()


@pytest.mark.parametrize(("username", "message"), [("nobody", "nobody"), ("leader", "无权修改")])
def test_unknown_inactive_or_unauthorised_users_are_refused(users, hutang_village, tmp_path, username, message):
    path = _file(tmp_path, [_good(hutang_village, "拒绝娃")])
    imports = SurveyImport.objects.count()
    summary, error = _run(str(path), "--as", username)
    assert error is not None and error.returncode == 1 and message in str(error) and summary == {}
    assert SurveyImport.objects.count() == imports and not Child.objects.filter(name="拒绝娃").exists()


def test_an_inactive_user_is_refused(users, hutang_village, tmp_path):
    user = users["village_hutang"]
    user.is_active = False
    user.save(update_fields=["is_active"])
    summary, error = _run(str(_file(tmp_path, [_good(hutang_village)])), "--as", "village_hutang")
    assert error is not None and "village_hutang" in str(error)


def test_a_missing_or_unreadable_file_is_a_clear_error(users, tmp_path):
    _summary, error = _run(str(tmp_path / "none.xlsx"), "--as", "village_hutang")
    assert error is not None and "不存在" in str(error)
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook\x00\x01")
    _summary, error = _run(str(bad), "--as", "village_hutang")
    assert error is not None and error.returncode == 1
