"""The public entrance: anyone reports without an account; it answers only with a receipt code."""

from __future__ import annotations

import re
import time

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from shouhu.org.models import Region
from shouhu.safeguarding import public, services
from shouhu.safeguarding.models import DeadlineKind, EventKind, Report, Source

pytestmark = pytest.mark.django_db

DESCRIPTION = "邻居家孩子天天被打，胳膊上全是淤青"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    cache.clear()  # the rate limits and used challenges live in the cache
    # The limits count in fixed hour and day windows: a test running across an hour boundary would
    # see its count restart (CI met one at 02:00). Pin the windows' clock to the middle of a day.
    noon = (int(time.time()) // 86400) * 86400 + 43200 + 1800
    monkeypatch.setattr(public, "_window_clock", lambda: noon)
    yield
    cache.clear()


def _form(region, **extra):
    """A filled form with a challenge issued a minute ago and its right answer."""
    _question, token = public.challenge_new(now=time.time() - 60)
    data = {
        "situations": ["4"],
        "place_region": region.code,
        "place": "村口小卖部旁",
        "found_at": "",
        "description": DESCRIPTION,
        "child_name": "小军",
        "child_sex": "M",
        "child_age": "8",
        "reporter_contact": "",
        "homepage": "",
        "challenge_token": token,
        "challenge_answer": str(public.challenge_answer(token)),
    }
    data.update(extra)
    return data


def _receipt(response) -> str:
    match = re.search(r'class="sh-receipt"[^>]*>([0-9A-Z]{10})<', response.content.decode())
    assert match, response.content.decode()[:2000]
    return match.group(1)


def test_a_neighbour_reports_and_the_report_runs_on_the_same_chain_and_clocks(client, hutang_village):
    assert client.get("/report/").status_code == 200
    response = client.post("/report/", _form(hutang_village))
    assert response.status_code == 200
    code = _receipt(response)
    page = response.content.decode()
    assert DESCRIPTION not in page and "小军" not in page  # it never shows anything back
    report = Report.objects.get()
    assert report.receipt_code == code and report.source == Source.PUBLIC
    assert report.reporter is None and report.reporter_org is None and report.reporter_contact == ""
    assert report.urgent and report.police_station.name == "湖塘派出所"
    assert report.town_code == hutang_village.code[:9] + "000" and report.child_name == "小军"
    assert {d.kind for d in report.deadlines.all()} == {DeadlineKind.ACCEPT, DeadlineKind.FEEDBACK, DeadlineKind.RESULT}
    assert [e.kind for e in report.events.all()] == [EventKind.RECEIVED, EventKind.ROUTED]


def test_a_town_is_enough_and_a_photo_is_kept(client, hutang_village):
    town = Region.objects.get(code=hutang_village.code[:9] + "000")
    data = _form(town, reporter_contact="13800000000", attachments=SimpleUploadedFile("a.png", PNG, "image/png"))
    assert client.post("/report/", data).status_code == 200
    report = Report.objects.get()
    assert report.place_region_id == town.code and report.reporter_contact == "13800000000"
    assert report.attachments.get().content_type == "image/png"


def test_a_file_that_is_no_photo_is_refused_and_nothing_stored(client, hutang_village):
    data = _form(hutang_village, attachments=SimpleUploadedFile("a.png", b"MZ\x90\x00 not a photo", "image/png"))
    response = client.post("/report/", data)
    assert response.status_code == 400 and "JPG、PNG" in response.content.decode()
    assert Report.objects.count() == 0


def test_a_wrong_answer_is_refused_and_the_typed_text_kept(client, hutang_village):
    response = client.post("/report/", _form(hutang_village, challenge_answer="99"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "答案不对" in page and DESCRIPTION in page and "村口小卖部旁" in page
    assert re.search(r'value="4" id="[^"]+" checked', page)  # the ticked situation stays ticked
    assert Report.objects.count() == 0
    # A new question comes with a new token: the refused one is not shown again.
    token = re.search(r'name="challenge_token" value="([^"]+)"', page).group(1)
    assert public.challenge_question(token)


def test_full_width_digits_from_a_chinese_keyboard_are_accepted(client, hutang_village):
    data = _form(hutang_village)
    data["challenge_answer"] = data["challenge_answer"].translate(
        str.maketrans("0123456789-", "０１２３４５６７８９－")
    )
    assert client.post("/report/", data).status_code == 200
    assert Report.objects.count() == 1


def test_an_answer_sent_within_seconds_of_the_question_is_refused(client, hutang_village):
    _question, token = public.challenge_new()
    data = _form(hutang_village, challenge_token=token, challenge_answer=str(public.challenge_answer(token)))
    assert client.post("/report/", data).status_code == 400
    assert Report.objects.count() == 0


def test_the_honeypot_is_refused_silently(client, hutang_village):
    response = client.post("/report/", _form(hutang_village, homepage="http://spam.example"))
    assert response.status_code == 200 and _receipt(response)  # looks like a receipt to the bot
    assert Report.objects.count() == 0


def test_the_same_page_sent_twice_is_one_report_with_one_receipt(client, hutang_village):
    data = _form(hutang_village)
    first = _receipt(client.post("/report/", data))
    second = _receipt(client.post("/report/", data))
    assert first == second and Report.objects.count() == 1


def test_the_sixth_report_in_an_hour_from_one_address_gets_429(client, hutang_village):
    for _i in range(5):
        assert client.post("/report/", _form(hutang_village)).status_code == 200
    response = client.post("/report/", _form(hutang_village))
    assert response.status_code == 429 and "次数过多" in response.content.decode()
    assert Report.objects.count() == 5
    other = client.post("/report/", _form(hutang_village), REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 200 and Report.objects.count() == 6  # another address is not held up


def test_too_many_attempts_get_429_even_when_each_is_refused(client, hutang_village):
    for _i in range(public.ATTEMPT_LIMITS[0][0]):
        assert client.post("/report/", _form(hutang_village, challenge_answer="99")).status_code == 400
    assert client.post("/report/", _form(hutang_village)).status_code == 429
    assert Report.objects.count() == 0


def test_an_oversized_request_is_refused_before_it_is_read(client, hutang_village):
    response = client.post("/report/", _form(hutang_village), CONTENT_LENGTH=str(public.PUBLIC_MAX_REQUEST_BYTES + 1))
    assert response.status_code == 413 and Report.objects.count() == 0


def test_the_status_page_shows_only_the_status_and_dates(client, users, hutang_village):
    code = _receipt(client.post("/report/", _form(hutang_village)))
    report = Report.objects.get()
    response = client.post("/report/status/", {"code": code.lower()})
    assert response.status_code == 200 and "已接收" in response.content.decode()
    services.report_accept(actor=users["police_hutang"], report=report, officer="张警官")
    page = client.post("/report/status/", {"code": f"{code[:5]}-{code[5:]}"}).content.decode()
    assert "已受理" in page and "受理日期" in page
    for secret in (DESCRIPTION, "小军", "村口小卖部旁", "张警官", "湖塘派出所", "湖塘"):
        assert secret not in page
    missing = client.post("/report/status/", {"code": "2222222222"}).content.decode()
    assert "没有找到" in missing


def test_guessing_receipt_codes_is_rate_limited(client):
    for _i in range(public.STATUS_LIMITS[0][0]):
        assert client.post("/report/status/", {"code": "2222222222"}).status_code == 200
    assert client.post("/report/status/", {"code": "2222222222"}).status_code == 429


def test_the_poster_points_at_the_public_address(client, settings):
    settings.SHOUHU_SITE_URL = "https://shouhu.wj.example/"
    page = client.get("/report/qr/").content.decode()
    assert "https://shouhu.wj.example/report/" in page and "<svg" in page and "110" in page
    settings.SHOUHU_SITE_URL = ""
    assert "http://testserver/report/" in client.get("/report/qr/").content.decode()


def test_csrf_stays_on(hutang_village):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/report/", _form(hutang_village)).status_code == 403
    assert Report.objects.count() == 0


# ----- the limits hold across server processes ------------------------------------------------------


def _on_sqlite() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


@pytest.fixture
def committed(_audit_triggers_restored, transactional_db):  # noqa: ANN001
    """Counts committed where another connection sees them; the cache table emptied afterwards (the
    flush after a transactional test empties the models' tables, not the cache's)."""
    from shouhu.conftest import _audit_triggers

    yield
    cache.clear()
    _audit_triggers(enabled=False)


def _hits(address: str, n: int) -> None:
    """One server process's share of the hits: its own cache client (Django's caches are per
    thread) and its own database connection, closed at the end."""
    from django.db import connection
    from django.test import RequestFactory

    request = RequestFactory().post("/report/", REMOTE_ADDR=address)
    try:
        for _i in range(n):
            public.count_hit(request, "report", public.REPORT_LIMITS)
    finally:
        connection.close()


def test_the_limits_live_in_a_cache_shared_by_every_process():
    """Not the process's own memory: the database (or Redis with SHOUHU_REDIS_URL)."""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], DatabaseCache | RedisCache)


@pytest.mark.django_db(transaction=True)
def test_two_server_processes_count_the_same_address_together(committed, monkeypatch):
    """Two "processes" (a thread each: a cache client and a database connection of its own) count
    hits of one address; a third sees the sum and refuses the sixth report of the hour."""
    import threading

    from django.test import RequestFactory

    noon = (int(time.time()) // 86400) * 86400 + 43200 + 1800
    monkeypatch.setattr(public, "_window_clock", lambda: noon)
    for n in (3, 2):
        thread = threading.Thread(target=_hits, args=("10.1.2.3", n))
        thread.start()
        thread.join(30)
    request = RequestFactory().post("/report/", REMOTE_ADDR="10.1.2.3")
    assert public.over_limit(request, "report", public.REPORT_LIMITS)
    assert not public.over_limit(
        RequestFactory().post("/report/", REMOTE_ADDR="10.1.2.4"), "report", public.REPORT_LIMITS
    )


@pytest.mark.skipif(
    _on_sqlite(),
    reason="SQLite lets one writer in at a time (and the test database is in memory, "
    "one per process); these run on PostgreSQL (SHOUHU_DATABASE_URL)",
)
@pytest.mark.django_db(transaction=True)
def test_hits_at_the_same_moment_from_two_processes_are_all_counted(committed, monkeypatch):
    """The increments are atomic: two forked server processes hitting the same key at once lose
    none (Django's own DatabaseCache.incr, a read then a write, would)."""
    import multiprocessing

    from django.db import connections

    noon = (int(time.time()) // 86400) * 86400 + 43200 + 1800
    monkeypatch.setattr(public, "_window_clock", lambda: noon)
    key, _count, window = public._bucket_keys("attempt", "k", public.ATTEMPT_LIMITS)[0]
    cache.add(key, 0, timeout=window)
    connections.close_all()  # the children open their own connections
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)

    def count(n: int) -> None:
        from django.core.cache import caches

        start.wait(10)
        for _i in range(n):
            caches["default"].incr(key)
        connections.close_all()

    children = [context.Process(target=count, args=(25,)) for _i in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0]
    assert cache.get(key) == 50
