#!/usr/bin/env python
"""Reports benchmark (issue #6): submit N reports through `POST /api/v1/reports` with C concurrent
clients against a running server and a running huey consumer, next to a raw INSERT floor, then time
how long after a deadline passes its escalation is visible; print one JSON object.

    SHOUHU_DEMO=1 SHOUHU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shouhu_bench_reports \
        .venv/bin/python bench/reports.py --reports 10000 --clients 20

See bench/README.md. Only for a dedicated database (its name must contain "bench"); PostgreSQL only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shouhu.settings")
# The server, the consumer and this process share one huey store (SqliteHuey under the var dir,
# unless SHOUHU_REDIS_URL is set): a private var dir keeps the bench's queue apart from var/.
_OWN_VAR_DIR = "SHOUHU_VAR_DIR" not in os.environ
if _OWN_VAR_DIR:
    os.environ["SHOUHU_VAR_DIR"] = tempfile.mkdtemp(prefix="shouhu_bench_reports_")
_VAR_DIR = os.environ["SHOUHU_VAR_DIR"]

SERVER_DESC = "django runserver --noreload --insecure (threaded, one thread per connection)"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ensure_database(url: str) -> None:
    """CREATE DATABASE if it does not exist (connects to the `postgres` maintenance database)."""
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(url)
    kwargs = {
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **kwargs) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            log(f"creating database {db['NAME']}")
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


_url = os.environ.get("SHOUHU_DATABASE_URL", "")
if (
    not os.environ.get("SHOUHU_DEMO")
    or "bench" not in _url.rsplit("/", 1)[-1].lower()
    or not _url.startswith(("postgres://", "postgresql://"))
):
    sys.exit("bench: set SHOUHU_DEMO=1 and SHOUHU_DATABASE_URL=postgres://…/<a database whose name contains 'bench'>")
ensure_database(_url)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from shouhu.api.auth import issue_token  # noqa: E402
from shouhu.api.models import ApiToken  # noqa: E402
from shouhu.org.models import Organization, OrgKind, Region, RegionLevel, Role, User, UserRole  # noqa: E402
from shouhu.registry.demo import build_world, create_demo_accounts  # noqa: E402
from shouhu.safeguarding.models import URGENT_SITUATIONS  # noqa: E402

# ----- bodies ---------------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "子涵欣怡梓轩浩宇一诺雨桐宇轩若汐佳怡俊杰思远紫萱梓涵晨曦博文雅琪嘉怡诗涵浩然"
PLACES = [
    "学校门口",
    "教室",
    "校车上",
    "家中",
    "村委会附近",
    "小区楼道",
    "镇卫生院急诊",
    "河边",
    "网吧门口",
    "菜市场",
    "公交站台",
    "亲戚家",
    "学校操场",
    "幼儿园午休室",
]
SEEN = [
    "该生近一周多次带伤到校，手臂和背部有新旧不一的淤青，问及原因时回避，称是自己摔的。",
    "孩子上课时精神恍惚，衣着单薄，午饭时反复向同学要食物，说家里已经两天没人做饭。",
    "班主任发现学生手机中有陌生成年人发送的不当信息，学生称对方要求见面，情绪非常紧张。",
    "急诊接诊一名儿童，头部外伤，陪同的成年人说法前后矛盾，孩子看到该成年人后不敢说话。",
    "邻居反映孩子晚上常被锁在门外，哭喊声持续很久，家中大人经常酗酒。",
    "学生在作文中写到不想回家、害怕继父，课后向老师哭诉曾被打并被威胁不许告诉别人。",
    "幼儿园老师在午睡时发现孩子身上有烫伤痕迹，家长接送时解释不清。",
    "孩子连续十余天未到校，家访时发现其独自在家照顾弟妹，父母外出务工联系不上。",
]


def make_body(rng: random.Random, town_villages: list[str], *, urgent: bool | None = None) -> dict[str, Any]:
    """A realistic report body: 1–3 situations, an unidentified child, a village of the town."""
    situations = sorted(rng.sample(range(1, 10), rng.choice((1, 1, 1, 2, 2, 3))))
    danger = rng.random() < 0.15
    if urgent is True:
        situations, danger = sorted({*situations, 2}), True
    elif urgent is False:
        situations = [s for s in situations if s not in URGENT_SITUATIONS] or [1]
        danger = False
    found = timezone.localtime() - timedelta(minutes=rng.randint(5, 60 * 48))
    text = "".join(rng.sample(SEEN, rng.choice((1, 2, 3))))
    return {
        "situations": situations,
        "child": {
            "name": rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2)))),
            "sex": rng.choice("MF"),
            "age": rng.randint(3, 16),
        },
        "found_at": found.replace(microsecond=0).isoformat(),
        "place_region_code": rng.choice(town_villages),
        "place": rng.choice(PLACES),
        "description": text,
        "danger_now": danger,
    }


# ----- set-up ---------------------------------------------------------------------------------------


def reporters(n: int) -> list[tuple[User, list[str]]]:
    """`school_hutang` plus bench reporters in the demo schools and hospitals (one account per client,
    as each school's system would have its own), with the village codes of each one's town."""
    create_demo_accounts()
    units = list(
        Organization.objects.filter(
            kind__in=[OrgKind.SCHOOL, OrgKind.HOSPITAL], is_active=True, regions__level=RegionLevel.TOWN
        )
        .order_by("pk")
        .distinct()
    )
    out = []
    for i in range(n):
        if i == 0:
            user = User.objects.get(username="school_hutang")
        else:
            org = units[i % len(units)]
            user, _ = User.objects.update_or_create(
                username=f"bench_reporter_{i:02d}",
                defaults={
                    "full_name": f"{org.name}系统接口（压测）",
                    "organization": org,
                    "is_demo": True,
                    "is_active": True,
                    "password": "!",
                },
            )
            UserRole.objects.get_or_create(user=user, role=Role.REPORTER)
        town = user.organization.regions.filter(level=RegionLevel.TOWN).first()
        codes = list(Region.objects.filter(parent=town, level=RegionLevel.VILLAGE).values_list("code", flat=True))
        out.append((user, [town.code, *codes]))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Children:
    """The server and the consumer, each in its own process group, stopped even on errors."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], logfile: Path) -> subprocess.Popen[bytes]:
        out = open(logfile, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
        )
        out.close()
        self.procs.append((name, proc))
        log(f"{name} started (pid {proc.pid}, log {logfile})")
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
            log(f"{name} stopped")


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited at start-up (see its log)")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/tasks")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not answer in time")


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


# ----- measurement ----------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return pids


class CpuMeter:
    """CPU seconds used by each process group (the server, the consumer) and by the PostgreSQL
    backends connected to the bench's database, sampled every 0.5 s per process (a backend that
    Django closes after `conn_max_age` keeps what it used until its last sample): what one report
    costs the machine, whatever else runs on it (unlike latency, which other work stretches)."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        self.seen: dict[tuple[str, int], list[float]] = {}  # (group, pid) -> [first, last]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self, conn: Any, first: bool) -> None:
        pids = [(name, pid) for name, pgid in self.groups.items() for pid in _group_pids(pgid)]
        pids += [
            ("postgres", r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        for key in pids:
            used = _cpu_seconds(key[1])
            if key in self.seen:
                self.seen[key][1] = max(self.seen[key][1], used)
            else:
                self.seen[key] = [used if first else 0.0, used]

    def _loop(self) -> None:
        with pg_connect() as conn:
            self._sample(conn, True)
            self.started.set()
            while not self.stopping.wait(0.5):
                self._sample(conn, False)
            self._sample(conn, False)

    def start(self) -> None:
        self.started = threading.Event()
        self.thread.start()
        self.started.wait()

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join()
        out = dict.fromkeys([*self.groups, "postgres"], 0.0)
        for (name, _pid), (first, last) in self.seen.items():
            out[name] += last - first
        return out


def machine_load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, in ms."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return round(ordered[k] * 1000, 2)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": pct(values, 0.5),
        "p95": pct(values, 0.95),
        "p99": pct(values, 0.99),
        "max": pct(values, 1.0),
        "n": len(values),
    }


class Client:
    """One keep-alive HTTP/1.1 connection; a dropped connection is reopened and the same request
    (same Idempotency-Key) sent again, as a real client would."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def post(self, path: str, body: bytes, key: str) -> tuple[int, bytes]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "Connection": "keep-alive",
        }
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, data
            except (http.client.HTTPException, ConnectionError, TimeoutError):
                self.conn.close()
                self.conn = None
                self.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def submit_all(
    port: int, accounts: list[tuple[str, list[str]]], n: int, clients: int, seed: int, tag: str
) -> dict[str, Any]:
    """N submissions split over `clients` threads, one account and one connection per thread."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    ids: list[list[int]] = [[] for _ in range(clients)]
    reconnects = [0] * clients
    start_gate = threading.Barrier(clients + 1)

    def work(c: int) -> None:
        token, villages = accounts[c % len(accounts)]
        rng = random.Random(seed * 1000 + c)
        count = n // clients + (1 if c < n % clients else 0)
        bodies = [json.dumps(make_body(rng, villages), ensure_ascii=False).encode() for _ in range(count)]
        client = Client(port, token)
        start_gate.wait()
        for i, body in enumerate(bodies):
            key = f"{tag}-{c}-{i}"
            started = time.perf_counter()
            try:
                status, data = client.post("/api/v1/reports", body, key)
            except Exception as exc:  # noqa: BLE001 - counted
                errors[c].append(repr(exc)[:200])
                continue
            latencies[c].append(time.perf_counter() - started)
            if status != 201:
                errors[c].append(f"{status} {data[:200]!r}")
            else:
                ids[c].append(json.loads(data)["id"])
        reconnects[c] = client.reconnects
        if client.conn is not None:
            client.conn.close()

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    flat = [v for lst in latencies for v in lst]
    errs = [e for lst in errors for e in lst]
    return {
        "latencies": flat,
        "wall": wall,
        "errors": errs,
        "ids": [i for lst in ids for i in lst],
        "reconnects": sum(reconnects),
    }


FLOOR_TABLE = "bench_report_floor"


def floor_inserts(n: int, clients: int, seed: int, villages: list[str]) -> dict[str, Any]:
    """The floor: the same number of report-shaped rows INSERTed one per statement (autocommit, one
    transaction each, as one report per request) by the same number of threads, each on its own
    connection, into an ordinary (logged) staging table with a unique key like the idempotency key."""
    with pg_connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        conn.execute(
            f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, reporter int NOT NULL, "
            "idempotency_key varchar(80) NOT NULL, situations jsonb NOT NULL, urgent boolean NOT NULL, "
            "child_name text NOT NULL, child_sex varchar(1) NOT NULL, child_age int, "
            "found_at timestamptz NOT NULL, place_region varchar(12) NOT NULL, place text NOT NULL, "
            "description text NOT NULL, danger_now boolean NOT NULL, created_at timestamptz NOT NULL "
            "DEFAULT now(), UNIQUE (reporter, idempotency_key))"
        )
    latencies: list[list[float]] = [[] for _ in range(clients)]
    gate = threading.Barrier(clients + 1)
    sql = (
        f"INSERT INTO {FLOOR_TABLE} (reporter, idempotency_key, situations, urgent, child_name, child_sex, "
        "child_age, found_at, place_region, place, description, danger_now) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, created_at"
    )

    def work(c: int) -> None:
        rng = random.Random(seed * 1000 + c)
        count = n // clients + (1 if c < n % clients else 0)
        rows = []
        for i in range(count):
            b = make_body(rng, villages)
            urgent = b["danger_now"] or bool(set(b["situations"]) & URGENT_SITUATIONS)
            rows.append(
                (
                    c,
                    f"floor-{c}-{i}",
                    json.dumps(b["situations"]),
                    urgent,
                    b["child"]["name"],
                    b["child"]["sex"],
                    b["child"]["age"],
                    b["found_at"],
                    b["place_region_code"],
                    b["place"],
                    b["description"],
                    b["danger_now"],
                )
            )
        with pg_connect() as conn:
            gate.wait()
            for row in rows:
                started = time.perf_counter()
                conn.execute(sql, row).fetchone()
                latencies[c].append(time.perf_counter() - started)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    gate.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    with pg_connect() as conn:
        conn.execute(f"DROP TABLE {FLOOR_TABLE}")
    return {"latencies": [v for lst in latencies for v in lst], "wall": wall}


def drain(since: Any, timeout: float) -> float | None:
    """Seconds until the consumer has announced every report and sent every delivery created since
    `since` (None: not within `timeout`)."""
    started = time.monotonic()
    with pg_connect() as conn:
        outbox = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'safeguarding_report' "
            "AND column_name = 'announced_at'"
        ).fetchone()  # absent before the outbox marker
        unannounced = "(SELECT count(*) FROM safeguarding_report WHERE announced_at IS NULL)" if outbox else "0"
        while time.monotonic() - started < timeout:
            waiting = conn.execute(
                f"SELECT {unannounced} + "
                "(SELECT count(*) FROM notify_delivery WHERE created_at >= %s AND state = 'pending')",
                [since],
            ).fetchone()[0]
            if not waiting:
                return round(time.monotonic() - started, 1)
            time.sleep(0.2)
    return None


def announce_lag(since: Any) -> dict[str, Any]:
    """Seconds from each report's commit to its notifications (the station's inbox entry), over the
    reports since `since`: `announced_at - created_at`, median, p95 and max."""
    with pg_connect() as conn:
        if not conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'safeguarding_report' "
            "AND column_name = 'announced_at'"
        ).fetchone():
            return {"in_request": True}  # before the outbox marker: told inside the submission
        lags = [
            r[0]
            for r in conn.execute(
                "SELECT extract(epoch FROM announced_at - created_at)::float FROM safeguarding_report "
                "WHERE created_at >= %s AND announced_at IS NOT NULL",
                [since],
            ).fetchall()
        ]
    if not lags:
        return {"n": 0}
    return {
        "median": round(pct(lags, 0.5) / 1000, 2),
        "p95": round(pct(lags, 0.95) / 1000, 2),
        "max": round(pct(lags, 1.0) / 1000, 2),
        "n": len(lags),
    }


def escalation(
    port: int, token: str, villages: list[str], k: int, lead: float, timeout: float, seed: int, tag: str
) -> dict[str, Any]:
    """K urgent reports through the API; their ACCEPT deadline's due_at moved to now + `lead` s in the
    database (as if the hour had passed unaccepted); then poll until each report's escalation is
    visible: its ESCALATED timeline event committed (what the report page, the district's
    `?escalated=1` list and the procuratorate's view read; the API's report schema has no escalation
    field). Seconds from due_at to the poll that first sees it."""
    rng = random.Random(seed)
    client = Client(port, token)
    ids = []
    for i in range(k):
        status, data = client.post(
            "/api/v1/reports",
            json.dumps(make_body(rng, villages, urgent=True), ensure_ascii=False).encode(),
            f"{tag}-esc-{i}",
        )
        assert status == 201, (status, data[:300])
        body = json.loads(data)
        assert body["urgent"], body
        ids.append(body["id"])
    if client.conn is not None:
        client.conn.close()
    with pg_connect() as conn:
        rows = conn.execute(
            "UPDATE safeguarding_reportdeadline SET due_at = now() + make_interval(secs => %s) "
            "WHERE report_id = ANY(%s) AND kind = 'accept' AND met_at IS NULL RETURNING report_id, due_at",
            [lead, ids],
        ).fetchall()
        assert len(rows) == k, rows
        due = {r[0]: r[1] for r in rows}
        seen: dict[int, float] = {}
        event_at: dict[int, float] = {}
        stop = time.monotonic() + lead + timeout
        while len(seen) < k and time.monotonic() < stop:
            found = conn.execute(
                "SELECT report_id, at, now() FROM safeguarding_reportevent WHERE kind = 'escalated' "
                "AND report_id = ANY(%s)",
                [ids],
            ).fetchall()
            for report_id, at, now in found:
                if report_id not in seen:
                    seen[report_id] = (now - due[report_id]).total_seconds()
                    event_at[report_id] = (at - due[report_id]).total_seconds()
            time.sleep(0.5)
        other = conn.execute(
            "SELECT count(*) FROM safeguarding_reportevent WHERE kind = 'escalated' AND NOT (report_id = ANY(%s))",
            [ids],
        ).fetchone()[0]
    values = sorted(seen.values())
    return {
        "median": round(statistics.median(values), 1) if values else None,
        "max": round(max(values), 1) if values else None,
        "k": k,
        "visible": len(values),
        "timed_out": k - len(values),
        "job_lag_median": round(statistics.median(event_at.values()), 1) if event_at else None,
        "other_escalations": other,
    }


def profile(n: int, top: int, account: User, villages: list[str]) -> dict[str, Any]:
    """cProfile of `n` submissions in-process (Django test Client: every middleware, the same view),
    the top entries by cumulative time to stderr; SQL statements per request."""
    import cProfile
    import io
    import pstats

    from django.test import Client as TestClient
    from django.test.utils import CaptureQueriesContext

    token = issue_token(account)
    client = TestClient(HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="127.0.0.1")
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:8]

    def one(i: int) -> None:
        r = client.post(
            "/api/v1/reports",
            json.dumps(make_body(rng, villages)),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"prof-{tag}-{i}",
        )
        assert r.status_code == 201, (r.status_code, r.content[:300])

    for i in range(10):
        one(-i - 1)
    with CaptureQueriesContext(connection) as ctx:
        one(10**6)
    queries = [q["sql"][:160] for q in ctx.captured_queries]
    times = []
    prof = cProfile.Profile()
    for i in range(n):
        started = time.perf_counter()
        prof.enable()
        one(i)
        prof.disable()
        times.append(time.perf_counter() - started)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    print(buf.getvalue(), file=sys.stderr)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    print(buf.getvalue(), file=sys.stderr)
    print("\n".join(f"  {i + 1:2d}. {q}" for i, q in enumerate(queries)), file=sys.stderr)
    ApiToken.objects.filter(key_hash__isnull=False, user=account, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return {
        "requests": n,
        "serial_median_ms": pct(times, 0.5),
        "serial_p95_ms": pct(times, 0.95),
        "queries_per_submit": len(queries),
    }


# ----- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=100, help="submissions before timing (not counted in N)")
    ap.add_argument("--escalations", type=int, default=10, help="K late reports for the escalation timing (0: skip)")
    ap.add_argument("--lead", type=float, default=5.0, help="the late reports' deadline: now + LEAD seconds")
    ap.add_argument("--escalation-timeout", type=float, default=240.0)
    ap.add_argument("--workers", type=int, default=2, help="huey consumer threads (run_huey -w)")
    ap.add_argument(
        "--server",
        choices=("gunicorn", "runserver"),
        default="gunicorn",
        help="gunicorn (the production WSGI server, docs/deployment.md) or Django's runserver",
    )
    ap.add_argument("--server-workers", type=int, default=3, help="gunicorn worker processes")
    ap.add_argument(
        "--server-threads",
        type=int,
        default=0,
        help="gunicorn threads per worker (gthread); 0: the sync worker (one request at a time, no keep-alive)",
    )
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after the run, cProfile N submissions in-process; top entries to stderr",
    )
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--keep-reports",
        action="store_true",
        help="keep earlier runs' reports (default: TRUNCATE the report tables first, so old "
        "open deadlines do not escalate during this run)",
    )
    ap.add_argument("--no-migrate", action="store_true")
    args = ap.parse_args()
    if not settings.DEMO_MODE:
        sys.exit("bench: set SHOUHU_DEMO=1")
    seed = args.seed if args.seed is not None else int(time.time())
    tag = f"b{seed}"

    if not args.no_migrate:
        call_command("migrate", verbosity=0, interactive=False)
    build_world(seed=2026)
    if not args.keep_reports:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE safeguarding_report CASCADE")
        log("report tables emptied (TRUNCATE safeguarding_report CASCADE)")
    accounts = reporters(args.clients)
    tokens = [(issue_token(u), villages) for u, villages in accounts]
    log(
        f"{len(accounts)} reporting accounts; huey store: {settings.HUEY.get('huey_class')} "
        f"{settings.HUEY.get('filename') or settings.HUEY.get('connection')}"
    )
    connection.close()

    port = free_port()
    var = Path(_VAR_DIR)
    kids = Children()
    result: dict[str, Any] = {}
    try:
        if args.server == "gunicorn":
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                "shouhu.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(args.server_workers),
                "--timeout",
                "300",
                "--log-level",
                "warning",
            ]
            if args.server_threads:
                command += ["-k", "gthread", "--threads", str(args.server_threads), "--keep-alive", "30"]
                server_desc = f"gunicorn shouhu.wsgi -w {args.server_workers} --threads {args.server_threads}"
            else:
                command += ["-k", "sync"]
                server_desc = f"gunicorn shouhu.wsgi -w {args.server_workers} -k sync --timeout 300"
        else:
            command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]
            server_desc = SERVER_DESC
        server = kids.start("server", command, var / "server.log")
        consumer = kids.start(
            "consumer",
            [sys.executable, "manage.py", "run_huey", "-w", str(args.workers), "-k", "thread"],
            var / "consumer.log",
        )
        groups = {"server": server.pid, "consumer": consumer.pid}
        wait_ready(port, server)
        with pg_connect() as conn:
            run_started = conn.execute("SELECT now()").fetchone()[0]
        log(f"server ready on :{port}; warm-up {args.warmup}")
        if args.warmup:
            warm = submit_all(port, tokens, args.warmup, min(args.clients, args.warmup), seed + 1, f"{tag}w")
            assert not warm["errors"], warm["errors"][:5]
        drain(run_started, 120)
        log(f"submitting {args.reports} reports with {args.clients} clients (load average {machine_load()})")
        meter = CpuMeter(groups)
        meter.start()
        load_before, bench_cpu = machine_load(), time.process_time()
        run = submit_all(port, tokens, args.reports, args.clients, seed, tag)
        bench_cpu, load_after = time.process_time() - bench_cpu, machine_load()
        drained = drain(run_started, 300)  # the consumer's share: the run's announcements and deliveries
        cpu_ms = {k: round(v * 1000 / args.reports, 2) for k, v in meter.stop().items()}
        announce = announce_lag(run_started)
        cpu_ms["total"] = round(sum(cpu_ms.values()), 2)
        cpu_ms["clients"] = round(bench_cpu * 1000 / args.reports, 2)
        log(f"CPU per report (ms): {cpu_ms}; consumer drained {drained} s after the last submission")
        lat = run["latencies"]
        log(
            f"submitted in {run['wall']:.1f}s: p50 {pct(lat, 0.5)} ms, p95 {pct(lat, 0.95)} ms, "
            f"{len(run['errors'])} errors, {run['reconnects']} reconnects"
        )
        for e in run["errors"][:5]:
            log(f"  error: {e}")
        esc: dict[str, Any] = {"k": 0}
        if args.escalations:
            log(f"escalation: {args.escalations} urgent reports, accept deadline moved to now + {args.lead:g}s")
            esc = escalation(
                port, tokens[0][0], tokens[0][1], args.escalations, args.lead, args.escalation_timeout, seed + 2, tag
            )
            log(f"escalation visible after {esc['median']} s (median), {esc['max']} s (max)")
        with pg_connect() as conn:  # this run's external-channel deliveries ("log") not yet sent at the end
            outbox = conn.execute(
                "SELECT count(*) FILTER (WHERE state <> 'sent'), count(*) FROM notify_delivery WHERE created_at >= %s",
                [run_started],
            ).fetchone()
    finally:
        kids.stop()

    log(f"floor: {args.reports} INSERTs with {args.clients} threads")
    floor = floor_inserts(args.reports, args.clients, seed, tokens[0][1])
    fl = floor["latencies"]
    p95, floor_p95 = pct(lat, 0.95), pct(fl, 0.95)
    result = {
        "reports": args.reports,
        "clients": args.clients,
        "database": connection.vendor,
        "submit_ms": summary(lat),
        "throughput_per_s": round(len(lat) / run["wall"], 1),
        "wall_seconds": round(run["wall"], 1),
        "errors": len(run["errors"]),
        "reconnects": run["reconnects"],
        "cpu_ms_per_report": cpu_ms,
        "consumer_drained_after_s": drained,
        "announce_lag_s": announce,
        "load_average": {"before": load_before, "after": load_after},
        "floor_ms": summary(fl),
        "floor_throughput_per_s": round(len(fl) / floor["wall"], 1),
        "ratio": round(p95 / floor_p95, 1) if p95 and floor_p95 else None,
        "ratio_median": round(pct(lat, 0.5) / pct(fl, 0.5), 1) if fl else None,
        "escalation_seconds": esc,
        "goal_met": {
            "submit_p95_200ms": bool(p95 is not None and p95 <= 200 and not run["errors"]),
            "escalation_90s": bool(esc.get("k") and esc.get("timed_out") == 0 and esc["max"] <= 90),
        },
        "server": server_desc,
        "consumer": f"manage.py run_huey -w {args.workers} -k thread, {settings.HUEY.get('huey_class')}",
        "deliveries_unsent_of_total": list(outbox),
    }
    if args.profile:
        log(f"profiling {args.profile} submissions in-process")
        result["profile"] = profile(args.profile, 40, accounts[0][0], accounts[0][1])
    ApiToken.objects.filter(user__in=[u for u, _ in accounts], revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    print(json.dumps(result, ensure_ascii=False))
    if _OWN_VAR_DIR:  # kept (with the server and consumer logs) when the run fails
        shutil.rmtree(_VAR_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
