"""One search box: name, full pinyin, pinyin initials or a whole ID number — never in a URL."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from shouhu.audit.models import AuditEvent
from shouhu.registry.models import Child
from shouhu.registry.selectors import apply_search, children_visible_to, looks_like_id_number
from shouhu.registry.views import SEARCH_SLOTS


def search(client, q: str, **params) -> tuple[str, set[str]]:  # noqa: ANN001
    """POST the search box the way the ledger page does; follow the redirect; return (url, child ids)."""
    url = reverse("registry:search")
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    response = client.post(url, {"q": q})
    assert response.status_code == 302
    page = client.get(response.url)
    assert page.status_code == 200
    return response.url, set(re.findall(r'href="/children/([0-9a-f-]{36})/"', page.content.decode()))


@pytest.fixture
def xiaoming(db, hutang_village, make_child):  # noqa: ANN001
    return make_child(hutang_village, name="张小明")


@pytest.fixture
def director(client, users):  # noqa: ANN001
    client.force_login(users["village_hutang"])
    return users["village_hutang"]


def test_search_term_lives_in_the_session_not_in_the_url(client, director, xiaoming):
    url, ids = search(client, xiaoming.id_number)
    assert str(xiaoming.pk) in ids
    assert xiaoming.id_number not in url and xiaoming.id_number[:10] not in url
    token = parse_qs(urlsplit(url).query)["s"][0]
    assert client.session["ledger_search"][token] == xiaoming.id_number
    url, _ = search(client, "张小明")
    assert "张小明" not in url and "%E5%BC%A0" not in url


@pytest.mark.parametrize(
    "q", ["张小明", "张小", "小明", "zhangxiaoming", "ZhangXiaoming", "zhang xiao ming", "zxm", "ZXM", "zhangx"]
)
def test_search_by_name_pinyin_and_initials(client, director, xiaoming, q):
    _, ids = search(client, q)
    assert str(xiaoming.pk) in ids


def test_search_results_only_match_the_term(client, director, xiaoming):
    _, ids = search(client, "zxm")
    names = Child.objects.filter(pk__in=ids).values_list("name_initials", flat=True)
    assert ids and all(n.startswith("zxm") for n in names)


def test_search_by_full_id_number_in_any_form(client, director, hutang_village, make_child):
    birth = date(2014, 9, 9)
    from shouhu.lib.idnumber import make_id_number

    value = next(v for v in (make_id_number("320481", birth, s) for s in range(501, 999)) if v.endswith("X"))
    child = make_child(hutang_village, name="王小二", id_number=value)
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value.lower())
    for q in (value, value.lower(), full_width, f" {value[:6]} {value[6:]} "):
        _, ids = search(client, q)
        assert ids == {str(child.pk)}, q


def test_a_partial_id_number_finds_nothing(client, director, xiaoming):
    _, ids = search(client, xiaoming.id_number[:17])
    assert str(xiaoming.pk) not in ids


def test_search_is_scoped(client, users, niutang_village, make_child, xiaoming):
    other = make_child(niutang_village, name="张小明")
    client.force_login(users["village_hutang"])
    _, ids = search(client, "张小明")
    assert str(xiaoming.pk) in ids and str(other.pk) not in ids
    _, ids = search(client, other.id_number)
    assert ids == set()


def test_search_keeps_the_filters(client, director, users, xiaoming):
    from shouhu.registry import services

    services.child_exit(
        actor=users["district"], child=xiaoming, reason="other", exit_date=date(2025, 1, 1), note="", version=1
    )
    url, ids = search(client, "zxm", status="exited")
    assert "status=exited" in url
    assert str(xiaoming.pk) in ids
    _, ids = search(client, "zxm")
    assert str(xiaoming.pk) not in ids  # the default is 在册 only


def test_search_is_audited_without_the_term(client, director, xiaoming):
    search(client, xiaoming.id_number)
    search(client, "张小明")
    events = list(AuditEvent.objects.filter(action="search", actor_name="village_hutang").order_by("seq"))
    assert [e.detail["by"] for e in events[-2:]] == ["id_number", "name"]
    assert all(xiaoming.id_number not in str(e.detail) and "张小明" not in str(e.detail) for e in events)


def test_search_must_be_a_post(client, director):
    assert client.get(reverse("registry:search"), {"q": "张"}).status_code == 405


def test_empty_search_clears_and_unknown_token_lists_all(client, director, xiaoming):
    response = client.post(reverse("registry:search"), {"q": "   "})
    assert response.status_code == 302 and "s=" not in response.url
    page = client.get(reverse("registry:ledger"), {"s": "no-such-token", "region": xiaoming.region_id})
    assert str(xiaoming.pk) in page.content.decode()


def test_search_slots_are_bounded(client, director):
    for i in range(SEARCH_SLOTS + 5):
        client.post(reverse("registry:search"), {"q": f"张{i}"})
    assert len(client.session["ledger_search"]) == SEARCH_SLOTS


def test_the_term_is_shown_escaped(client, director):
    url, _ = search(client, "<script>x</script>")
    html = client.get(url).content.decode()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


# ----- the selector ------------------------------------------------------------------------


def test_looks_like_id_number():
    assert looks_like_id_number("32041220150308123X")
    assert looks_like_id_number("32041220150308123x")
    assert looks_like_id_number("320412150308123")  # an old 15-digit number is still an identifier
    assert not looks_like_id_number("张三") and not looks_like_id_number("zs") and not looks_like_id_number("3204")


def test_apply_search_by_selector(db, users, xiaoming):
    qs = children_visible_to(users["district"])
    assert xiaoming in apply_search(qs, "zxm")
    assert xiaoming in apply_search(qs, "zhangxiaoming")
    assert xiaoming in apply_search(qs, xiaoming.id_number)
    assert xiaoming in apply_search(qs, "")  # no term, no filter
    assert xiaoming not in apply_search(qs, "zxn")


def test_nul_in_a_term_or_a_filter_is_not_a_server_error(client, director):
    response = client.post(reverse("registry:search"), {"q": "张\x00三"})
    assert client.get(response.url).status_code == 200
    assert client.get(reverse("registry:ledger"), {"school_stage": "\x00", "health": "\x00"}).status_code == 200
