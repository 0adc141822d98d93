"""Per-project identity secrets for verified visitors (issue 13, item 5).

A site with logged-in users calls `Parley.identify({id, name, email, hash})` where hash
is the hex HMAC-SHA256 of `id` under this secret, computed on the site's server. Admins
see the secret in the app (made on first view) and may rotate it; the gateways read it
over a signed call to check hashes. The secret never enters an event (secrets stay out
of the event store, as the CRM's do): it is a row here, and rotating replaces it, so
hashes made with the old one stop verifying (those visitors become anonymous until the
site uses the new secret)."""
from __future__ import annotations

import secrets

from aiohttp import web

from parley import audit
from parley.http import Rejected, ok
from parley.service import POOL, STORE

from operator_registry.authentication import actor


def _admin(request: web.Request):
    me = actor(request)
    if not (me.is_admin or me.is_owner):
        raise Rejected(403, "forbidden", "Only admins see the identity secret.")
    return me


def _view(row) -> dict:
    return {"secret": row["secret"], "created_at": row["created_at"].isoformat()}


async def get_secret(request: web.Request) -> web.Response:
    """The project's secret, made now if it has none (two first views at once: one wins)."""
    me = _admin(request)
    row = await request.app[POOL].fetchrow(
        """with made as (insert into identity_secrets (project_id, secret) values ($1, $2)
                         on conflict (project_id) do nothing returning secret, created_at)
           select secret, created_at from made
           union all select secret, created_at from identity_secrets where project_id = $1
           limit 1""", me.project_id, secrets.token_hex(32))
    return ok(_view(row))


async def rotate(request: web.Request) -> web.Response:
    me = _admin(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """insert into identity_secrets (project_id, secret) values ($1, $2)
               on conflict (project_id) do update set secret = excluded.secret, created_at = now()
               returning secret, created_at""", me.project_id, secrets.token_hex(32))
        await audit.record(request.app[STORE], conn, me.project_id, me.operator_id, "settings.identity_secret",
                           "identity_secret", rotated=True)
    return ok(_view(row))


async def for_gateway(request: web.Request) -> web.Response:
    """Signed (the gateway): the secret, or 404 while the project has none (no visitor can
    be verified before an admin has looked at it)."""
    row = await request.app[POOL].fetchrow("select secret, created_at from identity_secrets where project_id = $1",
                                           request.match_info["project"])
    if row is None:
        raise Rejected(404, "no_identity_secret", "This project has no identity secret yet.")
    return ok(_view(row))


ROUTES = [
    ("GET", "/api/project/identity-secret", get_secret),
    ("POST", "/api/project/identity-secret/rotate", rotate),
    ("GET", "/internal/projects/{project}/identity-secret", for_gateway),
]
