"""Entrusted care (委托照护, 未成年人保护法 art. 22-23): the form's rules, renewal, the agreement's
scan (private, access-checked, audited), and the list of left-behind children without a valid
agreement (`children_needing_entrustment`)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.registry import services
from shouhu.registry.forms import SCAN_MAX_BYTES, EntrustmentForm
from shouhu.registry.models import ELIGIBILITY_FIELDS, Child, Entrustment, EntrustmentScan
from shouhu.registry.selectors import (
    AgreementFact,
    EntrustmentFacts,
    ParentSituationFact,
    children_needing_entrustment,
    entrustment_findings,
)

TODAY = date(2026, 3, 10)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ELIGIBLE = {
    "full_capacity": "True",
    "able_to_care": "True",
    "bar_record": "False",
    "bar_addiction": "False",
    "bar_neglect": "False",
    "bar_unsuitable": "False",
}
ELIGIBLE_VALUES = {
    "full_capacity": True,
    "able_to_care": True,
    "bar_record": False,
    "bar_addiction": False,
    "bar_neglect": False,
    "bar_unsuitable": False,
}
BASE = {"carer_name": "张奶奶", "carer_relation": "grandmother_p", "carer_birth_date": "1958-01-01"}


def _form(data: dict, files: dict | None = None, **kwargs) -> EntrustmentForm:  # noqa: ANN003
    return EntrustmentForm({**BASE, **data}, files, **kwargs)


# ----- the form ------------------------------------------------------------------------------------


def test_a_carer_under_18_is_refused(db):
    young = (timezone.localdate() - timedelta(days=17 * 366)).isoformat()
    form = _form({"carer_birth_date": young})
    assert not form.is_valid()
    assert "年满18周岁" in form.errors["carer_birth_date"][0]


@pytest.mark.parametrize("name", ["bar_record", "bar_addiction", "bar_neglect", "bar_unsuitable"])
def test_a_bar_answered_yes_refuses_the_carer(db, name):
    form = _form({**ELIGIBLE, name: "True"})
    assert not form.is_valid()
    assert form.errors[name] == ["有此情形者不得担任受委托人（未成年人保护法第二十二条），请另行确定受委托人。"]


@pytest.mark.parametrize("name", ["full_capacity", "able_to_care"])
def test_a_carer_without_capacity_is_refused(db, name):
    form = _form({**ELIGIBLE, name: "False"})
    assert not form.is_valid()
    assert "不具备此条件者不能担任受委托人" in form.errors[name][0]


def test_eligibility_is_answered_all_together_and_dated(db):
    partial = _form({"full_capacity": "True"})
    assert not partial.is_valid()
    assert set(partial.errors) == set(ELIGIBILITY_FIELDS) - {"full_capacity"}
    complete = _form(ELIGIBLE)
    assert complete.is_valid(), complete.errors
    assert complete.cleaned_data["eligibility_checked_on"] == timezone.localdate()
    assert complete.cleaned_data["bar_record"] is False
    none = _form({})
    assert none.is_valid(), none.errors
    assert all(none.cleaned_data[name] is None for name in ELIGIBILITY_FIELDS)


def test_a_written_notice_date_is_the_notice(db):
    form = _form({"village_informed_on": "2026-01-05"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["village_informed"] is True and form.cleaned_data["school_informed"] is False
    future = _form({"school_informed_on": (timezone.localdate() + timedelta(days=1)).isoformat()})
    assert not future.is_valid() and "school_informed_on" in future.errors


@pytest.mark.parametrize(
    ("content", "ok"),
    [
        (PDF, True),
        (PNG, True),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, True),
        (b"MZ\x90\x00 not a scan", False),
        (b"<html><script>alert(1)</script>", False),
        (b"GIF89a....", False),
    ],
)
def test_scan_type_is_read_from_the_content(db, content, ok):
    # The name and the declared type are the sender's to choose: only the bytes count.
    upload = SimpleUploadedFile("scan.pdf", content, content_type="application/pdf")
    form = _form({"agreement_signed": "on", "agreement_date": "2026-01-05"}, {"agreement_scan": upload})
    assert form.is_valid() is ok, form.errors
    if not ok:
        assert form.errors["agreement_scan"] == ["扫描件须为 PDF、JPG 或 PNG 文件。"]


def test_scan_size_is_limited(db):
    big = SimpleUploadedFile("scan.pdf", PDF + b"0" * SCAN_MAX_BYTES, content_type="application/pdf")
    form = _form({"agreement_signed": "on", "agreement_date": "2026-01-05"}, {"agreement_scan": big})
    assert not form.is_valid()
    assert "不能超过5MB" in form.errors["agreement_scan"][0]


def test_a_scan_needs_a_signed_agreement(db):
    upload = SimpleUploadedFile("scan.pdf", PDF, content_type="application/pdf")
    form = _form({}, {"agreement_scan": upload})
    assert not form.is_valid() and "agreement_signed" in form.errors


def test_a_signed_agreement_keeps_its_carer(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    ent = services.entrustment_save(
        actor=users["district"],
        child=child,
        entrustment=None,
        version=None,
        data={
            "carer_name": "张奶奶",
            "carer_relation": "grandmother_p",
            "agreement_signed": True,
            "agreement_date": date(2025, 1, 1),
        },
    )
    form = EntrustmentForm(
        {
            "carer_name": "王阿姨",
            "carer_relation": "other",
            "version": "1",
            "agreement_signed": "on",
            "agreement_date": "2025-01-01",
        },
        instance=ent,
    )
    assert not form.is_valid()
    assert "新的委托" in form.errors["carer_name"][0]
    same = EntrustmentForm(
        {
            "carer_name": "张奶奶",
            "carer_relation": "grandmother_p",
            "version": "1",
            "agreement_signed": "on",
            "agreement_date": "2025-01-01",
            "carer_phone": "13711112222",
        },
        instance=ent,
    )
    assert same.is_valid(), same.errors


def test_the_import_rebinds_the_form_without_the_new_questions(db):
    form = EntrustmentForm()
    form.in_bulk = True
    for name in ("张奶奶", "李爷爷"):
        form.rebind(
            {
                "carer_name": name,
                "carer_relation": "grandmother_p",
                "agreement_signed": False,
                "village_informed": False,
                "school_informed": False,
            },
            instance=None,
        )
        assert form.is_valid(), form.errors
        assert form.cleaned_data["agreement_scan"] is None and form.cleaned_data["full_capacity"] is None


# ----- services ---------------------------------------------------------------------------------------


def test_eligibility_records_who_checked(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    actor = users["village_hutang"]
    ent = services.entrustment_save(
        actor=actor,
        child=child,
        entrustment=None,
        version=None,
        data={
            **BASE,
            "carer_birth_date": date(1958, 1, 1),
            **ELIGIBLE_VALUES,
            "eligibility_checked_on": date(2026, 1, 2),
        },
    )
    ent.refresh_from_db()
    assert ent.eligibility_checked and ent.eligibility_checked_by == actor
    assert ent.eligibility_checked_on == date(2026, 1, 2) and ent.eligibility_problems() == []


def test_renewal_ends_the_old_agreement_the_day_before(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    actor = users["village_hutang"]
    old = services.entrustment_save(
        actor=actor, child=child, entrustment=None, version=None, data={**BASE, "since": date(2024, 1, 1)}
    )
    before = AuditEvent.objects.count()
    new = services.entrustment_renew(
        actor=actor,
        child=child,
        previous=old,
        version=1,
        data={"carer_name": "李爷爷", "carer_relation": "grandfather_m", "since": date(2026, 2, 1)},
    )
    old.refresh_from_db()
    assert (old.until, old.version) == (date(2026, 1, 31), 2)
    assert (new.carer_name, new.since, new.until) == ("李爷爷", date(2026, 2, 1), None)
    events = list(AuditEvent.objects.order_by("seq"))[before:]
    assert len(events) == 1
    assert events[0].detail["entrustment_renewed"]["previous_until"] == "2026-01-31"
    with pytest.raises(services.StaleEdit):
        services.entrustment_renew(
            actor=actor, child=child, previous=old, version=1, data={**BASE, "since": date(2026, 3, 1)}
        )


def test_renewal_must_start_after_the_old_one(db, users, hutang_village, make_child):
    from django.core.exceptions import ValidationError

    child = make_child(hutang_village)
    old = services.entrustment_save(
        actor=users["district"], child=child, entrustment=None, version=None, data={**BASE, "since": date(2025, 5, 1)}
    )
    with pytest.raises(ValidationError):
        services.entrustment_renew(
            actor=users["district"], child=child, previous=old, version=1, data={**BASE, "since": date(2025, 5, 1)}
        )
    old.refresh_from_db()
    assert old.until is None and Entrustment.objects.filter(child=child).count() == 1


def test_the_scan_is_stored_encrypted_and_replaced(db, users, hutang_village, make_child):
    child = make_child(hutang_village)
    actor = users["village_hutang"]
    ent = services.entrustment_save(
        actor=actor,
        child=child,
        entrustment=None,
        version=None,
        data={
            **BASE,
            "agreement_signed": True,
            "agreement_date": date(2025, 1, 1),
            "agreement_scan": (PDF, "application/pdf"),
        },
    )
    scan = EntrustmentScan.objects.get(entrustment=ent)
    assert scan.file_bytes() == PDF and scan.size == len(PDF) and scan.uploaded_by == actor
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM registry_entrustmentscan WHERE id = %s", [scan.pk])
        raw = cursor.fetchone()[0]
    assert "JVBERi" not in raw and "%PDF" not in raw  # neither the bytes nor their base64
    services.entrustment_save(
        actor=actor, child=child, entrustment=ent, version=1, data={"agreement_scan": (PNG, "image/png")}
    )
    scan = EntrustmentScan.objects.get(entrustment=ent)
    assert (scan.content_type, scan.file_bytes()) == ("image/png", PNG)
    last = AuditEvent.objects.order_by("-seq").first()
    assert last.detail == {"entrustment": {"agreement_scan": ["replaced", "image/png"]}}


# ----- the findings (pure) ----------------------------------------------------------------------------


def _agreement(**kw) -> AgreementFact:  # noqa: ANN003
    values = {
        "since": date(2025, 1, 1),
        "agreement_signed": True,
        "agreement_date": date(2025, 1, 1),
        "carer_birth_date": date(1960, 1, 1),
        "village_informed": True,
        "school_informed": True,
        "eligibility": tuple(ELIGIBLE_VALUES.items()),
        "pk": 1,
        **kw,
    }
    return AgreementFact(**values)


BOTH_OUT = (
    ParentSituationFact("father", "out_for_work", date(2024, 6, 1)),
    ParentSituationFact("mother", "out_for_work", date(2024, 6, 1)),
)


def _codes(*agreements: AgreementFact, situations=BOTH_OUT, stage: str = "primary", today: date = TODAY):  # noqa: ANN001, ANN202
    facts = EntrustmentFacts(today=today, school_stage=stage, agreements=agreements, situations=situations)
    return [code for code, _message in entrustment_findings(facts)]


def test_a_complete_agreement_has_no_findings():
    assert _codes(_agreement()) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"agreement_signed": False, "agreement_date": None}, "not_signed"),
        ({"carer_birth_date": date(2008, 3, 10)}, "carer_minor"),  # 18th birthday today: still under 18
        ({"eligibility": tuple({**ELIGIBLE_VALUES, "bar_addiction": True}.items())}, "carer_barred"),
        ({"eligibility": tuple({**ELIGIBLE_VALUES, "full_capacity": False}.items())}, "carer_barred"),
        ({"eligibility": tuple((name, None) for name in ELIGIBLE_VALUES)}, "eligibility_unchecked"),
        ({"village_informed": False}, "village_not_told"),
        ({"school_informed": False}, "school_not_told"),
    ],
)
def test_each_gap_is_a_finding(change, code):
    assert _codes(_agreement(**change)) == [code]


def test_a_carer_who_turned_18_yesterday_is_an_adult():
    assert _codes(_agreement(carer_birth_date=date(2008, 3, 9))) == []


def test_a_child_without_school_needs_no_notice_to_a_school():
    assert _codes(_agreement(school_informed=False), stage="not_enrolled") == []
    assert _codes(_agreement(school_informed=False), stage="kindergarten") == ["school_not_told"]


def test_no_agreement_or_only_an_ended_one():
    assert _codes() == ["no_entrustment"]
    assert _codes(_agreement(until=date(2026, 3, 9))) == ["entrustment_ended"]
    assert _codes(_agreement(until=date(2026, 3, 10))) == []  # the last day still counts
    assert _codes(_agreement(since=date(2026, 3, 11))) == ["no_entrustment"]  # not started yet


def test_the_latest_current_agreement_counts():
    old = _agreement(pk=1, since=date(2024, 1, 1), village_informed=False)
    new = _agreement(pk=2, since=date(2025, 6, 1))
    assert _codes(old, new) == []


def test_renewal_when_a_parent_comes_home_or_leaves_after_signing():
    returned = (
        ParentSituationFact("father", "out_for_work", date(2024, 6, 1), date(2026, 2, 1)),
        ParentSituationFact("mother", "out_for_work", date(2024, 6, 1)),
    )
    assert _codes(_agreement(), situations=returned) == ["renewal_parent_returned"]
    returned_before = (ParentSituationFact("father", "out_for_work", date(2023, 6, 1), date(2024, 12, 31)), *BOTH_OUT)
    assert _codes(_agreement(), situations=returned_before) == []  # before the agreement: no change since
    left = (
        ParentSituationFact("father", "out_for_work", date(2024, 6, 1)),
        ParentSituationFact("mother", "out_for_work", date(2025, 9, 1)),
    )
    facts = EntrustmentFacts(today=TODAY, school_stage="primary", agreements=(_agreement(),), situations=left)
    findings = entrustment_findings(facts)
    assert [code for code, _ in findings] == ["renewal_parent_left"]
    assert "母亲于 2025-09-01 外出务工" in findings[0][1]


# ----- the selector -------------------------------------------------------------------------------------


def _left_behind(make_child, region, *, mother: str = "out_for_work", birth: date = date(2015, 3, 8), **extra) -> Child:  # noqa: ANN001
    from shouhu.registry.models import FamilyMember, ParentSituation

    child = make_child(region, birth=birth, **extra)
    for relation, kind in (("father", "out_for_work"), ("mother", mother)):
        member = FamilyMember.objects.create(child=child, relation=relation, name="家长")
        if kind:
            ParentSituation.objects.create(member=member, kind=kind, since=date(2024, 6, 1))
    return child


def _valid(child: Child, **extra) -> Entrustment:  # noqa: ANN003
    values = {
        "carer_name": "张奶奶",
        "carer_relation": "grandmother_p",
        "carer_birth_date": date(1958, 1, 1),
        "since": date(2025, 1, 1),
        "agreement_signed": True,
        "agreement_date": date(2025, 1, 1),
        "village_informed": True,
        "village_informed_on": date(2025, 1, 2),
        "school_informed": True,
        **ELIGIBLE_VALUES,
        "eligibility_checked_on": date(2025, 1, 1),
        **extra,
    }
    return Entrustment.objects.create(child=child, **values)


def _needing(*children: Child, today: date = TODAY) -> dict:
    qs = Child.objects.filter(pk__in=[c.pk for c in children])
    return {need.child.pk: [code for code, _ in need.findings] for need in children_needing_entrustment(qs, today)}


def test_selector_lists_left_behind_children_without_a_valid_agreement(db, hutang_village, make_child):
    none = _left_behind(make_child, hutang_village, name="甲一")
    valid = _left_behind(make_child, hutang_village, name="乙二")
    _valid(valid)
    minor = _left_behind(make_child, hutang_village, name="丙三")
    _valid(minor, carer_birth_date=date(2010, 1, 1))
    barred = _left_behind(make_child, hutang_village, name="丁四")
    _valid(barred, bar_record=True)
    unchecked = _left_behind(make_child, hutang_village, name="戊五")
    _valid(unchecked, **{name: None for name in ELIGIBLE_VALUES}, eligibility_checked_on=None)
    untold = _left_behind(make_child, hutang_village, name="己六")
    _valid(untold, school_informed=False)
    unsigned = _left_behind(make_child, hutang_village, name="庚七")
    _valid(unsigned, agreement_signed=False, agreement_date=None)
    assert _needing(none, valid, minor, barred, unchecked, untold, unsigned) == {
        none.pk: ["no_entrustment"],
        minor.pk: ["carer_minor"],
        barred.pk: ["carer_barred"],
        unchecked.pk: ["eligibility_unchecked"],
        untold.pk: ["school_not_told"],
        unsigned.pk: ["not_signed"],
    }


def test_selector_reads_left_behind_from_the_facts(db, hutang_village, make_child):
    other_incapable = _left_behind(make_child, hutang_village, mother="severe_disability", name="甲一")
    other_home = _left_behind(make_child, hutang_village, mother="", name="乙二")
    urban = _left_behind(make_child, hutang_village, hukou_type="urban", name="丙三")
    with_parents = _left_behind(make_child, hutang_village, lives_with_parents=True, name="丁四")
    # 16th birthday today: still under 16 (policy.md §1); a day older: no longer left-behind.
    sixteen_today = _left_behind(make_child, hutang_village, birth=date(2010, 3, 10), name="戊五")
    sixteen = _left_behind(make_child, hutang_village, birth=date(2010, 3, 9), name="己六")
    assert set(_needing(other_incapable, other_home, urban, with_parents, sixteen_today, sixteen)) == {
        other_incapable.pk,
        sixteen_today.pk,
    }


def test_selector_follows_a_confirmed_category(db, users, hutang_village, make_child):
    from shouhu.policy.models import ChildCategory

    confirmed = make_child(hutang_village, name="甲一")  # no facts in the registry, but confirmed
    ChildCategory.objects.create(
        child=confirmed,
        code="left_behind",
        explanation="人工认定",
        valid_from=date(2025, 1, 1),
        confirmed_by=users["district"],
    )
    ended = _left_behind(make_child, hutang_village, name="乙二")  # facts say yes; a person ended it
    ChildCategory.objects.create(
        child=ended,
        code="left_behind",
        explanation="人工认定",
        valid_from=date(2024, 1, 1),
        valid_to=date(2025, 12, 31),
        ended_reason="随父母生活",
        confirmed_by=users["district"],
    )
    exited = _left_behind(make_child, hutang_village, name="丙三")
    Child.objects.filter(pk=exited.pk).update(status="exited", exit_date=date(2026, 1, 1), exit_reason="moved_away")
    assert _needing(confirmed, ended, exited) == {confirmed.pk: ["no_entrustment"]}


def test_selector_asks_a_fixed_number_of_queries(db, hutang_village, make_child):
    children = [_left_behind(make_child, hutang_village, name=f"张{n}明") for n in "一二三四"]
    for child in children[:2]:
        _valid(child, village_informed=False, village_informed_on=None)
    qs = Child.objects.filter(pk__in=[c.pk for c in children])
    with CaptureQueriesContext(connection) as queries:
        needs = children_needing_entrustment(qs, TODAY)
    assert len(needs) == 4 and len(queries) == 4
    assert needs[0].reason  # the Chinese reasons, joined


# ----- the pages -----------------------------------------------------------------------------------------


@pytest.fixture
def director(client, users):  # noqa: ANN001
    client.force_login(users["village_hutang"])
    return users["village_hutang"]


def _post_data(**extra) -> dict:  # noqa: ANN003
    return {
        **BASE,
        "since": "2025-01-01",
        "agreement_signed": "on",
        "agreement_date": "2025-01-01",
        "village_informed_on": "2025-01-03",
        **ELIGIBLE,
        **extra,
    }


def test_the_edit_page_shows_the_checklist(client, director, hutang_village, make_child):
    child = make_child(hutang_village)
    response = client.get(reverse("registry:entrustment_create", args=[child.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in body and "受委托人资格核查" in body
    assert body.count('type="radio"') == 12 and 'name="agreement_scan"' in body


def test_upload_then_download_is_audited(client, director, users, hutang_village, make_child):
    child = make_child(hutang_village)
    upload = SimpleUploadedFile("协议.pdf", PDF, content_type="application/pdf")
    response = client.post(
        reverse("registry:entrustment_create", args=[child.pk]), {**_post_data(), "agreement_scan": upload}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ent = child.entrustments.get()
    assert (ent.eligibility_checked_by, ent.village_informed) == (director, True)
    url = reverse("registry:entrustment_scan", args=[child.pk, ent.pk])
    before = AuditEvent.objects.filter(action="export", object_id=str(child.pk)).count()
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200 and response.content == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff" and "no-store" in response["Cache-Control"]
    events = AuditEvent.objects.filter(action="export", object_id=str(child.pk)).order_by("seq")
    assert events.count() == before + 2
    assert events.last().detail == {"entrustment_scan": ent.pk, "content_type": "application/pdf"}
    assert (
        "确认书扫描件" in client.get(reverse("registry:child_detail", args=[child.pk]) + "?tab=family").content.decode()
    )


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("village_niutang", 404),  # another village
        ("town_niutang", 404),  # another town
        ("police_hutang", 403),  # the child is shared with the station, but it may not unmask
        ("school_hutang", 403),
    ],
)
def test_outsiders_cannot_download_the_scan(client, users, hutang_village, make_child, username, status):
    child = make_child(hutang_village)
    ent = services.entrustment_save(
        actor=users["district"],
        child=child,
        entrustment=None,
        version=None,
        data={
            **BASE,
            "carer_birth_date": None,
            "agreement_signed": True,
            "agreement_date": date(2025, 1, 1),
            "agreement_scan": (PDF, "application/pdf"),
        },
    )
    client.force_login(users[username])
    before = AuditEvent.objects.filter(action="export").count()
    response = client.get(reverse("registry:entrustment_scan", args=[child.pk, ent.pk]))
    assert response.status_code == status
    assert PDF not in response.content
    assert AuditEvent.objects.filter(action="export").count() == before
    if status == 404:
        assert AuditEvent.objects.filter(action="denied", actor_id=users[username].pk).exists()


def test_a_scan_of_another_childs_agreement_is_not_found(client, director, users, hutang_village, make_child):
    mine, other = make_child(hutang_village, name="甲一"), make_child(hutang_village, name="乙二")
    ent = services.entrustment_save(
        actor=users["district"],
        child=other,
        entrustment=None,
        version=None,
        data={
            **BASE,
            "carer_birth_date": None,
            "agreement_signed": True,
            "agreement_date": date(2025, 1, 1),
            "agreement_scan": (PDF, "application/pdf"),
        },
    )
    assert client.get(reverse("registry:entrustment_scan", args=[mine.pk, ent.pk])).status_code == 404


def test_renewal_through_the_page(client, director, users, hutang_village, make_child):
    child = make_child(hutang_village)
    old = services.entrustment_save(
        actor=director,
        child=child,
        entrustment=None,
        version=None,
        data={**BASE, "carer_birth_date": date(1958, 1, 1), "since": date(2024, 1, 1)},
    )
    url = reverse("registry:entrustment_renew", args=[child.pk, old.pk])
    page = client.get(url)
    assert page.status_code == 200 and "张奶奶" in page.content.decode()
    detail = client.get(reverse("registry:child_detail", args=[child.pk]) + "?tab=family").content.decode()
    assert url in detail and "新的委托" in detail
    response = client.post(
        url,
        _post_data(carer_name="李爷爷", carer_relation="grandfather_m", since="2026-01-01", version=str(old.version)),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    old.refresh_from_db()
    assert old.until == date(2025, 12, 31)
    assert child.entrustments.get(until__isnull=True).carer_name == "李爷爷"
    missing_since = client.post(url, _post_data(since="", version=str(old.version)))
    assert missing_since.status_code == 400
