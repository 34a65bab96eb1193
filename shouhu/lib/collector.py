"""Fewer runs of Python's cyclic garbage collector during a bulk job.

The collector looks at young objects every 700 net new container objects (dicts, lists, model
instances …) and, as some of them live on into the older generations, now and then at every
object of the process: a Django process holds about 350,000 (modules, forms, the ORM's metadata).
A survey import makes millions of short-lived objects, a row's values, records and COPY rows,
which reference counting frees as soon as their batch is written; hardly any are in a cycle, so
the collections found next to nothing. Measured at 20,000 rows on PostgreSQL, they took 3.8 of
the importing process's 12 CPU seconds (2.6 in the full collections) and 0.9 of the validation
process's 9.8. A ledger export of 100,000 children spent about a tenth of its time on them.

Inside `fewer_collections()`:

* the objects that exist at entry are set aside (`gc.freeze`): a full collection, when one comes,
  walks only what the job made;
* a young collection waits for `THRESHOLD` net new container objects instead of 700. At 20,000
  rows none came at all.

The collector still runs, so the cycles a job does make (an exception's traceback, say) are still
reclaimed, only later: at most `THRESHOLD` objects later (an import's resident set stayed flat
from its first batch to its last, bench/README.md). The collector is the process's, so the
setting is too: uses that overlap (two imports in two threads) share one, made by the first to
enter and undone by the last to leave. A process forked inside the block (the import's
validation processes) inherits it.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

THRESHOLD = 100_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = (700, 10, 10)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """The block runs with the collector's young generation at `THRESHOLD` and the objects that
    existed before it set aside; both are undone when the block (the last of overlapping ones)
    ends, however it ends."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(THRESHOLD, _saved[0]), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
