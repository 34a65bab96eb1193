"""Model fields for personal identifiers: encrypted at rest, transparently decrypted on read."""

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
        return crypto.encrypt(value)
