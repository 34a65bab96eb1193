#!/usr/bin/env python
"""Survey import benchmark (issue #4): generate an N-row valid survey workbook, time the whole
import (`import_commit`: read, validate, diff, commit) next to the floor (python-calamine reads the
same file, the rows are COPYed into a staging table with psycopg; on SQLite executemany into a
temp table), and print one JSON object.

    SHOUHU_DEMO=1 SHOUHU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shouhu_bench_import \\
        .venv/bin/python bench/import.py --rows 2000

See bench/README.md. Only for a dedicated database (its name must contain "bench"). Without
--keep the imported children are removed afterwards (import_undo); audit rows stay (append-only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shouhu.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from shouhu.intake import pipeline  # noqa: E402
from shouhu.intake.services import import_commit, import_undo  # noqa: E402
from shouhu.lib.idnumber import make_id_number  # noqa: E402
from shouhu.org.access import scope_for  # noqa: E402
from shouhu.org.models import User  # noqa: E402
from shouhu.registry.demo import build_world, create_demo_accounts  # noqa: E402

HEADERS = [
    "所在村（社区）",
    "村（社区）代码",
    "姓名",
    "身份证号",
    "民族",
    "户口性质",
    "现住址",
    "健康状况",
    "所患疾病",
    "就学阶段",
    "学校",
    "是否寄宿",
    "是否与父母共同生活",
    "监护类型",
    "父亲姓名",
    "父亲联系电话",
    "父亲务工地",
    "父亲情况",
    "父亲情况起始日期",
    "母亲姓名",
    "母亲联系电话",
    "母亲务工地",
    "母亲情况",
    "母亲情况起始日期",
    "祖父姓名",
    "祖母姓名",
    "受委托人姓名",
    "受委托人与儿童关系",
    "受委托人联系电话",
    "委托起始日期",
    "家庭经济状况",
    "收入来源",
    "备注",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "子浩宇轩欣怡梓涵雨萱一诺俊杰思远佳琪晨曦嘉豪若汐明辉建国秀英海涛丽华志强桂兰永红文博语嫣天佑"
PLACES = ["苏州", "上海", "南京", "无锡", "杭州", "深圳", "广州", "宁波", "北京", "常州市区"]


@contextlib.contextmanager
def profiled(top: int, sort: str = "cumulative") -> Iterator[None]:
    """cProfile the block and print its top `top` entries to stderr when it ends (0: no profile);
    BENCH_PROFILE_OUT=FILE also dumps the whole profile there."""
    if not top:
        yield
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        if out := os.environ.get("BENCH_PROFILE_OUT"):  # the whole profile, for pstats or snakeviz
            profiler.dump_stats(out)
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats(sort).print_stats(top)
        print(stream.getvalue(), file=sys.stderr)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def database_cpu() -> float | None:
    """CPU seconds (user + system) the PostgreSQL backend serving this connection has used so far,
    when the server runs on this machine (its /proc entry readable); None otherwise."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return backend_cpu(pid)


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of the PostgreSQL backend process `pid`, or None when it is not
    on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def current_rss_mb() -> float:
    """The resident set now (not the peak): /proc/self/statm's second field, in pages."""
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _name(rng: random.Random, surname: str | None = None) -> str:
    return (surname or rng.choice(SURNAMES)) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return rng.choice(("138", "139", "137", "151", "158", "187", "182")) + f"{rng.randrange(10**8):08d}"


def _date_text(rng: random.Random, d: date) -> Any:
    """Dates as village directors type them."""
    form = rng.randrange(5)
    if form == 0:
        return d  # a real date cell
    if form == 1:
        return f"{d.year}.{d.month}.{d.day}"
    if form == 2:
        return f"{d.year}年{d.month}月{d.day}日"
    if form == 3:
        return f"{d:%Y%m%d}"
    return d.isoformat()


def _stage(age: int) -> str:
    if age < 3:
        return "学前未入园"
    if age < 6:
        return "幼儿园"
    if age < 12:
        return "小学"
    if age < 15:
        return "初中"
    return "普通高中"


def generate(path: Path, n: int, villages: list[Any], *, seed: int, today: date, resurvey: bool = False) -> None:
    """An N-row survey workbook (openpyxl write-only): a title row, the header, N valid rows.
    `resurvey`: the same rows (same seed) a year on, every father and every carer with a new phone
    number."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("摸底排查表")
    ws.append(["困境儿童和留守儿童摸底排查表（基准测试）"])
    ws.append(HEADERS)
    used: set[tuple[date, int]] = set()
    for number in range(n):
        village = rng.choice(villages)
        while True:
            birth = today - timedelta(days=rng.randrange(365 * 1 + 30, 365 * 17))
            seq = rng.randrange(1000)
            if (birth, seq) not in used:
                used.add((birth, seq))
                break
        age = (today - birth).days // 365
        surname = rng.choice(SURNAMES)
        stage = _stage(age)
        father_away = rng.random() < 0.45
        mother_away = rng.random() < (0.6 if father_away else 0.15)
        father_dead = not father_away and rng.random() < 0.03
        both_away = (father_away or father_dead) and mother_away
        town = village.parent.name if village.parent else ""
        row: dict[str, Any] = {
            "所在村（社区）": village.name,
            "村（社区）代码": village.code,
            "姓名": _name(rng, surname),
            "身份证号": make_id_number("320412", birth, seq),
            "民族": "汉" if rng.random() < 0.97 else "回",
            "户口性质": rng.choice(("农业户口", "农业户口", "非农业户口")),
            "现住址": f"{town}{village.name}{rng.randrange(1, 300)}号",
            "健康状况": "健康",
            "所患疾病": "",
            "就学阶段": stage,
            "学校": f"{town.removesuffix('镇').removesuffix('街道')}中心小学" if stage == "小学" else "",
            "是否寄宿": "是" if stage in ("初中", "普通高中") and rng.random() < 0.3 else "否",
            "是否与父母共同生活": "否" if both_away else "是",
            "监护类型": rng.choice(("一般", "较好")),
            "父亲姓名": _name(rng, surname),
            "父亲联系电话": _phone(rng),
            "父亲务工地": rng.choice(PLACES) if father_away else "",
            "父亲情况": "外出务工" if father_away else ("死亡" if father_dead else ""),
            "父亲情况起始日期": _date_text(rng, today - timedelta(days=rng.randrange(60, 3000)))
            if (father_away or father_dead)
            else "",
            "母亲姓名": _name(rng),
            "母亲联系电话": _phone(rng),
            "母亲务工地": rng.choice(PLACES) if mother_away else "",
            "母亲情况": "外出务工" if mother_away else "",
            "母亲情况起始日期": _date_text(rng, today - timedelta(days=rng.randrange(60, 3000))) if mother_away else "",
            "祖父姓名": _name(rng, surname) if rng.random() < 0.6 else "",
            "祖母姓名": _name(rng) if rng.random() < 0.6 else "",
            "受委托人姓名": "",
            "受委托人与儿童关系": "",
            "受委托人联系电话": "",
            "委托起始日期": "",
            "家庭经济状况": rng.choice(("一般",) * 8 + ("低保", "低保边缘")),
            "收入来源": "、".join(rng.sample(["外出务工", "务农", "政府救助"], rng.choice((1, 1, 2)))),
            "备注": "" if rng.random() < 0.9 else "已入户走访",
        }
        if rng.random() < 0.05:
            row.update({"健康状况": "患病", "所患疾病": rng.choice(("哮喘", "先天性心脏病", "癫痫", "白血病"))})
        if both_away:
            relation = rng.choice(("祖父", "祖母", "外祖母"))
            row.update(
                {
                    "受委托人姓名": _name(rng, surname if relation != "外祖母" else None),
                    "受委托人与儿童关系": relation,
                    "受委托人联系电话": _phone(rng),
                    "委托起始日期": _date_text(rng, today - timedelta(days=rng.randrange(30, 2000))),
                }
            )
        if resurvey:  # after every random draw: the rows stay those of the first survey
            row["父亲联系电话"] = f"139{number:08d}"
            if row["受委托人姓名"]:  # and every carer's (about a quarter of the children have one)
                row["受委托人联系电话"] = f"137{number:08d}"
        ws.append([row[h] for h in HEADERS])
    wb.save(path)


# ----- the floor: calamine read + COPY (PostgreSQL) / executemany (SQLite) into a staging table ----------


def _cell(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def floor(path: Path) -> tuple[float, int]:
    import python_calamine as pc

    started = time.perf_counter()
    workbook = pc.CalamineWorkbook.from_path(str(path))
    sheet = workbook.get_sheet_by_index(0)
    rows = iter(sheet.iter_rows())
    next(rows)  # title
    header = list(next(rows))
    width = len(header)
    columns = ", ".join(f"c{i} text" for i in range(width))
    count = 0
    if connection.vendor == "postgresql":
        conn = pg_connect()
        try:
            with conn.transaction():
                conn.execute(f"CREATE TEMP TABLE bench_import_staging ({columns}) ON COMMIT DROP")
                with conn.cursor().copy("COPY bench_import_staging FROM STDIN") as copy:
                    for cells in rows:
                        copy.write_row([_cell(v) for v in cells])
                        count += 1
        finally:
            conn.close()
    else:
        import sqlite3

        conn = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]))
        try:
            conn.execute(f"CREATE TEMP TABLE bench_import_staging ({columns})")
            marks = ", ".join("?" * width)
            batch: list[list[str | None]] = []
            for cells in rows:
                batch.append([_cell(v) for v in cells])
                if len(batch) >= 5000:
                    conn.executemany(f"INSERT INTO bench_import_staging VALUES ({marks})", batch)
                    count += len(batch)
                    batch = []
            conn.executemany(f"INSERT INTO bench_import_staging VALUES ({marks})", batch)
            count += len(batch)
            conn.commit()
        finally:
            conn.close()
    return time.perf_counter() - started, count


def read_only(path: Path) -> float:
    """The floor's reading alone: python-calamine reads the file, every cell made the text the
    staging table takes."""
    import python_calamine as pc

    started = time.perf_counter()
    sheet = pc.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    for cells in sheet.iter_rows():
        [_cell(v) for v in cells]
    return time.perf_counter() - started


# ----- the records floor: the very records the import stored, COPYed into tables like the ledger's --------
#
# The floor above writes one staging table of text, a row a child. The import must store far more: the
# child, its household, the family, the parents' situations, the carers, a history row for each of those
# (simple-history), an audit event, a visit plan and an import item, with the schema's indexes, CHECK,
# unique and (deferred) foreign-key constraints. `records_floor` takes exactly the rows the import
# wrote, dumps them (binary COPY, not timed) and times COPYing them back in one transaction into
# a scratch schema whose tables are made `LIKE` the ledger's (columns, defaults, CHECK constraints,
# indexes) with the same foreign keys, still pointing at the real tables, where the referenced rows are:
# the database's unavoidable share of the import, with no Python in it.

FLOOR_SCHEMA = "bench_records_floor"


def transaction_mark() -> int:
    """The next transaction id the server will assign (32 bits, as a row's xmin holds it): every row
    written from now on, in the import's transaction or its savepoints, has an xmin at or above it.
    (A bench database that wraps its 32-bit ids around mid-run would confuse this; none does.)"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296")
        return int(cursor.fetchone()[0])


def records_floor(mark: int) -> dict[str, Any]:
    """COPY the rows written since `mark` (transaction_mark) into look-alike tables, one
    transaction, timed. The import inserts them all but two (its own record and the audit chain's
    head, which it updates)."""
    conn = pg_connect()
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname"
            ).fetchall()
        ]
        written = f"xmin::text::bigint >= {int(mark)}"
        dumps: list[tuple[str, bytearray, int]] = []
        for table in tables:
            (count,) = conn.execute(f'SELECT count(*) FROM "{table}" WHERE {written}').fetchone()
            if not count:
                continue
            data = bytearray()
            with conn.cursor().copy(
                f'COPY (SELECT * FROM "{table}" WHERE {written}) TO STDOUT (FORMAT binary)'
            ) as copy:
                for chunk in copy:
                    data += chunk
            dumps.append((table, data, count))
        conn.execute(f"DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {FLOOR_SCHEMA}")
        foreign_keys = 0
        for table, _data, _count in dumps:
            conn.execute(f'CREATE TABLE {FLOOR_SCHEMA}."{table}" (LIKE public."{table}" INCLUDING ALL)')
            definitions = conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
                (f'public."{table}"',),
            ).fetchall()
            for (definition,) in definitions:  # REFERENCES resolves in public (search_path): the real rows
                conn.execute(f'ALTER TABLE {FLOOR_SCHEMA}."{table}" ADD {definition}')
                foreign_keys += 1
        cpu_started = backend_cpu(conn.info.backend_pid)
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("SET CONSTRAINTS ALL DEFERRED")  # as the import's transaction checks them: at commit
            for table, data, _count in dumps:
                with conn.cursor().copy(f'COPY {FLOOR_SCHEMA}."{table}" FROM STDIN (FORMAT binary)') as copy:
                    copy.write(data)
        seconds = time.perf_counter() - started
        cpu_ended = backend_cpu(conn.info.backend_pid)
        conn.execute(f"DROP SCHEMA {FLOOR_SCHEMA} CASCADE")
    finally:
        conn.close()
    return {
        "seconds": seconds,
        "database_cpu_seconds": cpu_ended - cpu_started if cpu_started is not None and cpu_ended is not None else None,
        "records": sum(count for _t, _d, count in dumps),
        "tables": {table: count for table, _d, count in dumps},
        "foreign_keys": foreign_keys,
    }


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
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--keep", action="store_true", help="keep the imported children (otherwise import_undo)")
    ap.add_argument("--user", default="district", help="demo account that imports (district or a town supervisor)")
    ap.add_argument("--seed", type=int, default=None, help="generator seed (default: from the clock)")
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="K",
        help="run the import under cProfile and print the top K cumulative entries to stderr",
    )
    ap.add_argument(
        "--profile-undo",
        type=int,
        default=0,
        metavar="K",
        help="run the undo under cProfile and print the top K cumulative entries to stderr",
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=None,
        help="validation processes (SHOUHU_IMPORT_PROCESSES; 0: validate in the importing process)",
    )
    ap.add_argument(
        "--resurvey",
        action="store_true",
        help="then import the same rows again with every father's and carer's phone changed (all rows changed), timed",
    )
    ap.add_argument("--no-migrate", action="store_true")
    args = ap.parse_args()

    if args.resurvey and not args.keep:
        sys.exit("bench: --resurvey needs --keep (the resurvey edits the children: the import cannot be undone)")
    if args.processes is not None:
        settings.SHOUHU_IMPORT_PROCESSES = args.processes
    db = settings.DATABASES["default"]
    if not settings.DEMO_MODE:
        sys.exit("bench: set SHOUHU_DEMO=1 (it creates the demo accounts and uses the demo data key)")
    if "bench" not in str(db["NAME"]).lower():
        sys.exit(f"bench: refusing database {db['NAME']!r}: use a dedicated one whose name contains 'bench'")

    if not args.no_migrate:
        call_command("migrate", verbosity=0, interactive=False)
    world = build_world(seed=2026)
    create_demo_accounts()
    user = User.objects.get(username=args.user)
    scope = scope_for(user)
    villages = [v for v in world.villages if scope.covers_region(v.code)]
    if not villages:
        sys.exit(f"bench: no demo village in {args.user}'s scope")
    seed = args.seed if args.seed is not None else int(time.time())
    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: say how busy it was
    today = timezone.localdate()

    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        path = Path(tmp) / f"survey_{args.rows}.xlsx"
        started = time.perf_counter()
        generate(path, args.rows, villages, seed=seed, today=today)
        log(
            f"generated {args.rows} rows over {len(villages)} villages in {time.perf_counter() - started:.1f}s "
            f"({path.stat().st_size / 1e6:.1f} MB), peak RSS {rss_mb()} MB"
        )

        rss_before = rss_mb()
        samples: list[tuple[int, float]] = []  # (rows done, resident MB) after each batch of rows

        def progress(done: int, _estimate: int) -> None:
            samples.append((done, current_rss_mb()))

        stats = pipeline.Stats()
        validated_batches = pipeline.validated_batches

        def with_stats(*args: Any, **kwargs: Any) -> Any:  # the run's pipeline figures
            return validated_batches(*args, **{**kwargs, "stats": stats})

        pipeline.validated_batches = with_stats  # type: ignore[assignment]
        mark = transaction_mark() if connection.vendor == "postgresql" else None
        with profiled(args.profile, os.environ.get("BENCH_SORT", "cumulative")):
            database_started = database_cpu()
            started, cpu_started = time.perf_counter(), time.process_time()
            children_started = resource.getrusage(resource.RUSAGE_CHILDREN)
            imp = import_commit(actor=user, source=str(path), filename=path.name, progress=progress)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            database_ended = database_cpu()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            children_cpu = (children.ru_utime + children.ru_stime) - (
                children_started.ru_utime + children_started.ru_stime
            )
        pipeline.validated_batches = validated_batches
        peak = rss_mb()
        if imp.state != "committed":
            errors = [str(e) for e in imp.preview.errors[:20]]
            sys.exit(f"bench: import {imp.state}: {imp.counts} {errors}")
        log(
            f"import: {imp.counts.get('new')} new, {imp.counts.get('changed')} changed, "
            f"{imp.counts.get('unchanged')} unchanged in {seconds:.1f}s; peak RSS {peak} MB (before {rss_before})"
        )

        records: dict[str, Any] = {}
        if mark is not None:  # before the policy evaluation below writes rows of its own
            records = records_floor(mark)
            log(
                f"records floor: {records['records']} records in {len(records['tables'])} tables "
                f"({records['foreign_keys']} foreign keys) COPYed in {records['seconds']:.2f}s: {records['tables']}"
            )

        # The new children's categories: evaluated after commit in the background (huey), timed here.
        from shouhu.policy.services import reevaluate_children

        started = time.perf_counter()
        created = list(imp.items.filter(action="created").values_list("child_id", flat=True))
        policy_counts = reevaluate_children(created)
        policy_seconds = time.perf_counter() - started
        log(f"policy evaluation of {len(created)} new children after commit: {policy_seconds:.1f}s {policy_counts}")

        floor_seconds, copied = floor(path)
        assert copied == args.rows, (copied, args.rows)
        read_seconds = read_only(path)
        log(f"floor: {copied} rows in {floor_seconds:.2f}s (reading alone {read_seconds:.2f}s)")

        resurvey: dict[str, Any] = {}
        if args.resurvey:  # the ledger's children again, each changed: the per-row update path
            again = Path(tmp) / f"resurvey_{args.rows}.xlsx"
            generate(again, args.rows, villages, seed=seed, today=today, resurvey=True)
            started = time.perf_counter()
            second = import_commit(actor=user, source=str(again), filename=again.name)
            resurvey = {
                "resurvey_seconds": round(time.perf_counter() - started, 2),
                "resurvey_changed": second.counts.get("changed"),
            }
            log(f"resurvey: {resurvey}")

    undo_seconds = None
    if not args.keep:
        with profiled(args.profile_undo):
            started = time.perf_counter()
            import_undo(actor=user, imp=imp)
            undo_seconds = round(time.perf_counter() - started, 2)
        log(f"undone (children removed) in {undo_seconds:.1f}s")

    print(
        json.dumps(
            {
                "rows": args.rows,
                "database": connection.vendor,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
                # The validation processes (shouhu/intake/pipeline.py): how many, their CPU time, and
                # the rows the importing process validated itself (none when all went well).
                "validation_processes": stats.processes,
                "validation_cpu_seconds": round(children_cpu, 2),
                "rows_validated_by_importer": stats.rows_here if stats.processes else args.rows,
                # The database server's own CPU time for the import (its backend process, read from
                # /proc: a server on this machine only, else null). On two cores the three share them.
                "database_cpu_seconds": round(database_ended - database_started, 2)
                if database_started is not None and database_ended is not None
                else None,
                "floor_seconds": round(floor_seconds, 3),
                "ratio": round(seconds / floor_seconds, 1) if floor_seconds else None,
                # The same-work floor (PostgreSQL): the floor's reading, then the very records the import
                # stored COPYed into tables like the ledger's, with their indexes and constraints.
                **(
                    {
                        "records_floor_seconds": round(read_seconds + records["seconds"], 3),
                        "records_floor_copy_seconds": round(records["seconds"], 3),
                        "records_floor_database_cpu_seconds": round(records["database_cpu_seconds"], 2)
                        if records["database_cpu_seconds"] is not None
                        else None,
                        "records_floor_records": records["records"],
                        "records_ratio": round(seconds / (read_seconds + records["seconds"]), 1),
                    }
                    if records
                    else {}
                ),
                "peak_rss_mb": peak,
                "policy_after_commit_seconds": round(policy_seconds, 2),
                "undo_seconds": undo_seconds,  # import_undo of the whole file (none with --keep)
                "rows_per_s": round(args.rows / seconds, 1),
                "rss_before_import_mb": rss_before,
                # The resident set while the rows stream through, at five points from the first batch to
                # the last: flat in N when nothing is kept per row.
                "rss_at_rows_mb": [list(samples[round(i * (len(samples) - 1) / 4)]) for i in range(5)]
                if samples
                else [],
                "new": imp.counts.get("new"),
                **resurvey,
                "user": args.user,
                "load_before": load_before,
                "load_after": [round(x, 2) for x in os.getloadavg()],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
