"""The audit log: append-only in the database, hash-chained, and `manage.py verify_audit` finds tampering."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shouhu.audit.models import Action, AuditEvent, ChainHead
from shouhu.audit.services import GENESIS, chain_held, compute_hash, record, record_many, verify_chain


@pytest.fixture
def verify_audit(monkeypatch):  # noqa: ANN001, ANN201
    """Run `manage.py verify_audit` the way the shell does; return (exit code, stdout, stderr)."""
    from django.core.management import base

    from shouhu.audit.management.commands.verify_audit import Command

    # run_from_argv turns a CommandError into sys.exit(1); it also closes every connection at the
    # end, which would end the test's transaction: keep the connection open here.
    monkeypatch.setattr(base.connections, "close_all", lambda: None)

    def run() -> tuple[int, str, str]:
        out, err = StringIO(), StringIO()
        try:
            Command(stdout=out, stderr=err).run_from_argv(["manage.py", "verify_audit"])
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
        return 0, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def events(db, users):  # noqa: ANN001
    """Ten fresh events at the end of the chain."""
    return [
        record(
            actor=users["district"],
            action=Action.VIEW,
            object_type="child",
            object_id=f"test-{i}",
            detail={"i": i, "名": "测试"},
        )
        for i in range(10)
    ]


def tamper_allowed() -> None:
    """What a database superuser could do: switch the append-only trigger off (rolled back with the test)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        elif connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_auditevent_no_update")
            cursor.execute("DROP TRIGGER audit_auditevent_no_delete")


def raw_update(seq: int, **values: object) -> None:
    assignments = ", ".join(f"{name} = %s" for name in values)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE audit_auditevent SET {assignments} WHERE seq = %s", [*values.values(), seq])  # noqa: S608


def raw_delete(seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [seq])


# ----- the chain -------------------------------------------------------------------------------


def test_events_link_to_their_predecessor(events):
    for prev, event in zip(events, events[1:], strict=False):
        assert event.seq == prev.seq + 1
        assert event.prev_hash == prev.hash
        assert event.hash == compute_hash(prev.hash, event)
    head = ChainHead.objects.get(id=1)
    assert (head.last_seq, head.last_hash) == (events[-1].seq, events[-1].hash)
    first = AuditEvent.objects.order_by("seq").first()
    assert first.seq == 1 and first.prev_hash == GENESIS


def test_event_records_actor_organisation_and_ip(db, users, rf):
    request = rf.get("/", REMOTE_ADDR="10.1.2.3")
    event = record(
        actor=users["town_hutang"], action=Action.EXPORT, object_type="child", object_id="x", request=request
    )
    event.refresh_from_db()
    assert event.actor_id == users["town_hutang"].pk and event.actor_name == "town_hutang"
    assert event.organization_id == users["town_hutang"].organization_id
    assert event.organization_name == users["town_hutang"].organization.name
    assert event.ip == "10.1.2.3"


def test_an_event_written_in_a_rolled_back_transaction_leaves_no_trace(events, users):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=users["district"], action=Action.UPDATE, object_type="child", object_id="rolled-back")
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == before
    assert verify_chain().ok


def test_verify_audit_prints_ok_with_the_count(events, verify_audit):
    code, out, err = verify_audit()
    assert code == 0, err
    assert out.strip() == f"ok {AuditEvent.objects.count()} events"
    assert verify_chain().count == AuditEvent.objects.count()


# ----- the database refuses changes -------------------------------------------------------------


def test_orm_update_is_refused_by_the_database(events):
    target = events[3]
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=target.seq).update(actor_name="someone-else")
    with pytest.raises(DatabaseError), transaction.atomic():
        target.object_label = "edited"
        target.save()
    assert AuditEvent.objects.get(seq=target.seq).actor_name == "district"


def test_orm_delete_is_refused_by_the_database(events):
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=events[2].seq).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        events[-1].delete()
    assert AuditEvent.objects.filter(seq__in=[events[2].seq, events[-1].seq]).count() == 2


def test_raw_sql_update_is_refused_by_the_database(events):
    with pytest.raises(DatabaseError), transaction.atomic():
        raw_update(events[0].seq, object_id="raw")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's")
def test_truncate_is_refused_on_postgresql(events):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")


# ----- a tampering superuser is found ----------------------------------------------------------


@pytest.mark.parametrize("where", ["middle", "tail"])
def test_an_edited_row_is_detected(events, verify_audit, where):
    target = events[4] if where == "middle" else events[-1]
    tamper_allowed()
    raw_update(target.seq, actor_name="nobody")
    code, out, err = verify_audit()
    assert code == 1
    assert f"broken at seq {target.seq}" in err and "edited" in err
    result = verify_chain()
    assert (result.ok, result.broken_seq) == (False, target.seq)


def test_an_edited_detail_is_detected(events):
    tamper_allowed()
    with connection.cursor() as cursor:
        detail = '{"i": 99, "名": "测试"}'
        cursor.execute("UPDATE audit_auditevent SET detail = %s WHERE seq = %s", [detail, events[5].seq])
    assert verify_chain().broken_seq == events[5].seq


def test_a_rehashed_row_is_detected_at_the_next_link(events):
    """A careful forger recomputes the edited row's own hash: the next row's prev_hash still disagrees."""
    tamper_allowed()
    target = AuditEvent.objects.get(seq=events[4].seq)
    target.actor_name = "nobody"
    new_hash = compute_hash(target.prev_hash, target)
    raw_update(target.seq, actor_name="nobody", hash=new_hash)
    result = verify_chain()
    assert (result.ok, result.broken_seq) == (False, events[5].seq)
    assert "prev_hash" in result.reason


@pytest.mark.parametrize("where", ["middle", "tail"])
def test_a_deleted_row_is_detected(events, verify_audit, where):
    target = events[4] if where == "middle" else events[-1]
    tamper_allowed()
    raw_delete(target.seq)
    code, out, err = verify_audit()
    assert code == 1
    assert f"broken at seq {target.seq}" in err and "deleted" in err
    assert verify_chain().broken_seq == target.seq


def test_verify_audit_via_call_command_raises_command_error(events):
    tamper_allowed()
    raw_delete(events[3].seq)
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", stdout=StringIO())
    assert excinfo.value.returncode == 1


def test_triggers_are_back_after_the_tampering_tests(events):
    """The tampering above ran inside each test's transaction: the triggers must be in place again."""
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=events[0].seq).update(actor_name="again")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=events[0].seq).delete()


# ----- the log page ------------------------------------------------------------------------


def test_audit_log_page_for_district_and_auditor_only(client, users, events):
    for username in ("district", "auditor"):
        client.force_login(users[username])
        response = client.get(reverse("audit:log"), {"action": "view", "object": "test-3"})
        assert response.status_code == 200
        assert "test-3" in response.content.decode()
    for username in ("village_hutang", "admin", "leader", "police"):
        client.force_login(users[username])
        assert client.get(reverse("audit:log")).status_code == 403


def test_a_held_chain_writes_its_head_once_and_still_verifies(events, users):
    before = ChainHead.objects.get(id=1)
    batch = [{"object_type": "child", "object_id": f"held-{i}", "object_label": "", "detail": None} for i in range(5)]
    with CaptureQueriesContext(connection) as queries, chain_held():
        record_many(actor=users["district"], action=Action.CREATE, events=batch)
        record_many(actor=users["district"], action=Action.CREATE, events=batch)
        assert ChainHead.objects.get(id=1).last_seq == before.last_seq  # not yet written back
    head_writes = [
        q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "audit_chainhead" in q["sql"]
    ]
    assert len(head_writes) == 1
    head = ChainHead.objects.get(id=1)
    assert (head.last_seq, head.count) == (before.last_seq + 10, before.count + 10)
    assert head.last_hash == AuditEvent.objects.get(seq=head.last_seq).hash
    assert verify_chain().ok


def test_a_held_chain_does_not_nest_and_an_exception_leaves_the_head(events, users):
    with chain_held(), pytest.raises(RuntimeError), chain_held():
        pass
    before = ChainHead.objects.get(id=1)
    batch = [{"object_type": "child", "object_id": "held", "object_label": "", "detail": None}]
    with pytest.raises(ValueError), transaction.atomic(), chain_held():
        record_many(actor=users["district"], action=Action.CREATE, events=batch)
        raise ValueError
    assert ChainHead.objects.get(id=1).last_seq == before.last_seq
    assert verify_chain().ok
