"""Who a verified visitor is (issue 19, item 6): the name and email their site gave
`Parley.identify`, stored by the gateway once the hash verified
(`PUT /internal/visitors/identity`) and shown to operators beside the conversation.

Personal data, so not an event: a table of its own, keyed by the verified visitor id,
read when conversations are listed (IDENTITY_COLUMN) and by the client card; an
erasure of that visitor (by visitor id, phone or email) deletes its row
(erasure_requests.py). The last identify wins; a value that is
not plausible (too long, control characters, an email without @) is dropped, never an
error - the visitor is verified either way."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from parley.http import Rejected, ok, read_json
from parley.service import POOL
from parley.text import strip_controls

from conversation.domain import DomainError, check_email

VERIFIED_PREFIX = "verified:"
NAME_MAX = 200

# The identity as a column of any `select ... from conversations` (null when none, and
# on an erased conversation: it is not to be tied to its visitor any more).
IDENTITY_COLUMN = """(select jsonb_build_object('name', i.name, 'email', i.email) from verified_identities i
                     where i.project_id = conversations.project_id and i.visitor_id = conversations.visitor_id
                       and conversations.erased_at is null) as identity"""


def _plain(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = strip_controls(value).strip()
    return value if 0 < len(value) <= NAME_MAX else None


def clean(name: Any, email: Any) -> tuple[str | None, str | None]:
    email = _plain(email)
    if email is not None:
        try:
            email = check_email(email)
        except DomainError:
            email = None
    return _plain(name), email


async def lookup(pool, project_id: str, visitor_id: str) -> dict[str, str]:
    row = await pool.fetchrow("select name, email from verified_identities where project_id = $1 and visitor_id = $2",
                              project_id, visitor_id)
    return {k: v for k, v in dict(row).items() if v} if row else {}


async def put_identity(request: web.Request) -> web.Response:
    """The gateway, for a visitor whose identify hash verified: {project_id, visitor_id, name, email}."""
    body = await read_json(request)
    project_id, visitor_id = body.get("project_id"), body.get("visitor_id")
    if (not isinstance(project_id, str) or not 1 <= len(project_id) <= 64 or not isinstance(visitor_id, str)
            or not visitor_id.startswith(VERIFIED_PREFIX) or len(visitor_id) > 100):
        raise Rejected(422, "visitor_required", "A verified visitor (project_id, visitor_id verified:...) is required.")
    name, email = clean(body.get("name"), body.get("email"))
    await request.app[POOL].execute(
        """insert into verified_identities (project_id, visitor_id, name, email) values ($1, $2, $3, $4)
           on conflict (project_id, visitor_id) do update set name = excluded.name, email = excluded.email,
               updated_at = now()
           where (verified_identities.name, verified_identities.email)
                 is distinct from (excluded.name, excluded.email)""",
        project_id, visitor_id, name, email)
    return ok({"visitor_id": visitor_id, "name": name, "email": email})
