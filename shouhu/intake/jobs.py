"""Survey imports of large files in the background (huey): the check (preview) and the commit.

The flow, one `SurveyImport` row from upload to record:

    upload ──start_check──▶ checking ──check_import──▶ previewed ──start_commit──▶ committing
        ──commit_import──▶ committed │ failed (rows invalid now; or the file as a whole: `job_error`)

Every arrow that hands work to a worker is a committed write first (the state, `attempts`+1,
`queued_at`), then the enqueue of a job that carries the attempt number. A job starts by *claiming*
its row: one conditional UPDATE (state, attempt, `started_at` still null) that only one worker can
win, so a duplicate delivery or a superseded attempt does nothing. The commit itself is
`services.import_commit(into=…)`: one transaction, so a worker killed mid-commit leaves no partial
import; the row stays *committing* and its heartbeat stops.

Progress lives outside the database (huey's key-value storage, keyed by import and attempt), so the
page reads it while the commit's transaction is open, even on SQLite where a second connection
cannot write meanwhile. A running job beats every HEARTBEAT_SECONDS from a side thread; a running
row whose heartbeat is older than `SHOUHU_IMPORT_STALE_SECONDS` (120 s) lost its worker: the page
says so and offers `restart_import`, which is the same arrow again with the next attempt number.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from huey.contrib.djhuey import HUEY, db_task

from shouhu.intake import reader as r
from shouhu.intake.models import RUNNING_STATES, UNCONFIRMED_STATES, ImportState, SurveyImport
from shouhu.intake.preview import Preview, preview_import
from shouhu.intake.services import import_commit
from shouhu.registry.services import StaleEdit

logger = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_SECONDS = 5
ERRORS_KEPT = 1000  # errors stored with a background preview (the error workbook has them all)
CHANGED_KEPT = 200  # changed children whose differences are stored and shown
PREVIEW_KEPT_SECONDS = 24 * 3600  # an unconfirmed upload of anyone's is deleted after this
EVALUATION_BATCH = 1000  # new children evaluated per query batch after an import's commit


def stale_seconds() -> int:
    return int(getattr(settings, "SHOUHU_IMPORT_STALE_SECONDS", 120))


def sync_max_undo_items() -> int:
    """An import of more children than this is undone in the background (a whole district's took
    minutes: longer than a web request may run)."""
    return int(getattr(settings, "SHOUHU_IMPORT_SYNC_MAX_UNDO", 2000))


def sync_max_bytes() -> int:
    """Uploads up to this size are checked in the request; bigger ones in the background."""
    return int(getattr(settings, "SHOUHU_IMPORT_SYNC_MAX_BYTES", 1024 * 1024))


# ----- progress (huey storage, outside the database) ---------------------------------------------


def _key(import_id: int, attempt: int, what: str) -> str:
    return f"shouhu.intake.import.{import_id}.{attempt}.{what}"


@dataclass(frozen=True)
class JobProgress:
    done: int  # rows read so far
    estimate: int  # rows in the file, roughly (blank rows included)
    beat: float | None  # time.time() of the last sign of life of the worker, None before the first

    @property
    def percent(self) -> int:
        if self.estimate <= 0:
            return 0
        return max(0, min(100, round(100 * self.done / self.estimate)))


def progress_of(imp: SurveyImport) -> JobProgress:
    data = HUEY.get(_key(imp.pk, imp.attempts, "progress"), peek=True) or {}
    beat = HUEY.get(_key(imp.pk, imp.attempts, "beat"), peek=True)
    return JobProgress(
        done=int(data.get("done", 0)),
        estimate=int(data.get("estimate", 0)),
        beat=float(beat) if beat is not None else None,
    )


def is_stale(imp: SurveyImport, progress: JobProgress | None = None, *, now: float | None = None) -> bool:
    """A running import whose worker has shown no sign of life for `stale_seconds()`: it died (or
    no worker ever took the job)."""
    if not imp.running:
        return False
    progress = progress or progress_of(imp)
    since = progress.beat
    if since is None:
        moment = imp.started_at or imp.queued_at or imp.created_at
        since = moment.timestamp() if moment else None
    if since is None:
        return True
    return (now if now is not None else time.time()) - since > stale_seconds()


def _reporter(import_id: int, attempt: int) -> r.Progress:
    def report(done: int, estimate: int) -> None:
        HUEY.put(_key(import_id, attempt, "progress"), {"done": int(done), "estimate": int(estimate)})
        HUEY.put(_key(import_id, attempt, "beat"), time.time())

    return report


@contextlib.contextmanager
def _heartbeat(import_id: int, attempt: int) -> Iterator[None]:
    """Beat from a side thread while the job runs: slow reading of a big sheet is not a death."""
    key = _key(import_id, attempt, "beat")
    HUEY.put(key, time.time())
    if HUEY.immediate:  # tests: the job runs inline, one beat is enough
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                HUEY.put(key, time.time())
            except Exception:  # noqa: BLE001 - a missed beat must not kill the import
                logger.warning("import %s: heartbeat not stored", import_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"import-{import_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_SECONDS + 1)


# ----- the stored preview ------------------------------------------------------------------------


def preview_result(preview: Preview) -> dict[str, Any]:
    """What the status page shows of a preview, as JSON: counts, header warnings, the first
    ERRORS_KEPT errors and the first CHANGED_KEPT changed rows (values masked as the preview has
    them), and the ids of those children (for the audit event of whoever views it)."""
    changed = [row for row in preview.rows if row.diffs]
    return {
        "sheet": preview.sheet,
        "header_row": preview.header_row,
        "counts": preview.summary(),
        "ok": preview.ok,
        "warnings": [str(w) for w in preview.warnings],
        "errors": [
            {"row": e.row, "letter": e.letter, "column": str(e.column), "message": str(e.message)}
            for e in preview.errors[:ERRORS_KEPT]
        ],
        "errors_total": len(preview.errors),
        "changed": [
            {
                "row": row.row,
                "name": row.name,
                "diffs": [{"label": str(d.label), "old": str(d.old), "new": str(d.new)} for d in row.diffs],
            }
            for row in changed[:CHANGED_KEPT]
        ],
        "changed_total": len(changed),
        "children": [str(row.existing_child_id) for row in changed[:CHANGED_KEPT] if row.existing_child_id],
    }


# ----- the arrows --------------------------------------------------------------------------------


def _format_of(filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return suffix[:10] or "?"


def start_check(*, actor: Any, data: bytes, filename: str) -> SurveyImport:
    """Keep an uploaded file as an import in state *checking* and queue its preview job. Replaces the
    uploader's earlier unconfirmed upload (and anyone's older than a day), as the page always did."""
    [imp] = _start_checks(actor, [(data, filename)], batch=None)
    return imp


def start_batch(*, actor: Any, uploads: list[tuple[bytes, str]]) -> UUID:
    """Files uploaded together (a town's village sheets): each kept and checked as `start_check`
    does, all under one batch id, which replaces the uploader's earlier unconfirmed uploads."""
    batch = uuid4()
    _start_checks(actor, uploads, batch=batch)
    return batch


def _start_checks(actor: Any, uploads: list[tuple[bytes, str]], *, batch: UUID | None) -> list[SurveyImport]:
    now = timezone.now()
    with transaction.atomic():
        SurveyImport.objects.filter(
            Q(imported_by=actor) | Q(created_at__lt=now - timedelta(seconds=PREVIEW_KEPT_SECONDS)),
            state__in=UNCONFIRMED_STATES,
        ).delete()
        created = []
        for data, filename in uploads:
            imp = SurveyImport(
                filename=filename[-255:],
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                format=_format_of(filename),
                imported_by=actor,
                organization=getattr(actor, "organization", None),
                state=ImportState.CHECKING,
                attempts=1,
                queued_at=now,
                batch=batch,
            )
            imp.set_file(data)
            imp.full_clean()
            imp.save()
            created.append(imp)
    for imp in created:  # queued once every row is committed: a worker never looks for a row not yet there
        check_import(imp.pk, imp.attempts)
    return created


def start_commit(*, actor: Any, imp: SurveyImport) -> bool:
    """Confirm a background-previewed import: *previewed* → *committing*, then queue the commit.
    False when someone (a second click) got there first."""
    attempt = imp.attempts + 1
    moved = SurveyImport.objects.filter(pk=imp.pk, state=ImportState.PREVIEWED, imported_by=actor).update(
        state=ImportState.COMMITTING,
        attempts=attempt,
        queued_at=timezone.now(),
        started_at=None,
        finished_at=None,
        job_error="",
    )
    if not moved:
        return False
    commit_import(imp.pk, attempt)
    return True


def start_undo(*, actor: Any, imp: SurveyImport) -> bool:
    """Undo a large import in the background: *committed* → *undoing*, then queue the undo, which
    runs as `actor`. False when it is not (or no longer) committed."""
    attempt = imp.attempts + 1
    moved = SurveyImport.objects.filter(pk=imp.pk, state=ImportState.COMMITTED).update(
        state=ImportState.UNDOING,
        attempts=attempt,
        queued_at=timezone.now(),
        started_at=None,
        finished_at=None,
        job_error="",
    )
    if not moved:
        return False
    undo_import(imp.pk, attempt, actor.pk)
    return True


def restart_import(*, actor: Any, imp: SurveyImport) -> bool:
    """Start a running import again whose worker died (or failed unexpectedly): its uploader, or
    for an undo whoever restarts it (the undo runs as them). False when it is not running, or
    still alive."""
    with transaction.atomic():
        locked = (
            SurveyImport.objects.select_for_update()
            .defer("file")
            .filter(Q(imported_by=actor) | Q(state=ImportState.UNDOING), pk=imp.pk, state__in=RUNNING_STATES)
            .first()
        )
        if locked is None or not (locked.job_error or is_stale(locked)):
            return False
        locked.attempts += 1
        locked.queued_at, locked.started_at, locked.finished_at, locked.job_error = timezone.now(), None, None, ""
        locked.save(update_fields=["attempts", "queued_at", "started_at", "finished_at", "job_error"])
    if locked.state == ImportState.UNDOING:
        undo_import(locked.pk, locked.attempts, actor.pk)
    else:
        (check_import if locked.state == ImportState.CHECKING else commit_import)(locked.pk, locked.attempts)
    imp.refresh_from_db()
    return True


# ----- the jobs ----------------------------------------------------------------------------------


def _claim(import_id: int, state: str, attempt: int) -> SurveyImport | None:
    """Take the row for this attempt; only one worker can (a conditional UPDATE)."""
    won = SurveyImport.objects.filter(
        pk=import_id, state=state, attempts=attempt, started_at__isnull=True, job_error=""
    ).update(started_at=timezone.now())
    if not won:
        logger.info("import %s attempt %s: not claimed (superseded, taken or gone)", import_id, attempt)
        return None
    return SurveyImport.objects.select_related("imported_by").get(pk=import_id)


def _finish(
    import_id: int, attempt: int, states: tuple[str, ...], *, result: dict[str, Any] | None = None, **fields: Any
) -> None:
    """Record the end of an attempt on its row, if the row is still this attempt's."""
    with transaction.atomic():
        # The kept file is neither decrypted nor written again (20 MB for a 100,000-row sheet).
        imp = (
            SurveyImport.objects.select_for_update()
            .defer("file")
            .filter(pk=import_id, attempts=attempt, state__in=states)
            .first()
        )
        if imp is None:
            return
        for name, value in fields.items():
            setattr(imp, name, value)
        if result is not None:
            imp.set_result(result)
        imp.finished_at = timezone.now()
        imp.full_clean(exclude=list(imp.get_deferred_fields()))
        imp.save()


def _unexpected() -> str:
    return _("后台任务出错，台账没有任何改动。请重新开始；如果仍然出错，请联系管理员。")


def _the_upload(imp: SurveyImport, attempt: int) -> dict[str, Any]:
    """What checking or committing a kept upload is called with: the uploader (who must still
    exist), the file, its name, the attempt's progress reporter."""
    if imp.imported_by is None:
        raise PermissionDenied(_("上传文件的账号已不存在。"))
    return {
        "actor": imp.imported_by,
        "source": imp.file_bytes(),
        "filename": imp.filename,
        "progress": _reporter(imp.pk, attempt),
    }


def _attempt(
    import_id: int,
    attempt: int,
    running: str,
    work: Callable[[], T],
    done: Callable[[T], None],
    *,
    foreseen: tuple[type[Exception], ...],
    then: str,
    saying: Callable[[Exception], str],
    what: str,
) -> None:
    """Run a claimed attempt's work under its heartbeat, then `done` with the result. A foreseen
    failure ends the attempt in state `then` with `saying(exc)` as `job_error`; anything else is
    logged and ends it with the unexpected-error text, its state left as it was (restartable)."""
    with _heartbeat(import_id, attempt):
        try:
            result = work()
        except foreseen as exc:
            _finish(import_id, attempt, (running,), state=then, job_error=saying(exc))
            return
        except Exception:
            logger.exception("import %s: the %s failed", import_id, what)
            _finish(import_id, attempt, (running,), job_error=_unexpected())
            return
        done(result)


@db_task()
def check_import(import_id: int, attempt: int) -> None:
    """The preview of a kept upload, stored on the row: *checking* → *previewed* (or *failed*
    when the file as a whole cannot be read)."""
    imp = _claim(import_id, ImportState.CHECKING, attempt)
    if imp is None:
        return

    def check() -> Preview:
        return preview_import(**_the_upload(imp, attempt))

    def checked(preview: Preview) -> None:
        _finish(
            import_id,
            attempt,
            (ImportState.CHECKING,),
            result=preview_result(preview),
            state=ImportState.PREVIEWED,
            counts=preview.summary(),
            sha256=preview.sha256,
            format=preview.format[:10],
        )

    _attempt(
        import_id,
        attempt,
        ImportState.CHECKING,
        check,
        checked,
        foreseen=(r.SurveyFileError, PermissionDenied),
        then=ImportState.FAILED,
        saying=str,
        what="check",
    )


@db_task(retries=2, retry_delay=60)
def evaluate_import(import_id: int) -> dict[str, int]:
    """The policy evaluation of the children a committed import created or changed, a batch at a
    time, read back from the import's items (the commit keeps no list of them). A failure is retried; the
    nightly run catches up with whatever is still left."""
    from shouhu.intake.models import ItemAction, SurveyImportItem
    from shouhu.policy.services import reevaluate_children

    ids = (
        SurveyImportItem.objects.filter(
            survey_import_id=import_id, action__in=[ItemAction.CREATED, ItemAction.CHANGED], child__isnull=False
        )
        .order_by("pk")
        .values_list("child_id", flat=True)
    )
    counts = {"children": 0, "changed": 0}
    batch: list[UUID] = []
    for child_id in ids.iterator(chunk_size=EVALUATION_BATCH):
        batch.append(child_id)
        if len(batch) >= EVALUATION_BATCH:
            for key, value in reevaluate_children(batch).items():
                counts[key] = counts.get(key, 0) + value
            batch = []
    if batch:
        for key, value in reevaluate_children(batch).items():
            counts[key] = counts.get(key, 0) + value
    logger.info("policy evaluation of the children import %s created or changed: %s", import_id, counts)
    return counts


def schedule_evaluation(import_id: int) -> None:
    """Queue `evaluate_import` when the current transaction commits (nothing on rollback)."""
    transaction.on_commit(lambda: evaluate_import(import_id))


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "；".join(exc.messages)
    if isinstance(exc, StaleEdit):
        return str(exc.message)  # str(exc) is the version number
    return str(exc)


@db_task()
def commit_import(import_id: int, attempt: int) -> None:
    """The commit of a confirmed import: *committing* → *committed*, or *failed* (rows invalid now:
    their errors stored as the result; the file as a whole: `job_error`). All or nothing."""
    imp = _claim(import_id, ImportState.COMMITTING, attempt)
    if imp is None:
        return

    def commit() -> SurveyImport:
        return import_commit(**_the_upload(imp, attempt), into=imp)

    def committed(done: SurveyImport) -> None:
        preview = getattr(done, "preview", None)
        result = preview_result(preview) if preview is not None and done.state == ImportState.FAILED else None
        _finish(import_id, attempt, (ImportState.COMMITTED, ImportState.FAILED), result=result)

    _attempt(
        import_id,
        attempt,
        ImportState.COMMITTING,
        commit,
        committed,
        foreseen=(r.SurveyFileError, ValidationError, StaleEdit, PermissionDenied),
        then=ImportState.FAILED,
        saying=lambda exc: _("导入未完成，台账没有任何改动：%(e)s") % {"e": _error_text(exc)},
        what="commit",
    )


@db_task()
def undo_import(import_id: int, attempt: int, actor_id: int) -> None:
    """The undo of a large import: *undoing* → *undone*, or back to *committed* with `job_error`
    saying why (a child edited since …). All or nothing: one transaction."""
    from shouhu.intake.services import import_undo
    from shouhu.org.models import User

    imp = _claim(import_id, ImportState.UNDOING, attempt)
    if imp is None:
        return

    def undo() -> None:
        actor = User.objects.filter(pk=actor_id, is_active=True).first()
        if actor is None:
            raise PermissionDenied(_("要求撤销的账号已不存在或已停用。"))
        import_undo(actor=actor, imp=imp, progress=_reporter(import_id, attempt), background=True)

    _attempt(
        import_id,
        attempt,
        ImportState.UNDOING,
        undo,
        lambda _none: _finish(import_id, attempt, (ImportState.UNDONE,)),
        foreseen=(ValidationError, StaleEdit, PermissionDenied),
        then=ImportState.COMMITTED,
        saying=lambda exc: _("撤销未完成，台账没有任何改动：%(e)s") % {"e": _error_text(exc)},
        what="undo",
    )
