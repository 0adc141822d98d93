"""Authenticated encryption for personal data on the bus: AES-256-GCM from `cryptography`.

A sealed value is the text `v1.` + base64(12-byte nonce + ciphertext + tag). The
associated data binds it to what it belongs to (the event id), so a sealed value moved
to another event does not open. Keys are 32 random bytes, one per data subject
(parley/subject_keys.py); destroying a key is erasing what it sealed."""
from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1."
NONCE_BYTES = 12


class Unreadable(ValueError):
    """A sealed value that this key does not open (wrong key, altered, or not sealed)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, associated: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)   # random 96-bit nonces: safe far beyond a key's few thousand uses
    return VERSION + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, associated)).decode("ascii")


def unseal(key: bytes, sealed: str, associated: bytes) -> bytes:
    if not isinstance(sealed, str) or not sealed.startswith(VERSION):
        raise Unreadable("not a sealed value")
    try:
        raw = base64.b64decode(sealed[len(VERSION):], validate=True)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated)
    except (InvalidTag, ValueError) as e:
        raise Unreadable("the key does not open this value") from e
