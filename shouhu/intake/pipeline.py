"""Validating a large survey file on more than one core, while it is read and written.

Every row is validated through the registry's forms, the rules the pages and the API use: about
1.5 ms of CPU a row, more than reading and writing it together. For a file of at least
`SHOUHU_IMPORT_PARALLEL_MIN_ROWS` rows (2,000) the rows are validated, a batch at a time, by
`SHOUHU_IMPORT_PROCESSES` forked processes (default -1: the machine's CPUs less one, at most 4;
0 turns this off), while this process reads the next batches, asks the ledger about them and writes
the batches already validated. Smaller files, and platforms without `fork`, are validated here.

What stays in this process, in file order: reading; the duplicate marking (which row first had
an ID number, `RowValidator.mark_duplicates`); and the look-up of the ledger's children with a
batch's ID numbers (`RowValidator.lookup`, inside the import's own transaction — asked of the
import's writer thread when it writes behind, lib.writebehind). A validation process only runs
`RowValidator.validate` with the validator it was forked with (the importer's scope, villages and
forms, warmed first) and the batch's prefetched children, sent with the batch, then encrypts the
personal values of the valid rows (`crypto.Sealed`), which the importing process stores as they are.

It never uses the database. The connections it inherits are this process's, sockets in the middle
of a transaction: they are set aside (kept referenced and never closed, so that the child's exit
does not shut them) and any query raises `DatabaseUnavailable`. A row whose validation needs the
database anyway (an error path: a village code outside the importer's scope is looked up to say
what it is) or fails in any other way is validated again here, as is every row of a batch whose
process died. So the results are those of validating here, row for row; a test holds them equal.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import translation

from shouhu.intake.reader import RawRow, RowResult, RowValidator, id_indexes
from shouhu.lib import writebehind
from shouhu.lib.crypto import Sealed
from shouhu.registry.forms import one_day

logger = logging.getLogger(__name__)

Batch = tuple[list[RawRow], list[RowResult]]


def processes() -> int:
    """How many validation processes a large import forks (0: validate in this process)."""
    configured = int(getattr(settings, "SHOUHU_IMPORT_PROCESSES", -1))
    if configured < 0:
        configured = min(4, (os.cpu_count() or 1) - 1)
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return max(0, int(configured))


def min_rows() -> int:
    """Files with fewer rows (by the reader's estimate) are validated in this process."""
    return int(getattr(settings, "SHOUHU_IMPORT_PARALLEL_MIN_ROWS", 2000))


@dataclass
class Stats:
    """What a pipelined validation did: for the benchmark, the logs and the tests."""

    processes: int = 0
    batches: int = 0
    rows_here: int = 0  # rows validated again in this process (a process failed, or the row needed the database)
    unexpected: int = 0  # of those, the rows validated here for another reason than the database
    broken: bool = False  # a validation process died: the rest of the file was validated here
    reasons: list[str] = field(default_factory=list)  # why rows were validated here (at most a few)


def validated_batches(
    validator: RowValidator, batches: Iterable[list[RawRow]], *, estimate: int, stats: Stats | None = None
) -> Iterator[Batch]:
    """Each batch of rows with its results, in file order: validated in this process for a small
    file, else by the validation processes (see the module's docstring)."""
    workers = processes() if estimate >= min_rows() else 0
    stats = stats if stats is not None else Stats()
    if workers < 1:
        for batch in batches:
            validator.prefetch(batch)
            with one_day():
                results = [validator.validate(raw) for raw in batch]
            yield batch, results
        return
    yield from _pipelined(validator, batches, workers, stats)


# Validation processes keep at most this many batches each in flight: enough to keep them busy
# while this process writes, few enough that memory does not grow with the file.
_IN_FLIGHT_PER_PROCESS = 4


@dataclass
class _Job:
    rows: list[RawRow]
    known: dict[str, tuple[Any, bool]] | None = None
    instances: dict[Any, Any] = field(default_factory=dict)
    future: Future[list[RowResult | str]] | None = None
    lookup: Future[Any] | None = None  # the ledger's children, asked of the writer thread (lib.writebehind)
    submitted: bool = False


def _pipelined(validator: RowValidator, batches: Iterable[list[RawRow]], workers: int, stats: Stats) -> Iterator[Batch]:
    """The batches in file order. Each batch's duplicates are marked here as it is read; the
    ledger's children with its ID numbers are looked up — inside an import's write-behind block
    by its writer thread, after the writes of the batches before (so the answer is the one this
    thread would get), while this thread writes the batch before; then it goes to a validation
    process."""
    from django.db import connection

    validator.warm()
    stats.processes = workers
    language = translation.get_language()
    behind = writebehind.current(connection)
    pool = _pool(validator, workers)
    window: deque[_Job] = deque()

    def submit(job: _Job) -> None:
        job.submitted = True
        if job.lookup is not None:
            job.known, job.instances = behind.collect(job.lookup)  # type: ignore[union-attr]
        if stats.broken:
            return
        try:
            job.future = pool.submit(_validate_batch, language, job.known, job.instances, job.rows)
        except (BrokenProcessPool, RuntimeError) as exc:
            _broke(stats, exc)

    def submit_ready() -> None:  # in order, as far as the look-ups have been answered
        for job in window:
            if not job.submitted:
                if job.lookup is not None and not job.lookup.done():
                    return
                submit(job)

    try:
        for rows in batches:
            indexes = id_indexes(rows)
            validator.mark_duplicates(rows, indexes)
            job = _Job(rows)
            if behind is not None:
                job.lookup = behind.call(validator.lookup, indexes)
            else:
                job.known, job.instances = validator.lookup(indexes)
            window.append(job)
            submit_ready()
            while len(window) > workers * _IN_FLIGHT_PER_PROCESS:
                yield _finish(validator, window.popleft(), stats, submit)
        while window:
            yield _finish(validator, window.popleft(), stats, submit)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if stats.rows_here or stats.broken:
        # Rows whose village only the database can explain are a user's mistake, validated here by
        # design; anything else (a process that died, a batch that failed) is worth a warning.
        logger.log(
            logging.WARNING if stats.unexpected else logging.INFO,
            "survey import: %d rows validated in the importing process (%s)",
            stats.rows_here,
            "; ".join(stats.reasons),
        )


def _pool(validator: Any, workers: int) -> ProcessPoolExecutor:
    """The validation processes, forked (on the first job) from this process with `validator`."""
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_process, initargs=(validator,)
    )


def _broke(stats: Stats, exc: BaseException) -> None:
    stats.broken = True
    if len(stats.reasons) < 5:
        stats.reasons.append(f"validation process failed: {exc!r}")


def _finish(validator: RowValidator, job: _Job, stats: Stats, submit: Any) -> Batch:
    """The batch's results: the process's, each row it could not validate validated here."""
    if not job.submitted:
        submit(job)
    stats.batches += 1
    answers: list[RowResult | str] = []
    if job.future is not None:
        try:
            answers = job.future.result()
        except BrokenProcessPool as exc:
            _broke(stats, exc)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the rows are validated here
            if len(stats.reasons) < 5:
                stats.reasons.append(f"batch failed: {exc!r}")
    if len(answers) != len(job.rows):
        answers = ["" for _ in job.rows]
    results: list[RowResult] = []
    for raw, answer in zip(job.rows, answers, strict=True):
        if isinstance(answer, RowResult):
            results.append(answer)
            continue
        if answer and len(stats.reasons) < 5:
            stats.reasons.append(answer)
        stats.rows_here += 1
        if DatabaseUnavailable.__name__ not in answer:  # a dead process's rows ("") included
            stats.unexpected += 1
        validator._known, validator._instances = job.known, job.instances  # noqa: SLF001 - this batch's children
        results.append(validator.validate(raw))
    return job.rows, results


# ----- in a validation process -------------------------------------------------------------------------------------


class DatabaseUnavailable(RuntimeError):
    """A validation process asked the database: the row is validated again by the importing process."""


_VALIDATOR: RowValidator | None = None
_SET_ASIDE: list[Any] = []  # the inherited connections: referenced, so never finalised (closed) here


def _start_process(validator: RowValidator) -> None:
    """In a new validation process: keep the validator it was forked with; take the database away;
    exit as soon as the importing process does."""
    from django.db import connections

    global _VALIDATOR
    _VALIDATOR = validator
    # A process whose importer was killed (a worker's SIGKILL) would wait for work forever, holding
    # its copy of the importer's database socket — and with it the importer's open transaction
    # and its locks, which a restarted import then waits for. It exits when its parent does.
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="importer-watch", daemon=True).start()

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise DatabaseUnavailable("no database in a validation process")

    for alias in connections:
        conn = connections[alias]
        _SET_ASIDE.append(conn.connection)
        conn.connection = None
        conn.connect = refuse  # type: ignore[method-assign]


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _validate_batch(
    language: str | None, known: dict[str, tuple[Any, bool]] | None, instances: dict[Any, Any], rows: list[RawRow]
) -> list[RowResult | str]:
    """Each row's result, or why it could not be validated here (the importing process then does)."""
    validator = _VALIDATOR
    assert validator is not None, "not a validation process"
    validator._known, validator._instances = known, instances  # noqa: SLF001
    out: list[RowResult | str] = []
    with translation.override(language), one_day():
        for raw in rows:
            try:
                result = validator.validate(raw)
                _seal(result)
                out.append(result)
            except Exception as exc:  # noqa: BLE001 - validated again by the importing process
                out.append(f"row {raw.row}: {type(exc).__name__}")
    return out


@functools.cache
def _encrypted_fields() -> dict[str, tuple[str, ...]]:
    """The personal (encrypted) columns of each record a row writes, by the record's part of a result."""
    from shouhu.lib.fields import EncryptedTextField
    from shouhu.registry.models import Child, Entrustment, FamilyMember, Household

    return {
        part: tuple(f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField))
        for part, model in (
            ("child", Child),
            ("household", Household),
            ("member", FamilyMember),
            ("entrustment", Entrustment),
        )
    }


def _seal(result: RowResult) -> None:
    """Encrypt a valid row's personal values here (`crypto.Sealed`): the importing process, whose
    time is the import's, then stores them as they are. About five values a row, 8 % of the
    importing process's CPU; this process waits for batches about a third of the time."""
    if not result.ok:
        return
    fields = _encrypted_fields()
    parts = [("child", result.child), ("household", result.household), ("entrustment", result.entrustment)]
    parts += [("member", member) for member in result.members]
    for part, data in parts:
        for name in fields[part] if data else ():
            value = data.get(name)  # type: ignore[union-attr]
            if type(value) is str and value:
                data[name] = Sealed(value)  # type: ignore[index]
