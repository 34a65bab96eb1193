"""`manage.py export_ledger OUT.xlsx --as USERNAME [--region CODE] [--unmasked]`."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from shouhu.audit.models import AuditEvent
from shouhu.registry.selectors import children_visible_to


def _run(*args: str) -> dict:
    out = io.StringIO()
    call_command("export_ledger", *args, stdout=out)
    return json.loads(out.getvalue())


def test_exports_the_users_ledger_masked_and_audited(users, hutang_village, make_child, tmp_path):
    child = make_child(hutang_village, name="命令导出娃")
    target = tmp_path / "ledger.xlsx"

    summary = _run(str(target), "--as", "town_hutang")

    rows = list(load_workbook(target)["儿童台账"].iter_rows(values_only=True))[1:]
    expected = children_visible_to(users["town_hutang"]).filter(status="active").count()
    assert summary["rows"] == len(rows) == expected
    row = next(r for r in rows if r[1] == "命令导出娃")
    assert row[6] != child.id_number and row[6].endswith(child.id_number[-4:])
    event = AuditEvent.objects.filter(action="export", actor_id=users["town_hutang"].pk).latest("seq")
    assert event.detail["via"] == "command" and event.detail["masked"] is True and event.detail["rows"] == expected
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_region_narrows_and_unmasked_shows_full_numbers(users, hutang_village, make_child, tmp_path):
    child = make_child(hutang_village, name="命令村娃")
    target = tmp_path / "village.xlsx"
    summary = _run(str(target), "--as", "district", "--region", hutang_village.code, "--unmasked")
    rows = list(load_workbook(target)["儿童台账"].iter_rows(values_only=True))[1:]
    assert {r[8] for r in rows} == {hutang_village.name}
    assert next(r for r in rows if r[1] == "命令村娃")[6] == child.id_number
    assert summary["masked"] is False and summary["unmasked_rows"] == len(rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as", "nobody"], "nobody"),
        (["--as", "leader"], "无权查看儿童台账"),
        (["--as", "police", "--unmasked"], "--unmasked"),
        (["--as", "district", "--region", "999999999999"], "不存在"),
        (["--as", "district", "--region", "3204"], "不存在"),
        (["--as", "village_hutang", "--region", "320412102000"], "不在用户"),
    ],
)
def test_refusals_exit_with_code_1_and_write_nothing(users, tmp_path, args, message):
    target = tmp_path / "refused.xlsx"
    before = AuditEvent.objects.filter(action="export").count()
    with pytest.raises(CommandError) as refused:
        call_command("export_ledger", str(target), *args)
    assert refused.value.returncode == 1
    assert message in str(refused.value)
    assert not target.exists()
    assert AuditEvent.objects.filter(action="export").count() == before
