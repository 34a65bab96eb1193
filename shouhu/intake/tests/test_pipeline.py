"""A large file's rows validated by forked processes (shouhu.intake.pipeline) give exactly what
validating them in the importing process gives: the same counts, statuses, differences and
messages, the same children written; a row that needs the database, and every row of a process
that died, are validated by the importer itself."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest
from django.db import transaction

from shouhu.conftest import new_id_number
from shouhu.intake import pipeline
from shouhu.intake import preview as p
from shouhu.intake.preview import preview_import
from shouhu.intake.reader import RowValidator
from shouhu.intake.services import import_commit
from shouhu.intake.tests.test_reader import FULL_HEADERS, full_row, xlsx

HEADERS = [
    "所在村（社区）",
    "村（社区）代码",
    "姓名",
    "身份证号",
    "出生日期",
    "就学阶段",
    "现住址",
    "父亲姓名",
    "父亲情况",
]


@pytest.fixture
def town(users):  # noqa: ANN001
    return users["town_hutang"]


@pytest.fixture
def villages(hutang_village):  # noqa: ANN001
    from shouhu.org.models import Region

    return list(Region.objects.filter(code__startswith=hutang_village.code[:9], level=5).order_by("code"))


def _messy_file(villages, niutang_village, ledger) -> bytes:  # noqa: ANN001
    """Forty rows over the town's villages: new, changed, unchanged and invalid rows of many kinds,
    an ID number repeated across batches, and rows whose village only the database can explain."""
    rows: list[list[object]] = [HEADERS]
    first_id = new_id_number(date(2015, 3, 8))
    for n in range(30):
        village = villages[n % len(villages)]
        rows.append(
            [
                village.name,
                "",
                f"郑{'一二三四五六七八九十'[n % 10]}{n}号"[:4],
                new_id_number(date(2014, 1 + n % 12, 1 + n % 27)) if n else first_id,
                "",
                ("小学", "初中", "幼儿园")[n % 3],
                f"湖塘镇人民路{n}号",
                "郑大海",
                "外出务工" if n % 2 else "",
            ]
        )
    child, same = ledger
    rows += [
        [villages[0].name, "", child.name, child.id_number, "", "初中", "", "", ""],  # changed
        [villages[0].name, "", same.name, same.id_number, "", "小学", "", "", ""],  # unchanged
        [villages[1].name, "", "王错号", "320481201501019999", "", "小学", "", "", ""],  # bad check digit
        [villages[1].name, "", "王精度", 3.20412201501011e17, "", "小学", "", "", ""],  # lost precision
        [villages[1].name, "", "王日期", new_id_number(date(2016, 5, 5)), "2016年13月1日", "", "", "", ""],
        [villages[1].name, "", "王学段", new_id_number(date(2016, 6, 6)), "", "大学", "", "", ""],
        [villages[2].name, "", "王重号", first_id, "", "小学", "", "", ""],  # row 3's ID again
        ["", niutang_village.code, "王外镇", new_id_number(date(2016, 7, 7)), "", "", "", "", ""],  # out of scope
        ["没有这个村", "", "王无村", new_id_number(date(2016, 8, 8)), "", "", "", "", ""],  # unknown village
        ["", "320412999999", "王无码", new_id_number(date(2016, 9, 9)), "", "", "", "", ""],  # no such code
    ]
    return xlsx(rows, title="湖塘镇摸底排查表")


@pytest.fixture
def ledger(town, villages, make_child):  # noqa: ANN001
    return (
        make_child(villages[0], actor=town, name="周小川", birth=date(2013, 5, 6)),
        make_child(villages[0], actor=town, name="吴小亮", birth=date(2012, 4, 5)),
    )


def _pipelined(settings, monkeypatch, processes: int = 2) -> None:  # noqa: ANN001
    settings.SHOUHU_IMPORT_PROCESSES = processes
    settings.SHOUHU_IMPORT_PARALLEL_MIN_ROWS = 1
    monkeypatch.setattr(p, "BATCH", 4)  # ten batches, the repeated ID three batches after its first row


def _serial(settings) -> None:  # noqa: ANN001
    settings.SHOUHU_IMPORT_PROCESSES = 0


def _view(preview) -> dict:  # noqa: ANN001
    return {
        "counts": preview.counts,
        "rows": [(r.row, r.status, r.name, r.existing_child_id, r.diffs) for r in preview.rows],
        "errors": [(e.row, e.key, e.column, e.letter, e.message) for e in preview.errors],
        "warnings": preview.warnings,
    }


def _stats_of(monkeypatch) -> list[pipeline.Stats]:  # noqa: ANN001
    """The pipeline's Stats of each file validated from now on."""
    seen: list[pipeline.Stats] = []
    original = pipeline.validated_batches

    def validated_batches(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        kwargs["stats"] = stats = pipeline.Stats()
        seen.append(stats)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "validated_batches", validated_batches)
    return seen


def test_a_pipelined_preview_equals_the_serial_one(db, settings, monkeypatch, town, villages, niutang_village, ledger):
    data = _messy_file(villages, niutang_village, ledger)
    _serial(settings)
    serial = _view(preview_import(actor=town, source=data, filename="湖塘镇.xlsx"))
    assert serial["counts"] == {"new": 30, "changed": 1, "unchanged": 1, "invalid": 8}, serial["errors"]

    _pipelined(settings, monkeypatch)
    stats = _stats_of(monkeypatch)
    piped = _view(preview_import(actor=town, source=data, filename="湖塘镇.xlsx"))
    assert piped == serial
    [run] = stats
    assert run.processes == 2 and run.batches == 10 and not run.broken
    # Only the rows whose village the validation processes could not explain without the
    # database (outside the scope, not found) were validated again here.
    assert run.rows_here == 3 and run.unexpected == 0, run.reasons
    assert all("DatabaseUnavailable" in reason for reason in run.reasons)


def _snapshot(town) -> list[tuple]:  # noqa: ANN001
    """What the ledger holds about the children `town` registered, without ids or timestamps."""
    from shouhu.registry.models import Child

    out = []
    for child in (
        Child.objects.filter(registered_by=town)
        .select_related("household")
        .prefetch_related("family__situations", "entrustments")
    ):
        family = sorted(
            (f.relation, f.name, f.id_number, f.birth_date, f.phone, f.work_place, f.capacity, f.is_guardian)
            + tuple(sorted((s.kind, s.since, s.disability_grade) for s in f.situations.all()))
            for f in child.family.all()
        )
        carers = sorted((e.carer_name, e.carer_relation, e.since) for e in child.entrustments.all())
        household = child.household
        out.append(
            (
                child.id_number,
                child.name,
                child.birth_date,
                child.gender,
                child.region_id,
                child.school_stage,
                child.health,
                (household.address, household.economic_status, tuple(household.income_sources)) if household else None,
                tuple(family),
                tuple(carers),
            )
        )
    return sorted(out)


def test_a_pipelined_commit_writes_what_the_serial_one_writes(db, settings, monkeypatch, town, villages):
    rows = [FULL_HEADERS]
    for n in range(12):
        rows.append(full_row(villages[n % len(villages)].name, new_id_number(date(2013, 1 + n, 2))))
    data = xlsx(rows)
    _serial(settings)
    with transaction.atomic():
        imp = import_commit(actor=town, source=data, filename="a.xlsx")
        assert imp.state == "committed", [str(e) for e in imp.preview.errors]
        serial = _snapshot(town)
        transaction.set_rollback(True)
    assert len(serial) == 12 and not _snapshot(town)

    _pipelined(settings, monkeypatch)
    stats = _stats_of(monkeypatch)
    imp = import_commit(actor=town, source=data, filename="a.xlsx")
    assert imp.state == "committed" and imp.counts["new"] == 12
    assert _snapshot(town) == serial
    [run] = stats
    assert run.processes == 2 and run.rows_here == 0 and not run.broken  # every row validated elsewhere


def test_a_dead_validation_process_leaves_its_rows_to_the_importer(
    db, settings, monkeypatch, town, villages, niutang_village, ledger
):
    data = _messy_file(villages, niutang_village, ledger)
    _serial(settings)
    serial = _view(preview_import(actor=town, source=data, filename="湖塘镇.xlsx"))

    importer = os.getpid()
    validate = RowValidator.validate

    def dies_on_row_12(self, raw):  # noqa: ANN001, ANN202
        if os.getpid() != importer and raw.row == 12:
            os._exit(1)  # as if the kernel killed it
        return validate(self, raw)

    monkeypatch.setattr(RowValidator, "validate", dies_on_row_12)  # inherited by the forked processes
    _pipelined(settings, monkeypatch)
    stats = _stats_of(monkeypatch)
    assert _view(preview_import(actor=town, source=data, filename="湖塘镇.xlsx")) == serial
    [run] = stats
    assert run.broken and run.rows_here >= 4 and run.unexpected >= 4


def test_small_files_and_zero_processes_stay_in_this_process(db, settings, monkeypatch, town, villages):
    data = xlsx([HEADERS[:6], [villages[0].name, "", "郑小", new_id_number(date(2015, 1, 1)), "", "小学"]])
    stats = _stats_of(monkeypatch)
    settings.SHOUHU_IMPORT_PROCESSES = 2
    settings.SHOUHU_IMPORT_PARALLEL_MIN_ROWS = 2000
    assert preview_import(actor=town, source=data, filename="x.xlsx").counts["new"] == 1
    settings.SHOUHU_IMPORT_PARALLEL_MIN_ROWS = 1
    settings.SHOUHU_IMPORT_PROCESSES = 0
    assert preview_import(actor=town, source=data, filename="x.xlsx").counts["new"] == 1
    assert [s.processes for s in stats] == [0, 0]
    settings.SHOUHU_IMPORT_PROCESSES = -1  # the default: the CPUs less one, at most four
    assert pipeline.processes() == min(4, (os.cpu_count() or 1) - 1)


# A process that forks validation processes, prints one's pid and waits (the importer, stuck).
IMPORTER = """
import os, time
import django
django.setup()
from shouhu.intake import pipeline
pool = pipeline._pool(None, 1)
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(300)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
def test_validation_processes_exit_when_the_importer_is_killed(tmp_path):  # noqa: ANN001
    """Else they would keep the killed importer's database socket, its open transaction and its locks."""
    import signal
    import subprocess
    import sys

    from django.conf import settings as django_settings

    env = {k: v for k, v in os.environ.items() if k not in {"SHOUHU_DATABASE_URL", "SHOUHU_REDIS_URL"}}
    env.update(SHOUHU_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="shouhu.settings", SHOUHU_TESTING="1")
    importer = subprocess.Popen(
        [sys.executable, "-c", IMPORTER], cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert importer.stdout is not None
        child = int(importer.stdout.readline())
        assert child != importer.pid and _running(child)
        os.kill(importer.pid, signal.SIGKILL)  # the importer alone, as the OOM killer would
        importer.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child)
    finally:
        importer.kill()


def test_a_validation_process_seals_a_valid_rows_personal_values():
    from shouhu.intake.reader import RowResult
    from shouhu.lib.crypto import Sealed, decrypt

    result = RowResult(
        row=2,
        child={"name": "郑小", "id_number": "320412201501010018"},
        household={"address": "人民路1号"},
        members=[{"name": "郑父", "id_number": "", "phone": "13812345678", "situations": []}],
        entrustment=None,
    )
    pipeline._seal(result)
    sealed = [result.child["id_number"], result.household["address"], result.members[0]["phone"]]
    assert all(type(v) is Sealed and decrypt(v.ciphertext) == v for v in sealed)
    assert type(result.child["name"]) is str and result.members[0]["id_number"] == ""  # not personal; empty
    assert set(pipeline._encrypted_fields()["entrustment"]) == {"carer_id_number", "carer_phone"}

    invalid = RowResult(row=3, child={"id_number": "320412201501010018"})
    invalid.errors.append(object())  # type: ignore[arg-type]
    pipeline._seal(invalid)
    assert type(invalid.child["id_number"]) is str  # an invalid row is never written
