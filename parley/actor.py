"""Who acts on a call between services: the operator the gateway authenticated, sent in
the signed actor header (contract.ACTOR_HEADER, JSON) and believed because every call
behind the gateway is signed (internal_auth). Every service reads it here, with the
same strict types: a canonical UUID, `is_admin` a JSON boolean and nothing else."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from parley.contract import ACTOR_HEADER, canonical_uuid
from parley.http import Rejected

PROJECT_ID_MAX = 100
NAME_MAX = 200
AVATAR_URL_MAX = 2000
EMAIL_MAX = 320


@dataclass(frozen=True)
class Actor:
    id: str
    project_id: str
    name: str
    is_admin: bool
    avatar_url: str | None = None
    email: str | None = None


def _text(value: Any, max_length: int, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, str) and 1 <= len(value) <= max_length


def actor_of(request: web.Request) -> Actor:
    """The operator on this call; 401 when there is none or it is malformed."""
    try:
        d = orjson.loads(request.headers.get(ACTOR_HEADER, ""))
    except orjson.JSONDecodeError:
        d = None
    operator_id = canonical_uuid(d.get("id")) if isinstance(d, dict) else None
    if (operator_id is None or not _text(d.get("project"), PROJECT_ID_MAX) or not _text(d.get("name"), NAME_MAX)
            or not isinstance(d.get("is_admin"), bool) or not _text(d.get("avatar_url"), AVATAR_URL_MAX, optional=True)
            or not _text(d.get("email"), EMAIL_MAX, optional=True)):
        raise Rejected(401, "unauthenticated", "No operator on this request.")
    return Actor(operator_id, d["project"], d["name"], d["is_admin"], d.get("avatar_url"), d.get("email"))


def admin_of(request: web.Request, message: str = "Only an admin may do this.") -> Actor:
    me = actor_of(request)
    if not me.is_admin:
        raise Rejected(403, "admin_only", message)
    return me
