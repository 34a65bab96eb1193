"""A ledger list too long for a web request: the worker writes it, its requester downloads it
(until it expires), and both the writing and each download are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import AuditEvent
from shouhu.intake import exports
from shouhu.intake.models import ExportState, LedgerExport
from shouhu.intake.tests.test_export import LEDGER, _client, _rows, _workbook
from shouhu.registry.selectors import LedgerFilters, children_visible_to


@pytest.fixture(autouse=True)
def long_lists(settings):  # noqa: ANN001, ANN201
    settings.SHOUHU_EXPORT_SYNC_MAX_ROWS = 1  # every list of two children or more is "long"


def test_a_long_list_is_written_by_the_worker_and_downloaded(db, users):
    town = users["district"]
    client = _client(town)
    before = AuditEvent.objects.filter(action="export").count()
    response = client.get(LEDGER, {"status": "active", "school_stage": "primary"})
    export = LedgerExport.objects.get(requested_by=town)
    assert response.status_code == 302 and response["Location"] == reverse("intake:export_status", args=[export.pk])
    assert export.state == ExportState.DONE  # huey runs at once in tests
    expected = children_visible_to(town).filter(status="active", school_stage="primary").count()
    assert expected > 1 and export.rows == export.expected_rows == expected
    assert export.get_params()["filters"]["school_stage"] == "primary"

    page = client.get(response["Location"]).content.decode()
    assert 'id="export-download"' in page and f"{expected} 名儿童" in page
    download = client.get(reverse("intake:export_download", args=[export.pk]))
    assert download["Cache-Control"] == "no-store" and "attachment" in download["Content-Disposition"]
    rows = _rows(_workbook(download))
    assert len(rows) == expected
    vias = list(AuditEvent.objects.filter(action="export").order_by("seq").values_list("detail__via", flat=True))
    assert vias[-2:] == ["background", "download"] and len(vias) == before + 2


def test_only_the_requester_sees_or_downloads_it(db, users):
    _client(users["district"]).get(LEDGER)
    export = LedgerExport.objects.get(requested_by=users["district"])
    other = _client(users["town_hutang"])  # sees a ledger too
    assert other.get(reverse("intake:export_status", args=[export.pk])).status_code == 404
    assert other.get(reverse("intake:export_download", args=[export.pk])).status_code == 404
    assert other.post(reverse("intake:export_retry", args=[export.pk])).status_code == 404


def test_an_expired_export_is_gone(db, users):
    town = users["district"]
    client = _client(town)
    client.get(LEDGER)
    export = LedgerExport.objects.get(requested_by=town)
    LedgerExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("intake:export_download", args=[export.pk])).status_code == 404
    assert "已过下载期限" in client.get(reverse("intake:export_status", args=[export.pk])).content.decode()
    client.get(LEDGER)  # the next request deletes expired files, anyone's
    assert not LedgerExport.objects.filter(pk=export.pk).exists()


def test_a_failed_or_interrupted_export_is_written_again(db, users, monkeypatch):
    town = users["district"]
    client = _client(town)
    build = exports.build_export
    monkeypatch.setattr(exports, "build_export", lambda export_id: None)  # queued, no worker takes it
    client.get(LEDGER)
    export = LedgerExport.objects.get(requested_by=town)
    assert export.state == ExportState.QUEUED
    status = reverse("intake:export_status", args=[export.pk])
    assert "正在后台生成" in client.get(status).content.decode()
    poll = client.get(status, headers={"HX-Request": "true"})
    assert poll.status_code == 204 and "HX-Refresh" not in poll  # still writing: the page stays
    LedgerExport.objects.filter(pk=export.pk).update(created_at=timezone.now() - exports.STALE - timedelta(minutes=1))
    assert "后台生成中断" in client.get(status).content.decode()
    monkeypatch.setattr(exports, "build_export", build)
    client.post(reverse("intake:export_retry", args=[export.pk]))
    export.refresh_from_db()
    assert export.state == ExportState.DONE and export.rows > 1
    assert client.get(status, headers={"HX-Request": "true"})["HX-Refresh"] == "true"  # written: reload
    # Done: nothing to retry.
    assert client.post(reverse("intake:export_retry", args=[export.pk]), follow=True).status_code == 200
    export.refresh_from_db()
    assert export.state == ExportState.DONE


def test_a_short_list_is_still_written_within_the_request(db, users, settings):
    settings.SHOUHU_EXPORT_SYNC_MAX_ROWS = 100000
    response = _client(users["district"]).get(LEDGER)
    assert response.status_code == 200 and not LedgerExport.objects.exists()


def test_a_requester_moved_elsewhere_cannot_take_the_file_away(db, users):
    """The file holds what its requester saw when it was written: after a supervisor is moved to
    another town, the file of their old town's children is refused (and the refusal audited)."""
    from shouhu.org.models import Region

    town = users["town_niutang"]
    client = _client(town)
    client.get(LEDGER)
    export = LedgerExport.objects.get(requested_by=town)
    download = reverse("intake:export_download", args=[export.pk])
    status = reverse("intake:export_status", args=[export.pk])
    assert export.get_params()["written_under"]["prefixes"] == ["320412102"]
    assert client.get(download).status_code == 200  # still theirs

    town.organization.regions.set([Region.objects.get(code="320412100000")])  # now 湖塘镇's supervisor
    denied = AuditEvent.objects.filter(action="denied").count()
    response = client.get(download)
    assert response.status_code == 302 and response["Location"] == status
    assert AuditEvent.objects.filter(action="denied").count() == denied + 1
    page = client.get(status).content.decode()
    assert 'id="export-not-permitted"' in page and 'id="export-download"' not in page


def test_a_file_with_identifiers_in_full_needs_the_right_to_unmask_still(db, users):
    import dataclasses

    from shouhu.org.access import Cap, scope_for

    district = users["district"]
    _client(district).get(LEDGER, {"unmasked": "1"})
    export = LedgerExport.objects.get(requested_by=district)
    assert export.get_params()["written_under"]["unmask"] is True
    assert exports.still_permitted(export, district)
    scope = scope_for(district)
    district._scope_cache = dataclasses.replace(scope, caps=scope.caps - {Cap.UNMASK})
    assert not exports.still_permitted(export, district)
    # A masked file of the same list needs no such right.
    LedgerExport.objects.filter(pk=export.pk).update(params="")
    assert not exports.still_permitted(LedgerExport.objects.get(pk=export.pk), district)  # nothing recorded
    district._scope_cache = scope
    exports.start_export(actor=district, filters=LedgerFilters(), query="", unmasked=False, expected_rows=2)
    masked = LedgerExport.objects.filter(requested_by=district).latest("pk")
    district._scope_cache = dataclasses.replace(scope, caps=scope.caps - {Cap.UNMASK})
    assert masked.get_params()["written_under"]["unmask"] is False and exports.still_permitted(masked, district)
