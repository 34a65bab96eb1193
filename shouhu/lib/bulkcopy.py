"""Writing many records at once on PostgreSQL, as Django's bulk methods would write them but in
fewer, simpler statements.

* `CopyWriter`: new records (and their history rows) with COPY, as `bulk_create` (and
  simple-history's `bulk_history_create`) write them: a survey import's children and their
  records, their visit plans, the import's items. COPY takes rows without an INSERT statement to
  build and parse for each; `insert_in_bulk` uses it on PostgreSQL and `bulk_create` elsewhere.
* `Builder`: the new records' instances, built from their values in order rather than by keywords.
* `update_in_bulk`: edited records, as `bulk_update` writes them, with one `UPDATE … FROM (VALUES
  …)` per batch instead of a `CASE` per record and column (a re-survey's changed rows).
* `checked_as_written`: a block whose foreign keys are checked by each statement, not at commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from operator import attrgetter, itemgetter
from typing import Any

from django.db import connections, models
from django.db.models import signals
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute

from shouhu.lib import writebehind


def insert_in_bulk(model: type[models.Model], objs: list[Any]) -> None:
    """New records of a model without history, as `bulk_create` writes them: with COPY on
    PostgreSQL (`CopyWriter`), `bulk_create` itself elsewhere."""
    if not objs:
        return
    manager = model._default_manager
    connection = connections[manager.db]
    if connection.vendor == "postgresql":
        CopyWriter(connection).insert(model, objs)
    else:
        manager.bulk_create(objs)


@contextlib.contextmanager
def checked_as_written(connection: Any) -> Iterator[None]:
    """Inside the block, on PostgreSQL, the foreign keys (Django makes them `DEFERRABLE INITIALLY
    DEFERRED`) are checked at the end of each statement rather than at commit; the transaction's
    checks go back to deferred when the block ends normally. The same checks, done earlier: the
    rows written inside must come after the rows they point at (as `CopyWriter`'s tables do).

    Why: a survey import writes about thirteen checked keys a row, and deferred they were all
    checked by the commit — 9.5 s for 100,000 rows, with the importing process idle and the other
    core too. Checked per COPY, they run while the writer thread (lib.writebehind) is writing
    behind and the importing thread is building the next batch. Must run inside a transaction
    (`SET CONSTRAINTS` lasts until its end); a no-op elsewhere than PostgreSQL."""
    connection = connections[connection.alias]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    with connection.cursor() as cursor:  # not after an exception: the transaction is rolled back
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def update_in_bulk(model: type[models.Model], objs: list[Any], names: list[str], *, batch_size: int = 500) -> None:
    """Write the columns `names` of these records, as `model._default_manager.bulk_update(objs,
    names)` does: each field's database value of the instance's attribute (no `pre_save`, as
    `bulk_update` does not call it), matched by primary key. On PostgreSQL one statement per batch
    joins the table to the batch's rows; elsewhere `bulk_update` itself. The records are those of
    the default database."""
    if not objs:
        return
    manager = model._default_manager
    connection = connections[manager.db]
    if connection.vendor != "postgresql":
        manager.bulk_update(objs, names, batch_size=batch_size)
        return
    meta = model._meta
    fields: list[models.Field[Any, Any]] = []
    for name in names:
        field = meta.get_field(name)
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many or field.primary_key:
            raise ValueError(f"update_in_bulk: {model.__name__}.{name} is not a column it can update")
        fields.append(field)
    assert meta.pk is not None
    columns = [meta.pk, *fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    casts = [f"%s::{field.db_type(connection)}" for field in columns]
    row_sql = f"({', '.join(casts)})"
    assign = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
    alias = ", ".join(quote(f.column) for f in columns)
    pk_column = quote(meta.pk.column)
    for start in range(0, len(objs), batch_size):
        batch = objs[start : start + batch_size]
        params: list[Any] = []
        for obj in batch:
            obj._prepare_related_fields_for_save(operation_name="bulk_update", fields=fields)
            params.extend(
                field.get_db_prep_save(getattr(obj, field.attname), connection=connection) for field in columns
            )
        sql = (
            f"UPDATE {table} SET {assign} FROM (VALUES {', '.join([row_sql] * len(batch))}) AS v ({alias}) "
            f"WHERE {table}.{pk_column} = v.{pk_column}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


class Builder:
    """New records of one model, for thousands of rows, as `Model(**links, **data)` builds them
    (the fields `names` taken from `data` when there, a related object's key for a relation): the
    instance made from its column values in order (the path Django takes for a row read from the
    database), each field's default worked out once unless it is a callable. Building a child by
    keywords took about three times as long as this, and a survey import builds about ten records
    a row. Held equal to `child_create`'s records by intake/tests/test_streaming.py.

    When every column's attribute is Django's own (`DeferredAttribute`, or a foreign key's
    `ForeignKeyDeferredAttribute`, whose setter only drops a cached related object a new instance
    cannot have) and nothing listens for the model's `pre_init`/`post_init`, the values go into
    the instance's `__dict__` at once, as `Model.__init__` would leave them, without its loop of
    descriptor `setattr`s (the largest single item of an import's profile); otherwise through
    `Model.__init__`."""

    def __init__(self, model: type[models.Model], names: list[str]) -> None:
        self.model = model
        fields = model._meta.concrete_fields
        self.attnames = [field.attname for field in fields]
        own = (DeferredAttribute, ForeignKeyDeferredAttribute)
        self.direct = not (signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model)) and all(
            type(getattr(model, name, None)) in own for name in self.attnames
        )
        self.defaults: list[Any] = []
        self.callables: list[tuple[int, Any]] = []
        for i, field in enumerate(fields):
            if field.has_default() and callable(field.default):
                self.callables.append((i, field.default))
                self.defaults.append(None)
            else:
                self.defaults.append(field.get_default())
        position = {field.attname: i for i, field in enumerate(fields)}
        self.sets = []
        for name in names:
            named = model._meta.get_field(name)
            assert isinstance(named, models.Field), name
            self.sets.append((name, position[named.attname], named.is_relation))
        # The direct path: the instance's attributes as one dict, the defaults' copied and the
        # values `data` gives put over them in one step (`_Plan`, per set of keys a `data` has).
        self.base = dict(zip(self.attnames, self.defaults, strict=True))
        self.made = [(self.attnames[i], make) for i, make in self.callables]
        self.plans: dict[frozenset[str], _Plan] = {}

    def __call__(self, data: dict[str, Any], **links: Any) -> Any:
        if self.direct:
            keys = frozenset(data)
            plan = self.plans.get(keys)
            if plan is None:
                plan = _Plan(self, keys)
                if len(self.plans) < _PLANS:
                    self.plans[keys] = plan
            values = self.base.copy()
            for attname, make in self.made:
                values[attname] = make()
            if plan.pick is not None:
                picked = plan.pick(data)
                values.update(zip(plan.attnames, (picked,) if plan.single else picked, strict=True))
            for name, attname in plan.related:
                value = data[name]
                values[attname] = getattr(value, "pk", value)
            record = object.__new__(self.model)
            record.__dict__ = values
            record._state = ModelState()
        else:
            row = self.defaults.copy()
            for i, make in self.callables:
                row[i] = make()
            for name, i, relation in self.sets:
                if name in data:
                    value = data[name]
                    row[i] = getattr(value, "pk", value) if relation else value
            record = self.model(*row)
        for name, value in links.items():  # through the descriptor: the object kept, as the keywords do
            setattr(record, name, value)
        return record


_PLANS = 64  # sets of keys a Builder keeps its plan for (a form's cleaned data has one)


class _Plan:
    """Which of a Builder's `names` a `data` with these keys gives: the plain ones picked in one
    call (`itemgetter`), each into its attribute; a relation's object made its key."""

    __slots__ = ("attnames", "pick", "related", "single")

    def __init__(self, builder: Builder, keys: frozenset[str]) -> None:
        given = [(name, builder.attnames[i], relation) for name, i, relation in builder.sets if name in keys]
        plain = [(name, attname) for name, attname, relation in given if not relation]
        self.pick = itemgetter(*(name for name, _ in plain)) if plain else None
        self.single = len(plain) == 1  # itemgetter of one name gives the value, not a tuple
        self.attnames = tuple(attname for _, attname in plain)
        self.related = tuple((name, attname) for name, attname, relation in given if relation)


class CopyWriter:
    """New records and their history rows written with PostgreSQL's COPY.

    The values are those `bulk_create` would send: each field's `pre_save` (auto_now stamps) and
    database preparation — done here directly for the plain types (text, numbers, booleans,
    dates, UUIDs, foreign keys), by the field itself for the rest (JSON …), and by
    `crypto.encrypt` for an encrypted field, once: the history row stores the same ciphertext as
    its record. Ids of auto-increment tables are reserved from their sequences first, so that the
    rows that point at them (a child at its household, a situation at its member) are known
    before they are written. A model without history gets none. A test holds the rows against
    those `bulk_create` and simple-history write (intake/tests/test_streaming.py).
    """

    def __init__(
        self, connection: Any, *, translate: Callable[[BaseException], BaseException | None] | None = None
    ) -> None:
        # The connection itself, not `django.db.connection` (a proxy that looks the connection up
        # per attribute: each field's preparation asks for it, a twentieth of an import's writing).
        self.connection = connections[connection.alias]
        # Inside `lib.writebehind.write_behind` the COPYs are sent by its writer thread, and a
        # failure reaches the caller later: `translate(error)` gives the error it should see then
        # (or None: the error itself).
        self.behind = writebehind.current(self.connection)
        self.translate = translate

    def insert(
        self,
        model: type[models.Model],
        objs: list[Any],
        *,
        history_user: Any = None,
        history_date: Any = None,
        ids_given: bool = False,
    ) -> None:
        """Write the records (and their history rows, when the model keeps history). An
        auto-increment id is reserved from the table's sequence unless `ids_given` (the audit
        chain numbers its events itself)."""
        if not objs:
            return
        from shouhu.lib import crypto
        from shouhu.lib.fields import EncryptedTextField

        meta = model._meta
        pk = meta.pk
        if not ids_given and pk.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField"):
            if self.behind is not None:  # not waiting for the writes behind
                ids = self.behind.reserve(meta.db_table, pk.column, len(objs))
            else:
                with self.connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                        [meta.db_table, pk.column, len(objs)],
                    )
                    ids = [value for (value,) in cursor.fetchall()]
            for obj, reserved in zip(objs, ids, strict=True):
                setattr(obj, pk.attname, reserved)
        fields = list(meta.concrete_fields)
        for field in fields:  # a foreign key set as an object before that object had its id
            if isinstance(field, models.ForeignObject) and field.attname != field.name:
                cache = field.get_cached_value
                for obj in objs:
                    try:
                        related = cache(obj)
                    except KeyError:
                        continue
                    if related is not None and getattr(obj, field.attname) is None:
                        setattr(obj, field.name, related)  # the id, keeping the object cached
        plain = (
            models.CharField,
            models.TextField,
            models.IntegerField,
            models.BooleanField,
            models.DateField,
            models.UUIDField,
            models.ForeignKey,
        )
        convert: list[tuple[str, models.Field[Any, Any]]] = []
        for field in fields:
            stamped = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            if isinstance(field, EncryptedTextField):
                convert.append(("encrypt", field))
            elif stamped:
                convert.append(("stamp", field))
            elif isinstance(field, plain) and not isinstance(field, models.DateTimeField):
                convert.append(("plain", field))
            else:
                convert.append(("field", field))
        # Every column's attribute read in one call; then the columns that are not plain values
        # (`special`) replaced by what they store.
        read = attrgetter(*(field.attname for field in fields))
        single = len(fields) == 1
        special = [(i, how, field) for i, (how, field) in enumerate(convert) if how != "plain"]
        rows = []
        encrypt, Sealed = crypto.encrypt, crypto.Sealed  # noqa: N806 - a class, bound locally
        connection, alias = self.connection, self.connection.alias
        for obj in objs:
            row: list[Any] = [read(obj)] if single else list(read(obj))
            for i, how, field in special:
                if how == "encrypt":
                    value = row[i]
                    if value not in (None, ""):  # empty stays empty
                        row[i] = value.ciphertext if isinstance(value, Sealed) else encrypt(str(value))
                elif how == "stamp":
                    row[i] = field.pre_save(obj, True)
                else:
                    row[i] = field.get_db_prep_save(field.pre_save(obj, True), connection=connection)
            rows.append(row)
            state = obj._state
            state.adding, state.db = False, alias
        self._copy(meta.db_table, [f.column for f in fields], rows)
        self._history(model, fields, rows, history_user=history_user, history_date=history_date)

    def _history(
        self,
        model: type[models.Model],
        fields: list[Any],
        rows: list[list[Any]],
        *,
        history_user: Any,
        history_date: Any,
    ) -> None:
        """One "+" row per record, as simple-history's `bulk_history_create` writes it: the
        record's values as just COPYed (the same ciphertexts), with the history's own columns, in
        a COPY of their own. (An `INSERT … SELECT` from the rows just written sends nothing twice,
        but the server inserted its rows one by one at three to four times COPY's cost a row: a
        fifth of the database's work in an import.)"""
        history = getattr(model, "history", None)
        if history is None:
            return
        position = {field.attname: i for i, field in enumerate(fields)}
        extra = {
            "history_date": history_date,
            "history_change_reason": "",
            "history_type": "+",
            "history_user_id": history_user.pk if history_user is not None else None,
        }
        columns: list[str] = []
        picks: list[int] = []  # for each history column, its value's index in the record's row + tail
        tail: list[Any] = []  # the history's own values
        for field in history.model._meta.concrete_fields:
            if field.attname == "history_id":
                continue  # the table's own sequence
            columns.append(field.column)
            if field.attname in position:
                picks.append(position[field.attname])
            else:
                picks.append(len(fields) + len(tail))
                tail.append(extra[field.attname])
        pick = itemgetter(*picks)  # a tuple: the history has several columns of its own
        self._copy(history.model._meta.db_table, columns, [pick(row + tail) for row in rows])

    def _copy(self, table: str, columns: list[str], rows: list[Any]) -> None:
        quote = self.connection.ops.quote_name
        sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        if self.behind is not None:
            self.behind.copy(sql, rows, self.translate)
            return
        with self.connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
