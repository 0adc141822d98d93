"""The routes of two-factor login (the rules: two_factor.py): an operator's own
enrolment, confirmation and switching off; the owner's requirement and reset."""
from __future__ import annotations

import io

import pyotp
import segno
from aiohttp import web

from parley import audit
from parley.contract import canonical_uuid
from parley.http import Rejected, ok, read_json
from parley.service import POOL, STORE

from operator_registry.authentication import SESSION, actor, owner
from operator_registry.two_factor import (ISSUER, check_login_code, code_digest, enabled, new_recovery_codes, state,
                                          step_of)


async def get_mine(request: web.Request) -> web.Response:
    me = actor(request)
    s = await state(request.app[POOL], me.operator_id, me.project_id)
    return ok({"enabled": s.enabled, "required": s.required, "recovery_codes_left": s.recovery_codes_left})


async def enrol(request: web.Request) -> web.Response:
    """A new secret to scan (replacing an enrolment not yet confirmed)."""
    me = actor(request)
    session = request[SESSION]
    pool = request.app[POOL]
    if await enabled(pool, me.operator_id):
        raise Rejected(409, "two_factor_enabled", "Two-factor login is already on; switch it off first to enrol again.")
    secret = pyotp.random_base32()
    await pool.execute(
        """insert into two_factor (operator_id, project_id, secret) values ($1, $2, $3)
           on conflict (operator_id) do update set secret = excluded.secret, confirmed_at = null, last_step = 0,
               recovery_hashes = '{}'""", me.operator_id, me.project_id, secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=session.email, issuer_name=f"{ISSUER} ({me.project_id})")
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", scale=5, border=2, xmldecl=False, svgns=True)
    return ok({"secret": secret, "otpauth_uri": uri, "qr_svg": svg.getvalue().decode()})


async def confirm(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    codes = new_recovery_codes()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow("select secret, confirmed_at from two_factor where operator_id = $1 for update",
                                  me.operator_id)
        if row is None or row["confirmed_at"] is not None:
            raise Rejected(409, "two_factor_not_enrolling", "Start the enrolment first (scan a new code).")
        step = step_of(row["secret"], body.get("code"), 0)
        if step is None:
            raise Rejected(422, "code_invalid", "That code does not match: check the phone's time and try the next one.")
        await conn.execute(
            "update two_factor set confirmed_at = now(), last_step = $2, recovery_hashes = $3 where operator_id = $1",
            me.operator_id, step, [code_digest(c) for c in codes])
        await audit.record(request.app[STORE], conn, me.project_id, me.operator_id, "operator.two_factor_enabled",
                           me.operator_id)
    return ok({"enabled": True, "recovery_codes": codes})


async def disable(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if (await state(conn, me.operator_id, me.project_id)).required:
            raise Rejected(409, "two_factor_required", "This project requires two-factor login.")
        if not await check_login_code(conn, me.operator_id, body.get("code")):
            raise Rejected(422, "code_invalid", "Enter a current code (or a recovery code) to switch it off.")
        await conn.execute("delete from two_factor where operator_id = $1", me.operator_id)
        await audit.record(request.app[STORE], conn, me.project_id, me.operator_id, "operator.two_factor_disabled",
                           me.operator_id)
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    """The owner switches another operator's two-factor login off (a lost phone): they
    enrol again at their next login if the project requires it."""
    me = owner(request)
    target = canonical_uuid(request.match_info["id"])
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if target is None or not await conn.fetchval(
                "select 1 from operators where id = $1 and project_id = $2 and not removed", target, me.project_id):
            raise Rejected(404, "not_found", "No such operator here.")
        await conn.execute("delete from two_factor where operator_id = $1", target)
        await audit.record(request.app[STORE], conn, me.project_id, me.operator_id, "operator.two_factor_reset",
                           target)
    return web.Response(status=204)


async def put_required(request: web.Request) -> web.Response:
    me = owner(request)
    body = await read_json(request)
    if not isinstance(body.get("required"), bool):
        raise Rejected(422, "required_invalid", "required is true or false.")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute(
            """insert into two_factor_required (project_id, required) values ($1, $2)
               on conflict (project_id) do update set required = excluded.required, updated_at = now()""",
            me.project_id, body["required"])
        await audit.record(request.app[STORE], conn, me.project_id, me.operator_id, "settings.two_factor",
                           "two_factor", required=body["required"])
    return ok({"required": body["required"]})


async def get_required(request: web.Request) -> web.Response:
    me = actor(request)
    return ok({"required": (await state(request.app[POOL], me.operator_id, me.project_id)).required})


ROUTES = [
    ("GET", "/api/me/two-factor", get_mine),
    ("POST", "/api/me/two-factor/enrol", enrol),
    ("POST", "/api/me/two-factor/confirm", confirm),
    ("DELETE", "/api/me/two-factor", disable),
    ("POST", "/api/operators/{id}/two-factor/reset", reset),
    ("GET", "/api/project/two-factor", get_required),
    ("PUT", "/api/project/two-factor", put_required),
]
