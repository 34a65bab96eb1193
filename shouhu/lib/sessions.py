"""The database session store, refusing malformed session keys before they reach the database.

Django's own keys are 32 characters of [a-z0-9]. A cookie carrying anything else (a NUL byte,
which PostgreSQL refuses in text and turned every page into a 500) is simply no session.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        # SessionBase._validate_session_key is private, and django-stubs does not declare it.
        valid = super()._validate_session_key(key)  # type: ignore[misc]
        return bool(valid) and key is not None and key.isascii() and key.isalnum()
