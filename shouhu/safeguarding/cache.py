"""The database cache with an atomic `incr`, for counters every server process shares.

Django's `DatabaseCache.incr` is `get` then `set`: two processes counting the same key at once
both read 4 and both write 5, and a hit is lost. The public entrance's rate limits
(shouhu.safeguarding.public) count with `add` + `incr`; here `incr` reads the row under a lock
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite's write transactions are exclusive, settings use
`BEGIN IMMEDIATE`) and writes it back in the same transaction. With Redis (`SHOUHU_REDIS_URL`)
settings use Django's RedisCache instead, whose `incr` is Redis's own atomic INCR.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils.timezone import now as tz_now


class AtomicDatabaseCache(DatabaseCache):
    _table: str  # the table's name, set by BaseDatabaseCache.__init__ (django-stubs leaves it out)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote_name = connection.ops.quote_name
        table, cache_key, value, expires = (quote_name(n) for n in (self._table, "cache_key", "value", "expires"))
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        now = connection.ops.adapt_datetimefield_value(tz_now().replace(microsecond=0))
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(f"SELECT {value} FROM {table} WHERE {cache_key} = %s AND {expires} >= %s{lock}", [key, now])
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            current = pickle.loads(base64.b64decode(connection.ops.process_clob(row[0]).encode()))
            new_value = current + delta
            encoded = base64.b64encode(pickle.dumps(new_value, self.pickle_protocol)).decode("latin1")
            cursor.execute(f"UPDATE {table} SET {value} = %s WHERE {cache_key} = %s", [encoded, key])
        return new_value
