"""Signed visitor tokens: a visitor reaches only their own conversation.

`<payload>.<signature>`, both base64url; the payload is {"p": project, "v": visitor id},
the signature HMAC-SHA256 with PARLEY_VISITOR_SECRET, which every gateway of one
installation shares (make run generates one and keeps it in the run folder)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import orjson

from parley.config import shared_secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secret() -> bytes:
    return shared_secret("PARLEY_VISITOR_SECRET", "on every gateway")


def issue(project_id: str, visitor_id: str | None = None) -> tuple[str, str]:
    """A token for a new anonymous visitor, or for `visitor_id` (a verified visitor's)."""
    visitor_id = visitor_id or secrets.token_hex(16)
    payload = _b64(orjson.dumps({"p": project_id, "v": visitor_id}))
    return f"{payload}.{_b64(hmac.new(_secret(), payload.encode(), hashlib.sha256).digest())}", visitor_id


def verify(token: object) -> tuple[str, str] | None:
    """(project id, visitor id), or None for anything not signed by us."""
    if not isinstance(token, str):
        return None
    payload, _, signature = token.partition(".")
    if not payload or not signature:
        return None
    expected = _b64(hmac.new(_secret(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return None
    try:
        data = orjson.loads(_unb64(payload))
        project_id, visitor_id = data["p"], data["v"]
    except (ValueError, KeyError, TypeError):
        return None
    return (project_id, visitor_id) if isinstance(project_id, str) and isinstance(visitor_id, str) else None
