"""Encryption at rest for personal identifiers, and keyed blind indexes for exact look-up.

SM4-GCM where the OpenSSL build offers it (the national standard, GB/T 32907), else AES-256-GCM.
Every ciphertext names its algorithm and key version (`sm4gcm.1:` / `aesgcm.1:`), so a stored
value can always be read back, and a later key rotation knows what to re-encrypt.

Files (an uploaded survey sheet, up to tens of MB) use `encrypt_bytes` / `decrypt_bytes` instead:
the same keys and ciphers, a three-byte binary header in place of the text prefix, and no base64,
so storing a file costs one ciphertext buffer and reading it one plaintext buffer.

Why hand-written: the Django field libraries that exist (django-cryptography, django-fernet-fields)
are Fernet-only (AES-CBC + HMAC), unmaintained or without blind indexes; this module is a thin
layer over `cryptography`'s AEAD primitives, with no crypto of its own.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# Published in the repository on purpose: usable only in demo mode and tests.
DEMO_DATA_KEY = base64.b64encode(b"shouhu-demo-key-NOT-FOR-REAL-USE").decode()
KEY_VERSION = 1
_NONCE = 12
_TAG = 16


def _sm4_gcm_available() -> bool:
    try:
        key, iv = os.urandom(16), os.urandom(12)
        Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor().finalize()
        return True
    except Exception:  # noqa: BLE001 - any failure means the build lacks SM4-GCM
        return False


@dataclass(frozen=True)
class _Keys:
    algorithm: str  # what new values are written with
    sm4: bytes
    aes: bytes
    index: bytes

    @functools.cached_property
    def sm4_algorithm(self) -> algorithms.SM4:
        """The SM4 cipher with its key, made once (0.5 of the 8 µs of encrypting a short value)."""
        return algorithms.SM4(self.sm4)


@functools.cache
def _keys() -> _Keys:
    raw = settings.DATA_KEY
    if not raw:
        if not (settings.DEMO_MODE or settings.TESTING):
            raise ImproperlyConfigured("SHOUHU_DATA_KEY (or SHOUHU_DATA_KEY_FILE) is required")
        logger.warning("Using the published DEMO data key: demo mode only, never for real data")
        raw = DEMO_DATA_KEY
    try:
        master = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ImproperlyConfigured("SHOUHU_DATA_KEY must be base64") from exc
    if len(master) < 32:
        raise ImproperlyConfigured("SHOUHU_DATA_KEY must decode to at least 32 bytes")

    def derive(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)

    return _Keys(
        algorithm="sm4gcm" if _sm4_gcm_available() else "aesgcm",
        sm4=derive(b"shouhu/encrypt/sm4/v1", 16),
        aes=derive(b"shouhu/encrypt/aes/v1", 32),
        index=derive(b"shouhu/blind-index/v1", 32),
    )


def reset_keys_cache() -> None:
    _keys.cache_clear()


def algorithm() -> str:
    return _keys().algorithm


def encrypt(plaintext: str) -> str:
    keys = _keys()
    nonce = os.urandom(_NONCE)
    data = plaintext.encode("utf-8")
    if keys.algorithm == "sm4gcm":
        enc = Cipher(keys.sm4_algorithm, modes.GCM(nonce)).encryptor()
        body = enc.update(data) + enc.finalize() + enc.tag
    else:
        body = AESGCM(keys.aes).encrypt(nonce, data, None)
    token = base64.b64encode(nonce + body).decode("ascii")
    return f"{keys.algorithm}.{KEY_VERSION}:{token}"


class Sealed(str):
    """A text with its ciphertext (`encrypt` of it), made ahead of storing it: a survey import's
    validation processes seal the personal values of the rows they validate, so that the importing
    process, whose time is the import's, stores them without encrypting (`EncryptedTextField`
    and the COPY writer take `ciphertext` as is). Everything else sees the text; a value
    changed afterwards is a plain `str` again (str's methods return `str`), encrypted when stored.

    The ciphertext is made here and nowhere else, so it is always the text's; pickling (to the
    importing process) carries both."""

    ciphertext: str

    def __new__(cls, plaintext: str) -> Sealed:
        sealed = super().__new__(cls, plaintext)
        sealed.ciphertext = encrypt(plaintext)
        return sealed

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return _unpickle_sealed, (str(self), self.ciphertext)


def _unpickle_sealed(plaintext: str, ciphertext: str) -> Sealed:
    sealed = str.__new__(Sealed, plaintext)
    sealed.ciphertext = ciphertext
    return sealed


def decrypt(stored: str) -> str:
    keys = _keys()
    header, _, token = stored.partition(":")
    alg, _, version = header.partition(".")
    if not token or version != str(KEY_VERSION):
        raise ValueError("unknown ciphertext format")
    blob = base64.b64decode(token)
    nonce, body = blob[:_NONCE], blob[_NONCE:]
    if alg == "sm4gcm":
        dec = Cipher(algorithms.SM4(keys.sm4), modes.GCM(nonce, body[-_TAG:])).decryptor()
        data = dec.update(body[:-_TAG]) + dec.finalize()
    elif alg == "aesgcm":
        data = AESGCM(keys.aes).decrypt(nonce, body, None)
    else:
        raise ValueError(f"unknown cipher {alg!r}")
    return data.decode("utf-8")


# encrypt_bytes: header (format, algorithm, key version), then nonce | ciphertext | tag.
_BLOB_FORMAT = 0xB1  # never an ASCII letter: an old text value (`sm4gcm.1:…`) cannot pass for a blob
_BLOB_ALGORITHMS = {"sm4gcm": 1, "aesgcm": 2}
_BLOB_ALGORITHM_NAMES = {number: name for name, number in _BLOB_ALGORITHMS.items()}
_BLOB_HEADER = 3
_BLOB_AAD = b"shouhu/file/v1"  # authenticated with the header: a blob is valid only as a stored file


def _gcm(keys: _Keys, alg: str, nonce: bytes, tag: bytes | None = None) -> Cipher[modes.GCM]:
    cipher = keys.sm4_algorithm if alg == "sm4gcm" else algorithms.AES(keys.aes)
    return Cipher(cipher, modes.GCM(nonce, tag))


def encrypt_bytes(data: bytes | bytearray | memoryview) -> bytearray:
    """Encrypt a file's bytes. Returns one buffer of `len(data) + 31` bytes, written in place (a
    bytearray: a `bytes` result would be a second copy of it)."""
    keys = _keys()
    header = bytes([_BLOB_FORMAT, _BLOB_ALGORITHMS[keys.algorithm], KEY_VERSION])
    nonce = os.urandom(_NONCE)
    encryptor = _gcm(keys, keys.algorithm, nonce).encryptor()
    encryptor.authenticate_additional_data(_BLOB_AAD + header)
    start = _BLOB_HEADER + _NONCE
    with memoryview(data) as source:
        size = source.nbytes
    out = bytearray(start + size + _TAG)
    with memoryview(out) as view:
        view[:_BLOB_HEADER] = header
        view[_BLOB_HEADER:start] = nonce
        # The tag's 16 bytes after the ciphertext are the slack `update_into` may ask for.
        written = encryptor.update_into(data, view[start:])
        if written != size or encryptor.finalize():  # GCM is a stream mode: never happens
            raise ValueError("unexpected ciphertext length")
        view[start + size :] = encryptor.tag
    return out


def decrypt_bytes(blob: bytes | bytearray | memoryview) -> bytes:
    """Decrypt what `encrypt_bytes` returned; ValueError on an unknown header or a wrong tag (a
    tampered or truncated blob, or another key)."""
    keys = _keys()
    with memoryview(blob) as view:
        if len(view) < _BLOB_HEADER + _NONCE + _TAG or view[0] != _BLOB_FORMAT:
            raise ValueError("unknown ciphertext format")
        alg = _BLOB_ALGORITHM_NAMES.get(view[1])
        if alg is None or view[2] != KEY_VERSION:
            raise ValueError("unknown cipher or key version")
        start = _BLOB_HEADER + _NONCE
        decryptor = _gcm(keys, alg, bytes(view[_BLOB_HEADER:start]), bytes(view[-_TAG:])).decryptor()
        decryptor.authenticate_additional_data(_BLOB_AAD + bytes(view[:_BLOB_HEADER]))
        data = decryptor.update(view[start:-_TAG])
        try:
            rest = decryptor.finalize()
        except InvalidTag as exc:
            raise ValueError("ciphertext does not authenticate (tampered, truncated or another key)") from exc
    return data + rest if rest else data


def blind_index(value: str, *, purpose: str) -> str:
    """Keyed hash for exact match and de-duplication; `purpose` keeps indexes of different fields apart."""
    digest = hmac.new(_keys().index, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:40]
