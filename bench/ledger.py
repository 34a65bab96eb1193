#!/usr/bin/env python
"""Ledger benchmark (issue #2, part 13): seed N children, then time the ledger API in-process
next to the same queries as raw SQL, and print one JSON object.

    SHOUHU_DEMO=1 SHOUHU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shouhu_bench \
        .venv/bin/python bench/ledger.py --children 1000000 --keep

See bench/README.md. Only for a dedicated database (its name must contain "bench").
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shouhu.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from shouhu.api.auth import issue_token  # noqa: E402
from shouhu.api.models import ApiToken  # noqa: E402
from shouhu.audit.models import AuditEvent  # noqa: E402
from shouhu.audit.services import compute_hash  # noqa: E402
from shouhu.lib.crypto import blind_index, encrypt  # noqa: E402
from shouhu.lib.fields import EncryptedTextField  # noqa: E402
from shouhu.lib.text import pinyin_keys  # noqa: E402
from shouhu.org.access import scope_for  # noqa: E402
from shouhu.org.models import User  # noqa: E402
from shouhu.registry.demo import (  # noqa: E402
    build_world,
    create_demo_accounts,
    generate_children,
    insert_children,
)
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation  # noqa: E402
from shouhu.registry.selectors import AGE_BANDS, birth_range_for_age  # noqa: E402

LEDGER_TABLES = [Household, Child, FamilyMember, ParentSituation, Entrustment]
CHUNK = 10_000  # children per worker task
MEMBER_SLOTS, SITUATION_SLOTS = 4, 4  # ids reserved per child and per member


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----- seeding: rows from demo.generate_children, encrypted and indexed exactly as insert_children --------

MISSING = object()


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    kind = type(value)
    if kind is not str:
        if value is None:
            return r"\N"
        if kind is bool:
            return "t" if value else "f"
        if kind is list or kind is dict:
            value = json.dumps(value, ensure_ascii=False)
        elif kind is date or kind is datetime:
            return value.isoformat()
        else:
            return str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


@dataclass
class TablePlan:
    """Every concrete column of a model, with the value Django would write when the row omits it."""

    table: str
    columns: list[str]
    fields: list[tuple[str, Any, bool]]  # (attname, default, encrypted)

    @classmethod
    def of(cls, model: Any, now: datetime) -> TablePlan:
        fields = []
        for f in model._meta.local_concrete_fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                default: Any = now
            elif f.primary_key:
                default = MISSING  # always supplied
            else:
                default = f.get_default()
            fields.append((f.attname, default, isinstance(f, EncryptedTextField)))
        return cls(model._meta.db_table, [f.column for f in model._meta.local_concrete_fields], fields)

    def line(self, row: dict[str, Any]) -> str:
        out = []
        for attname, default, encrypted in self.fields:
            value = row.get(attname, default)
            if value is MISSING:
                raise ValueError(f"{self.table}.{attname} must be supplied")
            if encrypted and value:
                value = encrypt(value)
            out.append(_copy_text(value))
        return "\t".join(out) + "\n"


# Set in the parent before the pool forks (fork start method): workers inherit them.
_WORKER: dict[str, Any] = {}


def _chunk(task: tuple[int, int, int]) -> list[tuple[str, tuple[str, str, str, str, str]]]:
    """Generate `n` children with `seed`, global numbers from `first`; COPY lines for each."""
    first, n, seed = task
    plans: dict[str, TablePlan] = _WORKER["plans"]
    base: dict[str, int] = _WORKER["base"]
    rng = random.Random(seed)
    out = []
    for i, r in enumerate(generate_children(n=n, seed=seed, villages=_WORKER["villages"], today=_WORKER["today"])):
        g = first + i
        hh_id = base["household"] + g + 1
        hh_line = plans["household"].line({"id": hh_id, **r.household})
        data = dict(r.child)
        child_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        py, initials = pinyin_keys(data["name"])
        bi = blind_index(data["id_number"], purpose="child_id")
        child_line = plans["child"].line(
            {
                "id": child_id,
                "household_id": hh_id,
                "name_pinyin": py,
                "name_initials": initials,
                "id_number_index": bi,
                "registered_by_id": None,
                **data,
            }
        )
        member_lines, situation_lines = [], []
        if len(r.members) > MEMBER_SLOTS or any(len(m["situations"]) > SITUATION_SLOTS for m in r.members):
            raise ValueError("the generator now makes more family members or situations: raise the slots")
        for j, m in enumerate(r.members):
            member_id = base["member"] + MEMBER_SLOTS * g + j + 1
            data = {k: v for k, v in m.items() if k != "situations"}
            member_lines.append(
                plans["member"].line(
                    {
                        "id": member_id,
                        "child_id": child_id,
                        "id_number_index": blind_index(data["id_number"], purpose="person_id"),
                        **data,
                    }
                )
            )
            for k, s in enumerate(m["situations"]):
                situation_id = base["situation"] + (MEMBER_SLOTS * g + j) * SITUATION_SLOTS + k + 1
                situation_lines.append(plans["situation"].line({"id": situation_id, "member_id": member_id, **s}))
        ent_line = ""
        if r.entrustment:
            ent_line = plans["entrustment"].line(
                {"id": base["entrustment"] + g + 1, "child_id": child_id, **r.entrustment}
            )
        out.append((bi, (hh_line, child_line, "".join(member_lines), "".join(situation_lines), ent_line)))
    return out


def _villages_plain(villages: list[Any]) -> list[Any]:
    """What generate_children reads of a village, as picklable plain objects (same order)."""
    return [
        SimpleNamespace(
            code=v.code, kind=v.kind, name=v.name, parent=SimpleNamespace(name=v.parent.name) if v.parent else None
        )
        for v in villages
    ]


def pg_connect() -> Any:
    import psycopg

    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
        prepare_threshold=None,
    )


def seed_postgresql(need: int, *, seed: int, villages: list[Any], existing_bis: set[str], workers: int) -> int:
    now = timezone.now()
    plans = {
        "household": TablePlan.of(Household, now),
        "child": TablePlan.of(Child, now),
        "member": TablePlan.of(FamilyMember, now),
        "situation": TablePlan.of(ParentSituation, now),
        "entrustment": TablePlan.of(Entrustment, now),
    }
    models = {
        "household": Household,
        "child": Child,
        "member": FamilyMember,
        "situation": ParentSituation,
        "entrustment": Entrustment,
    }
    base = {}
    with connection.cursor() as cursor:
        for key in ("household", "member", "situation", "entrustment"):
            cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{models[key]._meta.db_table}"')
            base[key] = cursor.fetchone()[0]
    _WORKER.update(plans=plans, base=base, villages=_villages_plain(villages), today=timezone.localdate())
    order = ["household", "child", "member", "situation", "entrustment"]
    copy_sql = {
        k: 'COPY "{}" ({}) FROM STDIN'.format(plans[k].table, ", ".join(f'"{c}"' for c in plans[k].columns))
        for k in order
    }

    seen = set(existing_bis)
    accepted = 0
    numbered = 0  # global child numbers handed out (ids derive from them; gaps are harmless)
    copy_seconds = 0.0
    connection.close()  # no open connection across fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        conn = pg_connect()  # opened after the fork
        # One transaction: secondary indexes, unique and foreign-key constraints are dropped, the rows
        # copied, then the same definitions recreated (validated). DDL is transactional, so an
        # interrupted load leaves the schema as it was.
        with conn.transaction():
            conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            saved = _drop_secondary(conn, [m._meta.db_table for m in LEDGER_TABLES])
            while accepted < need:
                remaining = need - accepted
                planned = math.ceil(remaining * 1.1) + 100
                tasks = []
                while planned > 0:
                    n = min(CHUNK, planned)
                    tasks.append((numbered, n, hash((seed, len(existing_bis), numbered)) & 0x7FFFFFFF))
                    numbered += n
                    planned -= n
                for result in pool.imap(_chunk, tasks):
                    if accepted >= need:
                        continue
                    buffers: list[list[str]] = [[] for _ in order]
                    for bi, parts in result:
                        if bi in seen or accepted >= need:
                            continue  # demo IDs are unique only within one generator run
                        seen.add(bi)
                        accepted += 1
                        for buf, part in zip(buffers, parts, strict=True):
                            if part:
                                buf.append(part)
                    copy_started = time.monotonic()
                    for key, buf in zip(order, buffers, strict=True):
                        if buf:
                            with conn.cursor().copy(copy_sql[key]) as copy:
                                copy.write("".join(buf).encode())
                    copy_seconds += time.monotonic() - copy_started
                    if accepted % 100_000 < CHUNK:
                        log(f"seeded {accepted}/{need}")
            log(f"COPY took {copy_seconds:.1f}s in the main process; recreating {len(saved)} indexes/constraints")
            restore_started = time.monotonic()
            for statement in saved:
                conn.execute(statement)
            log(f"indexes and constraints recreated in {time.monotonic() - restore_started:.1f}s")
            for key in ("household", "member", "situation", "entrustment"):
                table = models[key]._meta.db_table
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f'(SELECT GREATEST(COALESCE(MAX(id), 1), 1) FROM "{table}"))'
                )
    log("VACUUM ANALYZE")
    for model in LEDGER_TABLES:
        conn.execute(f'VACUUM (ANALYZE) "{model._meta.db_table}"')
    conn.close()
    return accepted


def _drop_secondary(conn: Any, tables: list[str]) -> list[str]:
    """Drop the tables' secondary indexes, unique and foreign-key constraints (not primary keys
    or checks); return the statements that recreate them exactly, in a safe order."""
    rel = "ARRAY[" + ", ".join(f"'\"{t}\"'::regclass" for t in tables) + "]"
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, quote_ident(conname), contype, pg_get_constraintdef(oid) "
        f"FROM pg_constraint WHERE conrelid = ANY({rel}) AND contype IN ('u', 'f') ORDER BY contype DESC, conname"
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        f"WHERE i.indrelid = ANY({rel}) AND NOT i.indisprimary AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid"
        "  AND c.contype IN ('p', 'u', 'x')) ORDER BY 1"
    ).fetchall()
    for table, name, _, _ in constraints:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    unique = [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, kind, d in constraints if kind == "u"]
    foreign = [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, kind, d in constraints if kind == "f"]
    return unique + [d for _, d in indexes] + foreign


def seed_sqlite(need: int, *, seed: int, villages: list[Any], existing_bis: set[str], batch: int = 2000) -> int:
    seen = set(existing_bis)
    accepted, attempt = 0, 0
    while accepted < need:
        rows = []
        for r in generate_children(
            n=(need - accepted) + 100,
            seed=seed + 7919 * attempt + len(existing_bis),
            villages=villages,
            today=timezone.localdate(),
        ):
            bi = blind_index(r.child["id_number"], purpose="child_id")
            if bi in seen:
                continue
            seen.add(bi)
            rows.append(r)
            if len(rows) >= batch or accepted + len(rows) >= need:
                accepted += insert_children(rows)
                rows = []
                if accepted >= need:
                    break
        attempt += 1
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return accepted


def seed(n: int, *, seed_value: int, workers: int) -> tuple[float, int]:
    """Ensure at least n children; returns (seconds spent, children added)."""
    started = time.monotonic()
    world = build_world(seed=seed_value)
    create_demo_accounts()
    existing = Child.objects.count()
    if existing >= n:
        log(f"reusing {existing} children already in the database")
        return 0.0, 0
    log(f"{existing} children present, adding {n - existing}")
    existing_bis = set(Child.objects.values_list("id_number_index", flat=True)) if existing else set()
    if connection.vendor == "postgresql":
        added = seed_postgresql(
            n - existing, seed=seed_value, villages=world.villages, existing_bis=existing_bis, workers=workers
        )
    else:
        added = seed_sqlite(n - existing, seed=seed_value, villages=world.villages, existing_bis=existing_bis)
    return time.monotonic() - started, added


# ----- the raw floor: the same queries, written by hand ----------------------------------------------------


class Raw:
    """Hand-written SQL with the WHERE/ORDER/LIMIT the ORM sends, through a bare DB-API connection."""

    def __init__(self, prefixes: tuple[str, ...], form: str = "deferred") -> None:
        self.form = form
        self.vendor = connection.vendor
        if self.vendor == "postgresql":
            self.conn = pg_connect()
            self.ph = "%s"
            self.text = "::text"
        else:
            import sqlite3

            self.conn = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]), isolation_level=None)
            self.ph = "?"
            self.text = ""
        self.prefixes = prefixes

    def q(self, sql: str) -> str:
        return sql.replace("%s", self.ph).replace("::text", self.text)

    def _like(self, prefix: str) -> str:
        if self.vendor == "postgresql":
            return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return prefix + "%"

    def _like_sql(self, column: str) -> str:
        # Django: `col::text LIKE %s` on PostgreSQL; `col LIKE %s ESCAPE '\'` on SQLite.
        return f"{column}::text LIKE %s" if self.vendor == "postgresql" else f"{column} LIKE %s ESCAPE '\\'"

    def where(self, p: dict[str, Any], today: date) -> tuple[str, list[Any]]:
        conds, params = [], []
        scope = " OR ".join(self._like_sql("c.region_id") for _ in self.prefixes)
        conds.append(f"({scope})" if len(self.prefixes) > 1 else scope)
        params += [self._like(x) for x in self.prefixes]
        if p.get("status", "active") in {"active", "exited"}:
            conds.append("c.status = %s")
            params.append(p.get("status", "active"))
        if p.get("age_band") in AGE_BANDS:
            start, end = birth_range_for_age(*AGE_BANDS[p["age_band"]], today)
            conds.append("c.birth_date >= %s AND c.birth_date <= %s")
            params += [start, end]
        for name in ("school_stage", "health", "guardianship_type", "gender"):
            if p.get(name):
                conds.append(f"c.{name} = %s")
                params.append(p[name])
        if p.get("q"):
            letters = p["q"].replace(" ", "").lower()
            conds.append(f"({self._like_sql('c.name_initials')} OR {self._like_sql('c.name_pinyin')})")
            params += [self._like(letters), self._like(letters)]
        return " AND ".join(conds), params

    def list(self, p: dict[str, Any], today: date) -> tuple[int, list[Any]]:
        """COUNT, then the page. `form="plain"`: one query with ORDER BY/LIMIT/OFFSET over the joined
        rows (what the ORM sent before registry.selectors.page_rows). `form="deferred"`: the page's ids
        in a subquery, walked backwards past the middle, then those rows (what page_rows sends)."""
        where, params = self.where(p, today)
        size = int(p.get("page_size", 50))
        start = (int(p.get("page", 1)) - 1) * size
        cur = self.conn.cursor()
        cur.execute(self.q(f"SELECT COUNT(*) FROM registry_child c WHERE {where}"), params)
        count = cur.fetchone()[0]
        columns = (
            "SELECT c.id, c.name, c.gender, c.birth_date, c.region_id, r.name, t.name, c.school_stage, "
            "c.health, c.guardianship_type, c.status FROM registry_child c "
            "JOIN org_region r ON r.code = c.region_id LEFT JOIN org_region t ON t.code = r.parent_id "
        )
        if self.form == "plain":
            cur.execute(
                self.q(f"{columns} WHERE {where} ORDER BY c.name_pinyin ASC, c.id ASC LIMIT {size} OFFSET {start}"),
                params,
            )
            return count, cur.fetchall()
        end = min(start + size, count)
        if start >= end:
            return count, []
        if count - end < start:
            inner = f"ORDER BY c.name_pinyin DESC, c.id DESC LIMIT {end - start} OFFSET {count - end}"
        else:
            inner = f"ORDER BY c.name_pinyin ASC, c.id ASC LIMIT {end - start} OFFSET {start}"
        cur.execute(
            self.q(
                f"{columns} WHERE c.id IN (SELECT c.id FROM registry_child c WHERE {where} {inner}) "
                "ORDER BY c.name_pinyin ASC, c.id ASC"
            ),
            params,
        )
        return count, cur.fetchall()

    def detail_read(self, child_id: str) -> Any:
        where, params = self.where({"status": ""}, date.today())
        cur = self.conn.cursor()
        key = child_id if self.vendor == "postgresql" else child_id.replace("-", "")
        cur.execute(
            self.q(
                "SELECT c.*, r.*, t.*, h.* FROM registry_child c JOIN org_region r ON r.code = c.region_id "
                "LEFT JOIN org_region t ON t.code = r.parent_id LEFT JOIN registry_household h ON h.id = c.household_id "
                f"WHERE {where} AND c.id = %s"
            ),
            [*params, key],
        )
        child = cur.fetchone()
        cur.execute(
            self.q("SELECT * FROM registry_familymember WHERE child_id = %s ORDER BY child_id, relation, id"), [key]
        )
        members = cur.fetchall()
        ids = [m[0] for m in members]
        situations = []
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            cur.execute(
                self.q(
                    f"SELECT * FROM registry_parentsituation WHERE member_id IN ({marks}) ORDER BY member_id, since, id"
                ),
                ids,
            )
            situations = cur.fetchall()
        cur.execute(
            self.q("SELECT * FROM registry_entrustment WHERE child_id = %s ORDER BY child_id, since DESC, id"), [key]
        )
        return child, members, situations, cur.fetchall()

    def audit(self, user: Any, child_id: str) -> None:
        """The detail's audit write: lock the chain head, append one linked event, move the head."""
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        cur.execute(
            self.q(
                "SELECT last_seq, last_hash, count FROM audit_chainhead WHERE id = 1"
                + (" FOR UPDATE" if self.vendor == "postgresql" else "")
            )
        )
        last_seq, last_hash, count = cur.fetchone()
        org = user.organization
        event = AuditEvent(
            seq=last_seq + 1,
            at=timezone.now(),
            actor_id=user.pk,
            actor_name=user.username,
            organization_id=org.pk,
            organization_name=org.name,
            action="view",
            object_type="child",
            object_id=child_id,
            object_label="",
            detail={"via": "api"},
            ip="127.0.0.1",
            prev_hash=last_hash,
        )
        event.hash = compute_hash(last_hash, event)
        cur.execute(
            self.q(
                "INSERT INTO audit_auditevent (seq, at, actor_id, actor_name, organization_id, organization_name, action, "
                "object_type, object_id, object_label, detail, ip, prev_hash, hash) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ),
            [
                event.seq,
                event.at if self.vendor == "postgresql" else event.at.isoformat(),
                event.actor_id,
                event.actor_name,
                event.organization_id,
                event.organization_name,
                event.action,
                event.object_type,
                event.object_id,
                event.object_label,
                json.dumps(event.detail),
                event.ip,
                event.prev_hash,
                event.hash,
            ],
        )
        cur.execute(
            self.q("UPDATE audit_chainhead SET last_seq = %s, last_hash = %s, count = %s WHERE id = 1"),
            [event.seq, event.hash, count + 1],
        )
        cur.execute("COMMIT")


# ----- measurement ----------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return round(ordered[k] * 1000, 2)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(values, 0.5), "p95_ms": pct(values, 0.95), "n": len(values)}


def scenarios(raw: Raw, today: date, page_size: int) -> list[tuple[str, dict[str, Any]]]:
    """The town's ledger, four kinds of request taken in turn:
    the default view (active, page 1); filtered (status + school stage + age band) page 1; the same
    filter on a deep page (90% through); filtered and searched by 2 pinyin initials (the town's
    common pairs, in rotation)."""
    base = {"status": "active", "school_stage": "primary", "age_band": "6-11", "page_size": page_size}
    count, _ = raw.list({**base, "page": 1}, today)
    deep = max(1, int(count / page_size * 0.9))
    where, params = raw.where({"status": "active"}, today)
    cur = raw.conn.cursor()
    cur.execute(
        raw.q(
            f"SELECT substr(c.name_initials, 1, 2) AS k, COUNT(*) FROM registry_child c WHERE {where} "
            "GROUP BY k ORDER BY COUNT(*) DESC, k LIMIT 24"
        ),
        params,
    )
    pairs = [row[0] for row in cur.fetchall() if len(row[0]) == 2][:8]
    fixed = [
        ("town_default", {"status": "active", "page": 1, "page_size": page_size}),
        ("filtered_p1", {**base, "page": 1}),
        ("filtered_deep", {**base, "page": deep}),
    ]
    out = []
    for letters in pairs:  # 4 kinds in turn; the search rotates over the pairs
        out += fixed + [("search", {**base, "q": letters, "page": 1})]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--children", type=int, required=True)
    ap.add_argument("--requests", type=int, default=300, help="timed requests per endpoint (list, detail)")
    ap.add_argument(
        "--keep", action="store_true", help="keep the children this run seeded (otherwise they are removed at the end)"
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workers", type=int, default=2, help="processes generating and encrypting rows (PostgreSQL)")
    ap.add_argument("--user", default="town_hutang")
    ap.add_argument("--page-size", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the ORM's list queries")
    ap.add_argument("--no-migrate", action="store_true")
    ap.add_argument(
        "--raw-form",
        choices=["deferred", "plain"],
        default="deferred",
        help="shape of the raw page query: deferred = the ids subquery the API sends (default); "
        "plain = one ORDER BY/LIMIT/OFFSET query (what the API sent before page_rows)",
    )
    args = ap.parse_args()

    db = settings.DATABASES["default"]
    if not settings.DEMO_MODE:
        sys.exit("bench: set SHOUHU_DEMO=1 (it creates the demo accounts and uses the demo data key)")
    if "bench" not in str(db["NAME"]).lower():
        sys.exit(f"bench: refusing database {db['NAME']!r}: use a dedicated one whose name contains 'bench'")

    if not args.no_migrate:
        call_command("migrate", verbosity=0, interactive=False)
    seed_seconds, added = seed(args.children, seed_value=args.seed, workers=args.workers)
    total = Child.objects.count()
    log(f"{total} children ({added} added in {seed_seconds:.1f}s)")

    user = User.objects.get(username=args.user)
    token = issue_token(user)
    scope = scope_for(user)
    raw = Raw(scope.prefixes, args.raw_form)
    today = timezone.localdate()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="127.0.0.1")
    cases = scenarios(raw, today, args.page_size)

    def api_list(p: dict[str, Any]) -> Any:
        response = client.get("/api/v1/children", {k: v for k, v in p.items()})
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return response

    # Same answers: the API and the raw SQL return the same count and the same ids in the same order.
    for name, p in cases:
        body = api_list(p).json()
        count, rows = raw.list(p, today)
        assert body["count"] == count, (name, body["count"], count)
        assert [str(i["id"]) for i in body["items"]] == [str(uuid.UUID(str(r[0]))) for r in rows], name
    if args.explain:
        explain(cases, user, today)

    for i in range(args.warmup):
        name, p = cases[i % len(cases)]
        api_list(p)
        raw.list(p, today)

    per_case: dict[str, dict[str, list[float]]] = {name: {"orm": [], "raw": []} for name, _ in cases}
    examples: dict[str, dict[str, Any]] = {}
    for name, p in cases:
        if name in examples and "q" in p and p["q"] not in examples[name]["q"]:
            examples[name]["q"] += "," + p["q"]
        examples.setdefault(name, dict(p))
    orm_all, raw_all = [], []
    for i in range(args.requests):
        name, p = cases[i % len(cases)]
        for which in ("orm", "raw") if i % 2 == 0 else ("raw", "orm"):
            started = time.perf_counter()
            if which == "orm":
                api_list(p)
            else:
                raw.list(p, today)
            elapsed = time.perf_counter() - started
            per_case[name][which].append(elapsed)
            (orm_all if which == "orm" else raw_all).append(elapsed)

    # Detail: random children of the town.
    where, params = raw.where({"status": ""}, today)
    cur = raw.conn.cursor()
    cur.execute(
        raw.q(f"SELECT c.id FROM registry_child c WHERE {where} ORDER BY random() LIMIT %s"),
        [*params, args.requests + args.warmup],
    )
    ids = [str(uuid.UUID(str(r[0]))) for r in cur.fetchall()]
    random.Random(args.seed).shuffle(ids)
    detail_orm, detail_raw, detail_raw_read = [], [], []
    for i, child_id in enumerate(ids):
        measured = i >= args.warmup
        for which in ("orm", "raw") if i % 2 == 0 else ("raw", "orm"):
            started = time.perf_counter()
            if which == "orm":
                response = client.get(f"/api/v1/children/{child_id}")
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (response.status_code, response.content[:300])
                if measured:
                    detail_orm.append(elapsed)
            else:
                found = raw.detail_read(child_id)
                read = time.perf_counter() - started
                assert found[0] is not None
                raw.audit(user, child_id)
                if measured:
                    detail_raw.append(time.perf_counter() - started)
                    detail_raw_read.append(read)

    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        api_list(cases[-1][1])
    list_queries = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/api/v1/children/{ids[0]}")
    detail_queries = len(ctx.captured_queries)

    ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if added and not args.keep:
        cleanup()

    list_p95, raw_p95 = pct(orm_all, 0.95), pct(raw_all, 0.95)
    detail_p95, raw_detail_p95 = pct(detail_orm, 0.95), pct(detail_raw, 0.95)
    result = {
        "children": total,
        "database": connection.vendor,
        "user": args.user,
        "list_p50_ms": pct(orm_all, 0.5),
        "list_p95_ms": list_p95,
        "raw_list_p50_ms": pct(raw_all, 0.5),
        "raw_list_p95_ms": raw_p95,
        "ratio": round(list_p95 / raw_p95, 2) if raw_p95 else None,
        "detail_p50_ms": pct(detail_orm, 0.5),
        "detail_p95_ms": detail_p95,
        "raw_detail_p50_ms": pct(detail_raw, 0.5),
        "raw_detail_p95_ms": raw_detail_p95,
        "raw_detail_read_p95_ms": pct(detail_raw_read, 0.95),
        "detail_ratio": round(detail_p95 / raw_detail_p95, 2) if raw_detail_p95 else None,
        "seed_seconds": round(seed_seconds, 1),
        "raw_form": args.raw_form,
        "requests": args.requests,
        "queries": {"list": list_queries, "detail": detail_queries},
        "scenarios": {
            name: {
                "orm_p50_ms": pct(v["orm"], 0.5),
                "orm_p95_ms": pct(v["orm"], 0.95),
                "raw_p50_ms": pct(v["raw"], 0.5),
                "raw_p95_ms": pct(v["raw"], 0.95),
                "n": len(v["orm"]),
                "params": {k: val for k, val in examples[name].items() if k != "page_size"},
            }
            for name, v in per_case.items()
            if v["orm"]
        },
    }
    print(json.dumps(result, ensure_ascii=False))


def explain(cases: list[tuple[str, dict[str, Any]]], user: Any, today: date) -> None:
    """EXPLAIN ANALYZE of exactly the SQL the API sends (captured), to stderr."""
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user)}")
    for name, p in cases[:4]:
        with CaptureQueriesContext(connection) as ctx:
            client.get("/api/v1/children", p)
        for q in ctx.captured_queries:
            sql = q["sql"]
            if "registry_child" not in sql:
                continue
            with connection.cursor() as cursor:
                prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
                cursor.execute(prefix + sql)
                plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
            print(f"--- {name}\n{sql}\n{plan}\n", file=sys.stderr)


def cleanup() -> None:
    """Remove the ledger rows (a dedicated bench database: everything in the ledger tables)."""
    log("removing the seeded children (use --keep to keep them)")
    if connection.vendor == "postgresql":
        tables = ", ".join(f'"{m._meta.db_table}"' for m in LEDGER_TABLES)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables} CASCADE")
    else:
        for model in reversed(LEDGER_TABLES):
            model.objects.all().delete()


if __name__ == "__main__":
    main()
