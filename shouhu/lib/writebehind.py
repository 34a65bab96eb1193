"""Writing behind: a long import's COPYs sent to PostgreSQL by a thread of its own, on the import's
own connection and in its transaction, while the importing thread goes on building the next batch.

Without it the importing process and its database server take turns: for 100,000 survey rows,
about 42 s of Python building records, then about 24 s of the server storing them, one after the
other on one connection. Inside `write_behind(connection)`:

* `CopyWriter` (lib.bulkcopy) hands each COPY — the table, the columns and the rows, already
  converted — to the writer thread (`WriteBehind.copy`) instead of sending it itself.
* Every other statement the importing thread sends through Django first waits until the writes
  handed over are done (an execute wrapper on the connection). So the statements reach the server
  in the order the code issues them, and no two threads ever use the connection at once.
* A read that only needs to see the writes before it can be run by the writer thread too
  (`WriteBehind.call`, answered by a future): the survey import's look-up of a batch's ID numbers,
  asked for early and collected when the batch is validated.
* Ids of new records are reserved on a second connection of its own (`WriteBehind.reserve`): a
  sequence's `nextval` is not transactional, so the ids are the same as those the import's own
  connection would have reserved, without waiting for the writes behind. That connection has a
  thread of its own too, which takes the next ids from a sequence while the importing thread still
  gives out the ones it has (a round trip for a few thousand ids took about 30 ms: the importing
  thread spent 1.2 s of a 20,000-row import waiting for them).

A write that fails (a duplicate ID number written meanwhile by someone else) fails the
transaction as it would have without the thread, and the writer runs nothing more. The importing
thread sees the error at its next statement (once: the statements after it, a rollback to a
savepoint, go through) or its next `collect`; after it, handing over anything more raises it
again, and so does leaving the block normally: a block cannot end as if its writes had been made.
Leaving it on an exception waits for the write in progress and drops the rest.

PostgreSQL only: elsewhere the writes are sent at once, as before (`write_behind` gives None).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

_STOP = object()
RESERVE_AHEAD = 8  # ids taken from a sequence at once, as a multiple of those asked for


class WriteBehind:
    """See the module's docstring. Made by `write_behind`, one per block."""

    def __init__(self, connection: Any) -> None:
        self.connection = connections[connection.alias]
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.idle = threading.Condition()
        self.pending = 0  # jobs handed over and not yet done
        self.error: BaseException | None = None  # the first failure; nothing is sent after it
        self.raised = False  # that failure was raised in the importing thread
        self.dropping = False  # leaving on an exception: the jobs not yet started are dropped
        self.side: Any = None  # the second connection (ids), used only by the ids thread
        self.ids_thread: ThreadPoolExecutor | None = None
        self.stock: dict[tuple[str, str], deque[int]] = {}  # ids reserved and not yet given, by table and column
        self.refills: dict[tuple[str, str], Future[list[int]]] = {}  # ids being taken, by table and column
        self.thread = threading.Thread(target=self._run, name="write-behind", daemon=True)

    # ----- in the importing thread -----------------------------------------------------------------------------------

    def copy(
        self, sql: str, rows: list[Any], translate: Callable[[BaseException], BaseException | None] | None
    ) -> None:
        """Send `COPY … FROM STDIN` of these rows after the writes already handed over.
        `translate(error)`: the error the importing thread should see instead, or None."""
        self._refuse_after_failure()
        self._put(("copy", sql, rows, translate))

    def call(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run `fn(*args)` in the writer thread, after the writes already handed over, on the same
        connection (Django's queries included). It must only read. Its answer: `collect(future)`."""
        self._refuse_after_failure()
        future: Future[Any] = Future()
        self._put(("call", fn, args, future))
        return future

    def reserve(self, table: str, column: str, count: int) -> list[int]:
        """`count` new values of the sequence behind `table.column`, from the second connection.
        They are taken from the sequence `RESERVE_AHEAD` times as many at a time, and the next
        such lot is asked for (by the ids thread) as soon as less than half of one is left, so
        that this thread seldom waits for one. The values left over when the block ends are gaps
        in the sequence, as a rolled-back insert leaves."""
        key = (table, column)
        stock = self.stock.setdefault(key, deque())
        refill = self.refills.get(key)
        if refill is not None and (refill.done() or len(stock) < count):
            del self.refills[key]
            stock.extend(self._ids(refill))  # waits only when what is left is not enough
        if len(stock) < count:
            stock.extend(self._ids(self._take(table, column, count * RESERVE_AHEAD - len(stock))))
        given = [stock.popleft() for _ in range(count)]
        if len(stock) < count * RESERVE_AHEAD // 2 and key not in self.refills:
            self.refills[key] = self._take(table, column, count * RESERVE_AHEAD)
        return given

    def _take(self, table: str, column: str, count: int) -> Future[list[int]]:
        """Ask the ids thread for `count` values of the sequence behind `table.column`."""
        if self.ids_thread is None:
            self.ids_thread = ThreadPoolExecutor(1, thread_name_prefix="write-behind-ids")
        return self.ids_thread.submit(self._nextvals, table, column, count)

    def _ids(self, future: Future[list[int]]) -> list[int]:
        with self.connection.wrap_database_errors:
            return future.result()

    def _nextvals(self, table: str, column: str, count: int) -> list[int]:  # in the ids thread
        if self.side is None:
            conn = self.connection
            self.side = conn.get_new_connection(conn.get_connection_params())
            self.side.autocommit = True
        with self.side.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, column, count]
            )
            return [value for (value,) in cursor.fetchall()]

    def collect(self, future: Future[Any]) -> Any:
        """The answer of a `call` (waiting for it), or its failure raised."""
        try:
            return future.result()
        except BaseException:
            self.raised = True
            raise

    def wait(self) -> None:
        """Until every job handed over is done; then the writer's failure, if not yet raised."""
        self._idle()
        if self.error is not None and not self.raised:
            self.raised = True
            raise self.error

    def _idle(self) -> None:
        with self.idle:
            while self.pending:
                self.idle.wait()

    def _refuse_after_failure(self) -> None:
        if self.error is not None:
            self.raised = True
            raise self.error

    def _put(self, job: Any) -> None:
        with self.idle:
            self.pending += 1
        self.jobs.put(job)

    def _before_statement(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        """Django's execute wrapper: a statement of the importing thread waits for the writes."""
        if threading.current_thread() is not self.thread:
            self.wait()
        return execute(sql, params, many, context)

    # ----- in the writer thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        connections[self.connection.alias] = self.connection  # Django's queries here use the shared connection
        while True:
            job = self.jobs.get()
            if job is _STOP:
                return
            try:
                if self.error is not None or self.dropping:
                    if job[0] == "call":
                        job[3].set_exception(self.error or RuntimeError("write-behind: dropped"))
                elif job[0] == "copy":
                    self._copy(*job[1:])
                else:
                    self._call(*job[1:])
            finally:
                with self.idle:
                    self.pending -= 1
                    self.idle.notify_all()

    def _copy(self, sql: str, rows: list[Any], translate: Any) -> None:
        try:
            with self.connection.wrap_database_errors, self.connection.connection.cursor() as cursor:
                with cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
        except BaseException as exc:  # noqa: BLE001 - raised in the importing thread
            self.error = (translate(exc) if translate else None) or exc

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], future: Future[Any]) -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - raised where the answer is collected
            self.error = exc
            future.set_exception(exc)

    # ----- the block -------------------------------------------------------------------------------------------------

    def _start(self) -> None:
        self.connection.ensure_connection()
        self.connection.inc_thread_sharing()
        self.thread.start()

    def _end(self) -> None:
        self.jobs.put(_STOP)
        self.thread.join()
        self.connection.dec_thread_sharing()
        if self.ids_thread is not None:
            self.ids_thread.shutdown(wait=True, cancel_futures=True)
        if self.side is not None:
            try:
                self.side.close()
            except Exception:  # noqa: BLE001 - a connection that only reserved ids
                logger.warning("write-behind: closing the second connection failed", exc_info=True)


def current(connection: Any) -> WriteBehind | None:
    """The write-behind of this connection's block, when one is open in this thread's import."""
    return getattr(connections[connection.alias], "_shouhu_write_behind", None)


@contextlib.contextmanager
def write_behind(connection: Any) -> Iterator[WriteBehind | None]:
    """Send this block's COPYs from a writer thread (PostgreSQL); see the module's docstring."""
    conn = connections[connection.alias]
    if conn.vendor != "postgresql" or current(conn) is not None:
        yield None
        return
    behind = WriteBehind(conn)
    behind._start()
    conn._shouhu_write_behind = behind  # type: ignore[attr-defined]
    try:
        with conn.execute_wrapper(behind._before_statement):
            try:
                yield behind
            except BaseException:
                behind.dropping = True
                raise
            behind._idle()
            behind._refuse_after_failure()
    finally:
        del conn._shouhu_write_behind  # type: ignore[attr-defined]
        behind._end()
