"""The indexes of the tables a survey import fills, held to what their queries use.

Every index costs each row written: an import of 100,000 children writes about 1.5 million rows
into these tables, and the database checks every foreign key of each. The history tables are
read by record only (`registry.history`, the undo's `_edited_since`), the audit log by action,
object id, actor and time, always by equality or range, never with LIKE. An index added here
should come with the query that needs it.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the index definitions are PostgreSQL's"),
]

# table -> the indexed columns (with a non-default operator class where there is one)
EXPECTED = {
    "audit_auditevent": {"seq", "action", "object_id", "actor_id", "at", "hash"},
    "registry_historicalchild": {"history_id", "id", "history_user_id"},
    "registry_historicalhousehold": {"history_id", "id", "history_user_id"},
    "registry_historicalfamilymember": {"history_id", "id", "child_id", "history_user_id"},
    "registry_historicalparentsituation": {"history_id", "id", "member_id", "history_user_id"},
    "registry_historicalentrustment": {"history_id", "id", "child_id", "history_user_id"},
    "registry_familymember": {"id", "child_id", "id_number_index"},
    # The ledger list's and search's (registry.selectors, bench/ledger.py; scopes are LIKE on the
    # region code, searches LIKE on the pinyin keys), the foreign keys', and the ID number's.
    "registry_child": {
        "id",
        "id_number_index",
        "status",
        "birth_date",
        "household_id",
        "registered_by_id",
        "region_id",
        "region_id varchar_pattern_ops",
        "name_pinyin",
        "name_pinyin varchar_pattern_ops",
        "name_initials",
        "name_initials varchar_pattern_ops",
        "region_id varchar_pattern_ops, status, school_stage, birth_date, gender, health, guardianship_type, "
        "name_pinyin, name_initials, id",
        "name_pinyin, id, region_id, status, school_stage, birth_date, gender, health, guardianship_type, "
        "name_initials",
    },
    "intake_surveyimportitem": {"id", "survey_import_id, child_id", 'survey_import_id, "row"', "child_id"},
}


def _indexed(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s", [table]
        )
        definitions = [row[0] for row in cursor.fetchall()]
    return {re.search(r"\((.*)\)$", d).group(1) for d in definitions}  # type: ignore[union-attr]


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_a_written_table_has_only_the_indexes_its_queries_use(table):
    assert _indexed(table) == EXPECTED[table]


def test_the_audit_hash_stays_unique():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent' AND indexdef LIKE %s",
            ["%UNIQUE%(hash)"],
        )
        assert cursor.fetchall()


HISTORY_TABLES = sorted(t for t in EXPECTED if "_historical" in t) + [
    "policy_historicalchildcategory",
    "policy_historicalchildentitlement",
]


@pytest.mark.parametrize("table", HISTORY_TABLES)
def test_a_history_row_is_checked_against_no_other_table(table):
    # Its user, like an audit event's, is named by id (lib.history.ShouhuHistoricalRecords).
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [table])
        assert cursor.fetchall() == []
