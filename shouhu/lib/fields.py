"""Model fields for personal identifiers and kept files: encrypted at rest, transparently decrypted on read."""

from __future__ import annotations

from typing import Any

from django.db import models

from shouhu.lib import crypto


class EncryptedTextField(models.TextField):
    """Stores `alg.version:base64(nonce|ciphertext|tag)`; Python code sees the plaintext.

    Never filter on this field: use the blind index stored next to it.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        if isinstance(value, crypto.Sealed):  # encrypted ahead (a survey import's validation processes)
            return value.ciphertext
        return crypto.encrypt(value)


class EncryptedBinaryField(models.BinaryField):
    """Stores `crypto.encrypt_bytes` of the value (header, nonce, ciphertext, tag); Python code sees
    the plaintext bytes. For files: no base64 on either side. Empty stays empty (no file).

    Like BinaryField, not editable in forms; never filter on it (the nonce is random).
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        if value is None:
            return None
        if len(value) == 0:
            return b""
        # bytes (sqlite3, psycopg 3) or memoryview (psycopg2): read in place, one plaintext buffer.
        return crypto.decrypt_bytes(value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if value is not None and len(value) > 0:
            value = crypto.encrypt_bytes(value)
        return super().get_db_prep_value(value, connection, prepared=True)
