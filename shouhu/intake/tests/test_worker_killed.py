"""A real huey worker killed (SIGKILL) in the middle of a commit leaves no partial import, and the
import, started again, completes. Runs `manage.py`-style subprocesses against a fresh SQLite database
and huey queue in a temporary directory (about 20 s). The worker validates the rows in a forked
process (shouhu.intake.pipeline, forced on for these 30 rows), forked from a huey worker thread as
in production."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from django.conf import settings

from shouhu.conftest import new_id_number
from shouhu.intake.tests.test_preview import HEADERS
from shouhu.intake.tests.test_reader import xlsx

ROWS = 30
BASE_DIR = Path(settings.BASE_DIR)

SETUP = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.utils import timezone
call_command("migrate", verbosity=0, interactive=False)
from shouhu.org.catalogue import sync_catalogue
from shouhu.registry.demo import build_world, create_demo_accounts
sync_catalogue(); build_world(seed=7, villages_per_town=3); create_demo_accounts()
from shouhu.intake import jobs
from shouhu.intake.models import ImportState, SurveyImport
from shouhu.org.models import User
from shouhu.registry.models import Child
user = User.objects.get(username="village_hutang")
data = open(sys.argv[1], "rb").read()
imp = SurveyImport(filename="big.xlsx", sha256="0" * 64, size=len(data), format="xlsx", imported_by=user,
                   organization=user.organization, state=ImportState.COMMITTING, attempts=1, queued_at=timezone.now())
imp.set_file(data); imp.full_clean(); imp.save()
jobs.commit_import(imp.pk, 1)  # queued in the directory's huey.sqlite3; no worker runs yet
print(json.dumps({"import": imp.pk, "children": Child.objects.count()}))
"""

# The real consumer, with one change: the import's audit event (the last write of the commit's
# transaction) reports how many children the open transaction holds and how many rows the
# validation process validated, then the worker hangs there.
WORKER_HANGING_BEFORE_COMMIT = """
import sys, time
import django
django.setup()
from shouhu.audit import services as audit
from shouhu.intake import pipeline
from shouhu.intake import services as intake
real = audit.record
stats = pipeline.Stats()
validated_batches = pipeline.validated_batches
pipeline.validated_batches = lambda *args, **kwargs: validated_batches(*args, **{**kwargs, "stats": stats})
def record(**kwargs):
    event = real(**kwargs)
    if kwargs.get("action") == "import":
        from shouhu.registry.models import Child
        open(sys.argv[1], "w").write(f"{Child.objects.count()} {stats.processes} {stats.rows_here}")
        time.sleep(120)
    return event
audit.record = intake.record = record
from django.core.management import call_command
call_command("run_huey", "--workers", "1", "--worker-type", "thread")
"""

RESTART = """
import sys
import django
django.setup()
from django.conf import settings
from shouhu.intake import jobs
from shouhu.intake.models import SurveyImport
imp = SurveyImport.objects.get(pk=int(sys.argv[1]))
settings.SHOUHU_IMPORT_STALE_SECONDS = 1  # the test does not wait two minutes
assert jobs.is_stale(imp), "a killed worker's import should be stale"
assert jobs.restart_import(actor=imp.imported_by, imp=imp)
print(imp.attempts)
"""


def _env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"SHOUHU_TESTING", "SHOUHU_DATABASE_URL", "SHOUHU_REDIS_URL"}
    }
    env.update(
        SHOUHU_DEMO="1",
        SHOUHU_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="shouhu.settings",
        PYTHONPATH=str(BASE_DIR),
        SHOUHU_LOG_LEVEL="WARNING",
        SHOUHU_IMPORT_PROCESSES="1",
        SHOUHU_IMPORT_PARALLEL_MIN_ROWS="1",
    )
    return env


def _script(var_dir: Path, name: str, code: str) -> str:
    path = var_dir / name
    path.write_text(code, encoding="utf-8")
    return str(path)


def _run(var_dir: Path, code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, _script(var_dir, "step.py", code), *args],
        cwd=BASE_DIR,
        env=_env(var_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _start(var_dir: Path, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=BASE_DIR,
        env=_env(var_dir),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(var_dir / "worker.log", "ab"),
    )  # noqa: SIM115


def _kill(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the worker's own process group: it and anything it started
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _query(var_dir: Path, sql: str, *params: object) -> tuple[object, ...]:
    conn = sqlite3.connect(var_dir / "shouhu.sqlite3", timeout=20)
    try:
        return conn.execute(sql, params).fetchone()
    finally:
        conn.close()


def _wait(condition, seconds: float, what: str, proc: subprocess.Popen[bytes], var_dir: Path) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    log = (var_dir / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log}")


def test_a_killed_worker_leaves_no_partial_import_and_the_restart_completes(db, hutang_village, tmp_path):  # noqa: ANN001
    rows = [HEADERS] + [
        [
            hutang_village.name,
            f"测试{i:03d}",
            new_id_number(date(2012 + i % 8, 1 + i % 12, 1 + i % 27)),
            "小学",
            "",
            "",
            "",
            "",
        ]
        for i in range(ROWS)
    ]
    source = tmp_path / "big.xlsx"
    source.write_bytes(xlsx(rows))
    setup = json.loads(_run(tmp_path, SETUP, str(source)))
    import_id, before = setup["import"], setup["children"]

    marker = tmp_path / "in_transaction"
    worker = _start(
        tmp_path, [sys.executable, _script(tmp_path, "worker.py", WORKER_HANGING_BEFORE_COMMIT), str(marker)]
    )
    try:
        _wait(lambda: marker.exists() and marker.read_text().strip(), 90, "the commit's last write", worker, tmp_path)
        children, processes, validated_here = map(int, marker.read_text().split())
        assert children == before + ROWS  # every child written, inside the open transaction
        assert (processes, validated_here) == (1, 0)  # every row validated by the forked process
        _kill(worker, signal.SIGKILL)
    finally:
        if worker.poll() is None:
            _kill(worker, signal.SIGKILL)

    assert _query(tmp_path, "SELECT COUNT(*) FROM registry_child") == (before,)
    assert _query(tmp_path, "SELECT COUNT(*) FROM intake_surveyimportitem") == (0,)
    assert _query(
        tmp_path, "SELECT state, attempts, committed_at FROM intake_surveyimport WHERE id = ?", import_id
    ) == ("committing", 1, None)
    assert _query(tmp_path, "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'import'") == (0,)

    time.sleep(1.2)  # the dead worker's last heartbeat ages past the (shortened) limit
    assert _run(tmp_path, RESTART, str(import_id)) == "2"
    worker = _start(tmp_path, [sys.executable, "manage.py", "run_huey", "--workers", "1", "--worker-type", "thread"])
    try:
        _wait(
            lambda: _query(tmp_path, "SELECT state FROM intake_surveyimport WHERE id = ?", import_id)[0] == "committed",
            90,
            "the restarted commit",
            worker,
            tmp_path,
        )
    finally:
        _kill(worker, signal.SIGTERM)
    assert _query(tmp_path, "SELECT COUNT(*) FROM registry_child") == (before + ROWS,)
    assert _query(tmp_path, "SELECT COUNT(*) FROM intake_surveyimportitem") == (ROWS,)
    assert _query(
        tmp_path, "SELECT attempts, finished_at IS NOT NULL FROM intake_surveyimport WHERE id = ?", import_id
    ) == (2, 1)
    # No row fell back to the importing process (the pipeline's warning when one does).
    assert "validated in the importing process" not in (tmp_path / "worker.log").read_text(errors="replace")
