"""Shared fixtures: a small synthetic Wujin built once per test session, and its demo users.

Every test gets a user in scope, a colleague and an outsider: `village_hutang` (in scope of a
湖塘镇 village), `town_hutang` (the whole town), `village_niutang` (an outsider), and the
district, member-unit, leader and administrator accounts of the demo.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from django.utils import timezone

from shouhu.lib.idnumber import make_id_number


def build_fixture_world() -> None:
    from shouhu.org.catalogue import sync_catalogue
    from shouhu.registry.demo import (
        build_world,
        create_demo_accounts,
        generate_children,
        insert_children,
    )

    sync_catalogue()
    world = build_world(seed=7, villages_per_town=3)
    # The demo accounts serve as the test users; tests run outside demo mode, where a demo account
    # could not log in, so they become ordinary accounts here (tests of `is_demo` set it back).
    from shouhu.org.models import User

    create_demo_accounts()
    User.objects.update(is_demo=False)
    rows = list(generate_children(n=60, seed=7, villages=world.villages, today=timezone.localdate()))
    insert_children(rows)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # noqa: ANN001
    with django_db_blocker.unblock():
        build_fixture_world()


@pytest.fixture(autouse=True)
def _refcache_cleared():  # noqa: ANN202
    """Each test starts with an empty reference-data memo: a rolled-back test's regions, stations or
    parameters must not answer the next one (shouhu/lib/refcache.py)."""
    from shouhu.lib import refcache

    refcache.clear()
    yield
    refcache.clear()


@pytest.fixture
def users(db):  # noqa: ANN001
    from shouhu.org.models import User

    return {u.username: u for u in User.objects.select_related("organization")}


@pytest.fixture
def hutang_village():
    from shouhu.org.models import Region

    return Region.objects.filter(code__startswith="320412100", level=5).order_by("code").first()


@pytest.fixture
def niutang_village():
    from shouhu.org.models import Region

    return Region.objects.filter(code__startswith="320412102", level=5).order_by("code").first()


_counter = itertools.count()
# Birth places outside 武进 (320412): never collide with the demo children, all born there. Each
# gives 499 sequence numbers (odd: male and female alike are fine) for one birth date. Every code
# must have existed in every birth year the tests use (2002 on): 金坛市 (320482), abolished in 2015,
# made a child born since then invalid once a session had asked for more than 499 numbers.
_PLACES = ("320481", "320400", "320402", "320404", "320411")


def new_id_number(birth: date | None = None) -> str:
    n = next(_counter)
    place = _PLACES[(n // 499) % len(_PLACES)]
    return make_id_number(place, birth or date(2015, 3, 8), 1 + 2 * (n % 499))


@pytest.fixture
def make_child(db, users):  # noqa: ANN001
    """Register a child through the service, as a village director would."""
    from shouhu.registry import services

    def make(region, *, actor=None, name="张小明", birth=date(2015, 3, 8), **extra):  # noqa: ANN001
        actor = actor or users["district"]
        data = {
            "name": name,
            "id_number": new_id_number(birth),
            "gender": "",
            "birth_date": birth,
            "region": region,
            "school_stage": "primary",
            "ethnicity": "汉族",
            "hukou_type": "rural",
            "health": "healthy",
            "guardianship_type": "ordinary",
            **extra,
        }
        from shouhu.lib.idnumber import parse_id_number

        info = parse_id_number(data["id_number"])
        data["gender"], data["birth_date"] = info.gender, info.birth_date
        return services.child_create(
            actor=actor, data=data, household={"address": "武进区湖塘镇示例路1号", "economic_status": "ordinary"}
        )

    return make


# ----- browser tests (shouhu/browser_testing.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # noqa: ANN001
    from shouhu.browser_testing import CHROMIUM, LAUNCH_ARGS

    return {**browser_type_launch_args, "executable_path": CHROMIUM or "/usr/bin/chromium", "args": LAUNCH_ARGS}


@pytest.fixture(scope="module")
def _async_unsafe_allowed():  # noqa: ANN202
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def playwright(_async_unsafe_allowed):  # noqa: ANN001, ANN201
    """Playwright's event loop lives only while a browser module runs (pytest-playwright's own
    fixtures are session-wide, and would leave the loop running under later database tests)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def browser_type(playwright):  # noqa: ANN001, ANN201
    return playwright.chromium


@pytest.fixture(scope="module")
def browser(browser_type, browser_type_launch_args):  # noqa: ANN001, ANN201
    browser = browser_type.launch(**browser_type_launch_args)
    yield browser
    browser.close()


@pytest.fixture
def demo_live(live_world, settings):  # noqa: ANN001
    """The live server with demo mode on (demo accounts log in with the demo password only then)."""
    settings.DEMO_MODE = True
    return live_world


def _audit_triggers(*, enabled: bool) -> None:
    """Switch the audit table's append-only triggers (migration audit 0002) off or back on."""
    import importlib

    from django.db import connection

    migration = importlib.import_module("shouhu.audit.migrations.0002_append_only")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE audit_auditevent {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")
        elif connection.vendor == "sqlite":
            for statement in migration.SQLITE_UP if enabled else migration.SQLITE_DOWN:
                cursor.execute(statement)


@pytest.fixture(scope="module")
def _audit_triggers_restored(django_db_blocker):  # noqa: ANN001, ANN202
    """After a module of live-server tests (and so after its last flush), the audit table is
    append-only again."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        _audit_triggers(enabled=True)
        connections.close_all()  # else PostgreSQL keeps this session and the test database cannot be dropped


@pytest.fixture
def live_world(_audit_triggers_restored, live_server):  # noqa: ANN001
    """The fixture world (rebuilt when an earlier transactional test flushed it), served live.

    A live-server test is transactional: pytest-django empties every table afterwards, which the
    append-only audit table refuses; its triggers are off for that flush only.
    """
    from shouhu.org.models import User

    if not User.objects.filter(username="village_hutang").exists():
        build_fixture_world()
    yield live_server
    _audit_triggers(enabled=False)
