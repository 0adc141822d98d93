"""Signed visitor tokens: a visitor reaches only their own conversation.

`<payload>.<signature>`, both base64url; the payload is {"p": project, "v": visitor id},
the signature HMAC-SHA256 with PARLEY_VISITOR_SECRET, which every gateway of one
installation shares (make run generates one and keeps it in the run folder).

A verified visitor's token also carries "g", the generation of the project's identity
secret that verified them, and "x", when it expires (verified_visitors.py decides
whether it still stands): rotating the secret, or the site no longer vouching for the
user, ends it without logging every other visitor out."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import NamedTuple

import orjson

from parley.config import shared_secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secret() -> bytes:
    return shared_secret("PARLEY_VISITOR_SECRET", "on every gateway")


class VisitorToken(NamedTuple):
    project_id: str
    visitor_id: str
    generation: str | None = None    # verified visitors: which identity secret verified them
    expires_at: float | None = None  # verified visitors: unix time


def issue(project_id: str, visitor_id: str | None = None, *, generation: str | None = None,
          expires_at: float | None = None) -> tuple[str, str]:
    """A token for a new anonymous visitor, or for `visitor_id` (a verified visitor's)."""
    visitor_id = visitor_id or secrets.token_hex(16)
    claims = {"p": project_id, "v": visitor_id}
    if generation is not None:
        claims.update(g=generation, x=int(expires_at or 0))
    payload = _b64(orjson.dumps(claims))
    return f"{payload}.{_b64(hmac.new(_secret(), payload.encode(), hashlib.sha256).digest())}", visitor_id


def verify(token: object) -> VisitorToken | None:
    """What the token says, or None for anything not signed by us."""
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
        generation, expires_at = data.get("g"), data.get("x")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (isinstance(project_id, str) and isinstance(visitor_id, str)):
        return None
    return VisitorToken(project_id, visitor_id, generation if isinstance(generation, str) else None,
                        float(expires_at) if isinstance(expires_at, int) else None)
