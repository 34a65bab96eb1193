"""A survey import's kept file: encrypted bytes in the database (crypto.encrypt_bytes through
EncryptedBinaryField), read back whole, refused when tampered with, converted from the old
base64-text column by migration 0004, and stored and read without copies of it piling up."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import os
import tracemalloc
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from shouhu.intake.models import ImportState, SurveyImport
from shouhu.lib import crypto

MARKER = b"SHOUHU-PLAINTEXT-MARKER-320481201501019999"
migration = importlib.import_module("shouhu.intake.migrations.0004_surveyimport_file")


def _file(size: int = 100_000) -> bytes:
    return os.urandom(size // 2) + MARKER + bytes(range(256)) + os.urandom(size // 2)


@pytest.fixture
def uploader(users):  # noqa: ANN001
    return users["village_hutang"]


def _import(uploader, data: bytes = b"") -> SurveyImport:  # noqa: ANN001
    imp = SurveyImport(
        filename="摸底.xlsx",
        sha256="0" * 64,
        size=len(data),
        format="xlsx",
        imported_by=uploader,
        organization=uploader.organization,
        state=ImportState.PREVIEWED,
    )
    imp.set_file(data)
    imp.full_clean()
    imp.save()
    return imp


def _raw(imp: SurveyImport) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT file FROM intake_surveyimport WHERE id = %s", [imp.pk])
        return bytes(cursor.fetchone()[0])


def _set_raw(imp: SurveyImport, value: bytes) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE intake_surveyimport SET file = %s WHERE id = %s", [value, imp.pk])


def test_a_file_round_trips_through_the_database(uploader):
    data = _file()
    imp = _import(uploader, data)
    stored = SurveyImport.objects.get(pk=imp.pk)
    assert type(stored.file_bytes()) is bytes and stored.file_bytes() == data
    assert SurveyImport.objects.get(pk=_import(uploader, b"").pk).file_bytes() == b""  # no file: empty, not encrypted


def test_the_database_holds_the_file_encrypted(uploader):
    data = _file()
    raw = _raw(_import(uploader, data))
    assert MARKER not in raw and data[:64] not in raw
    assert raw[0] == 0xB1 and len(raw) == len(data) + 3 + 12 + 16  # header, nonce, ciphertext, tag: no base64


@pytest.mark.parametrize("where", [0, 1, 2, 5, 3 + 12 + 50_000, -1])  # header, nonce, ciphertext, tag
def test_a_file_changed_by_one_byte_in_the_database_is_not_read(uploader, where):
    imp = _import(uploader, _file())
    raw = bytearray(_raw(imp))
    raw[where] ^= 0x01
    _set_raw(imp, bytes(raw))
    with pytest.raises(ValueError):
        SurveyImport.objects.get(pk=imp.pk)


def test_a_truncated_file_is_not_read(uploader):
    imp = _import(uploader, _file())
    _set_raw(imp, _raw(imp)[:-1])
    with pytest.raises(ValueError):
        SurveyImport.objects.get(pk=imp.pk)


@pytest.mark.parametrize("algorithm", ["sm4gcm", "aesgcm"])
def test_encrypt_bytes_round_trips_with_either_cipher(monkeypatch, algorithm):
    if algorithm == "sm4gcm" and crypto.algorithm() != "sm4gcm":
        pytest.skip("this OpenSSL build has no SM4-GCM")
    keys = dataclasses.replace(crypto._keys(), algorithm=algorithm)
    monkeypatch.setattr(crypto, "_keys", lambda: keys)
    for data in (b"", b"x", _file(1000)):
        blob = crypto.encrypt_bytes(data)
        assert blob[1] == {"sm4gcm": 1, "aesgcm": 2}[algorithm]
        assert crypto.decrypt_bytes(blob) == data and crypto.decrypt_bytes(memoryview(bytes(blob))) == data
    assert crypto.encrypt_bytes(b"same") != crypto.encrypt_bytes(b"same")  # a fresh nonce each time


def test_decrypt_bytes_refuses_what_is_not_a_file_blob():
    text = crypto.encrypt("a text value").encode()
    for blob in (b"", b"\xb1\x01", text, base64.b64encode(crypto.encrypt_bytes(b"file"))):
        with pytest.raises(ValueError):
            crypto.decrypt_bytes(blob)
    unknown_version = bytearray(crypto.encrypt_bytes(b"file"))
    unknown_version[2] = 99
    with pytest.raises(ValueError):
        crypto.decrypt_bytes(unknown_version)


def test_the_migration_converts_an_old_row_and_back():
    data = _file(10_000)
    old = crypto.encrypt(base64.b64encode(data).decode("ascii"))  # what `content` held
    new = migration.file_from_content(old)
    assert crypto.decrypt_bytes(new) == data and MARKER not in new
    assert base64.b64decode(crypto.decrypt(migration.content_from_file(bytes(new)))) == data
    assert migration.file_from_content("") == b"" and migration.content_from_file(b"") == ""
    assert migration.content_from_file(None) == ""


def test_the_migration_rewrites_the_rows_in_the_database(uploader):
    """The migration's row-by-row pass on this database, with the old column put back for the
    test (rolled back with it)."""
    data = _file(10_000)
    imp, empty = _import(uploader, b"placeholder"), _import(uploader, b"")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the rows' deferred foreign-key checks, before ALTER TABLE
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE intake_surveyimport ADD COLUMN content text NOT NULL DEFAULT ''")
        cursor.execute(
            "UPDATE intake_surveyimport SET content = %s, file = %s WHERE id = %s",
            [crypto.encrypt(base64.b64encode(data).decode("ascii")), b"", imp.pk],
        )
    editor = SimpleNamespace(connection=connection)

    migration.forwards(apps, editor)
    assert SurveyImport.objects.get(pk=imp.pk).file_bytes() == data
    assert SurveyImport.objects.get(pk=empty.pk).file_bytes() == b""

    migration.backwards(apps, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM intake_surveyimport WHERE id IN (%s, %s) ORDER BY id", [imp.pk, empty.pk])
        content, no_content = (row[0] for row in cursor.fetchall())
    assert base64.b64decode(crypto.decrypt(content)) == data and no_content == ""


def test_storing_and_reading_a_20_mb_file_keeps_few_copies_of_it(uploader):
    """Python allocations while storing, then reading back, a 20 MB file: the ciphertext once, then
    the ciphertext read and the plaintext (the old text column: about 9x)."""
    size = 20 * 1024 * 1024
    data = os.urandom(size)
    imp = _import(uploader, b"")
    peaks = {}
    for step in ("store", "read"):
        tracemalloc.start()
        try:
            if step == "store":
                imp.set_file(data)
                imp.save(update_fields=["file"])
            else:
                imp.refresh_from_db(fields=["file"])
                assert imp.file_bytes() == data
            peaks[step] = tracemalloc.get_traced_memory()[1] / size
        finally:
            tracemalloc.stop()
    # On PostgreSQL the settings turn on server-side binding: the bytea goes as a binary parameter
    # (about 1x), not hex in the SQL text as with Django's default client-side binding (about 7x).
    assert peaks["read"] < 3 and peaks["store"] < 3, peaks
