"""operator-registry's HTTP routes. The gateway forwards the public `/api/...` routes here
(paths, bodies, the session cookie or bearer token) in calls it signs; this service
authenticates every request itself (authentication.py) and applies the permission rules
of domain.py. Commands go through `authentication.run` (commands.run, the one command
path); reads are views.py's.

Errors are `{"error": {"code": ..., "message": ...}}` with a fitting HTTP status; the
domain's refusals are mapped to statuses in one place for every service (parley.http)."""
from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web

from parley.contract import ROTATED_TOKEN_HEADER, operator_stream, project_stream, template_stream
from parley.envelope import Event
from parley.http import Rejected, error_response as error, ok, read_json
from parley.service import POOL, STORE

from operator_registry import accounts, commands, domain, two_factor, views
from operator_registry.authentication import (SESSION, actor, client_address, command_id, refusals_middleware, run,
                                              session_middleware)
from operator_registry.widget_texts import DEFAULT_TEXTS, LANGUAGES, MULTILINE_KEYS, TEXT_LIMITS

# ---- session ------------------------------------------------------------------

async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    project_id, email, password = body.get("project"), body.get("email"), body.get("password")
    if not all(isinstance(v, str) and v for v in (project_id, email, password)):
        return error(400, "credentials_required", "Send project, email and password.")
    pool = request.app[POOL]
    pair_key, address_key = accounts.throttle_keys(project_id, email, client_address(request))
    if await accounts.throttled(pool, pair_key, address_key):
        return error(429, "too_many_attempts", "Too many failed logins. Wait 15 minutes and try again.",
                     headers={"Retry-After": str(accounts.THROTTLE_RETRY_AFTER)})
    operator = None
    # Anything that cannot be a login is simply not found (and still costs a verification below).
    if domain.valid_project_id(project_id) and len(email) <= domain.EMAIL_MAX:
        operator = await pool.fetchrow(
            """select id::text, project_id, password, active from operators
               where project_id = $1 and lower(email) = lower($2) and not removed""", project_id, email.strip())
        if operator is None:
            # Before the chat is enabled the owner has no operator row yet, and logs in as owner.
            operator = await pool.fetchrow(
                """select owner_operator_id::text as id, id as project_id, owner_password as password, true as active
                   from projects p where id = $1 and lower(owner_email) = lower($2)
                     and not exists (select 1 from operators o where o.id = p.owner_operator_id)""",
                project_id, email.strip())
    if (not await accounts.password_matches(operator["password"] if operator else None, password)
            or not operator["active"]):
        await accounts.record_failure(pool, pair_key, address_key)
        return error(401, "invalid_credentials", "Wrong project, email or password.")
    if await two_factor.enabled(pool, operator["id"]):
        if body.get("code") in (None, ""):
            return error(401, "two_factor_required", "Enter the 6-digit code from your authenticator app "
                                                     "(or one of your recovery codes).")
        async with pool.acquire() as conn, conn.transaction():
            good = await two_factor.check_login_code(conn, operator["id"], body["code"])
        if not good:   # counted as a failed login: codes are throttled as passwords are
            await accounts.record_failure(pool, pair_key, address_key)
            return error(401, "two_factor_invalid", "That code is wrong or already used; try the next one.")
    await accounts.forget_failures(pool, pair_key)
    return await open_session(request, operator)


async def open_session(request: web.Request, operator: Any) -> web.Response:
    """A new session for an operator who proved who they are (`operator`: its `id` and
    `project_id`): 201 with the token in the body and in X-Parley-Session, from which the
    gateway sets its cookie. Login and the first-run setup both end here."""
    pool = request.app[POOL]
    session_id = str(uuid.uuid4())
    tokens: list[str] = []

    async def start_session(conn: asyncpg.Connection, events: list[Event]) -> None:
        tokens.append(await accounts.create_session(conn, session_id, operator["id"], operator["project_id"],
                                                    user_agent=request.headers.get("User-Agent"),
                                                    address=client_address(request)))

    if await pool.fetchval("select 1 from operators where id = $1", operator["id"]):
        await run(request, operator_stream(operator["id"]), domain.evolve_operator,
                  lambda _: [commands.operator_event("operator.logged_in", operator, {"session_id": session_id})],
                  extra=start_session, command=session_id)
    else:  # the owner before enabling the chat: no operator stream yet
        async with pool.acquire() as conn:
            await start_session(conn, [])
    token = tokens[0]
    session = await accounts.verify_session(pool, token)
    response = ok({"token": token, "operator": await views.me_view(request.app[POOL], session)}, status=201)
    response.headers[ROTATED_TOKEN_HEADER] = token
    return response


async def whoami(request: web.Request) -> web.Response:
    actor(request)
    return ok(await views.me_view(request.app[POOL], request[SESSION]))


async def logout(request: web.Request) -> web.Response:
    me = actor(request)
    session_id = request[SESSION].id
    if await request.app[POOL].fetchval("select 1 from operators where id = $1", me.operator_id):
        await run(request, operator_stream(me.operator_id), domain.evolve_operator, lambda _: [
            commands.operator_event("operator.logged_out", {"id": me.operator_id, "project_id": me.project_id},
                   {"session_id": session_id, "reason": "logout"})])
    else:
        await request.app[POOL].execute("update sessions set revoked_at = now() where id = $1", session_id)
    return web.Response(status=204)  # the gateway clears its cookie


async def verify(request: web.Request) -> web.Response:
    """For the gateway: who holds this token. The token may rotate on this use; the new
    one is `rotated_token` (else null), and the gateway must hand it to the client."""
    body = await read_json(request)
    session = await accounts.verify_session(request.app[POOL], body.get("token"))
    if session is None:
        return error(401, "unauthenticated", "Unknown, expired or revoked session.")
    view = await views.me_view(request.app[POOL], session)
    view["rotated_token"] = await accounts.rotate(request.app[POOL], session)
    return ok(view)


async def session_status(request: web.Request) -> web.Response:
    """For the gateway: does this session still stand (`{"active": bool}`)?"""
    session_id = domain.uuid_or_none(request.match_info["session_id"])
    if session_id is None:
        raise Rejected(404, "not_found", "No such session.")
    return ok({"active": await accounts.session_stands(request.app[POOL], session_id)})


# ---- project ------------------------------------------------------------------

async def get_project(request: web.Request) -> web.Response:
    me = actor(request)
    return ok(await views.project(request.app[POOL], me))


async def _change_project(request: web.Request, decide) -> web.Response:
    me = actor(request)
    await run(request, project_stream(me.project_id), domain.evolve_project, lambda p: decide(p, me))
    return ok(await views.project(request.app[POOL], me))


async def enable_chat(request: web.Request) -> web.Response:
    me = actor(request)
    await commands.enable_chat(request.app[STORE], command_id(request), me, audited=True)
    return ok(await views.project(request.app[POOL], me))


async def disable_chat(request: web.Request) -> web.Response:
    return await _change_project(request, domain.decide_disable_chat)


async def put_widget(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _change_project(
        request, lambda p, me: domain.decide_widget_settings(p, me, body.get("language"), body.get("texts", {})))


async def put_sites(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _change_project(request, lambda p, me: domain.decide_sites(p, me, body.get("sites")))


async def put_triggers(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _change_project(request, lambda p, me: domain.decide_triggers(p, me, body.get("triggers")))


async def widget_config(request: web.Request) -> web.Response:
    """Public: what the widget on a site needs to know about its project."""
    return ok(views.widget_config(await views.project_row(request.app[POOL], request.query.get("project", ""))))


async def widget_texts(_: web.Request) -> web.Response:
    """Public: the widget's standard texts in every language, their limits, which span lines."""
    return ok({"languages": list(LANGUAGES), "defaults": DEFAULT_TEXTS, "limits": TEXT_LIMITS,
               "multiline": sorted(MULTILINE_KEYS)})


# ---- operators ----------------------------------------------------------------

async def list_operators(request: web.Request) -> web.Response:
    return ok({"operators": await views.operators(request.app[POOL], actor(request))})


async def get_operator(request: web.Request) -> web.Response:
    me = actor(request)
    row = await views.operator_row(request.app[POOL], me, request.match_info["id"])
    return ok(views.operator_view(row, private=me.is_admin or me.is_owner or row["id"] == me.operator_id))


async def add_operator(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    operator_id = str(uuid.uuid4())
    # Checked before hashing: argon2 is slow on purpose, and a refused request should not pay for it.
    domain.decide_add_operator(me, operator_id, body.get("name"), body.get("email"), body.get("is_admin", False))
    password = domain.check_password(body.get("password"))
    outcome = await run(request, operator_stream(operator_id), domain.evolve_operator,
                        lambda _: domain.decide_add_operator(me, operator_id, body.get("name"), body.get("email"),
                                                             body.get("is_admin", False)),
                        password_hash=await accounts.hash_password(password))
    created = outcome.result["stream_id"].removeprefix("operator-")
    return ok(views.operator_view(await views.operator_row(request.app[POOL], me, created), private=True), status=201)


async def update_operator(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    changes = {k: body[k] for k in ("name", "email", "is_admin") if k in body}
    password = body.get("password")
    password_given = password is not None
    target = await views.load_operator(request.app[POOL], request.app[STORE], me, request.match_info["id"])
    # Everything is checked before any argon2 work (slow on purpose): the rules, with the
    # current password taken as right if one was offered, then the new password's shape,
    # then the offered current password itself.
    offered = body.get("current_password") is not None
    domain.decide_update_operator(me, target, changes, password_given, current_password_verified=offered)
    if password_given:
        domain.check_password(password)
    verified = False
    if domain.needs_current_password(me, target, password_given):
        verified = await current_password_matches(request, target, body["current_password"])
    password_hash = await accounts.hash_password(password) if password_given else None
    session_id = request[SESSION].id

    async def revoke_other_sessions(conn: asyncpg.Connection, events: list[Event]) -> None:
        if any(e.type == "operator.password_changed" for e in events):
            await accounts.revoke_sessions(conn, target.id, keep=session_id if target.id == me.operator_id else None)

    await run(request, operator_stream(target.id), domain.evolve_operator,
              lambda t: domain.decide_update_operator(me, t, changes, password_given,
                                                      current_password_verified=verified),
              password_hash=password_hash, extra=revoke_other_sessions)
    return ok(views.operator_view(await views.operator_row(request.app[POOL], me, target.id), private=True))


async def current_password_matches(request: web.Request, target: domain.Operator, current: object) -> bool:
    """True, or a refusal. Wrong guesses count as failed logins of this operator from this
    address, so an open session is no way around the login throttling."""
    if not isinstance(current, str):
        raise Rejected(422, "current_password_required", "current_password must be your current password.")
    pool = request.app[POOL]
    pair_key, address_key = accounts.throttle_keys(target.project_id, target.email, client_address(request))
    if await accounts.throttled(pool, pair_key, address_key):
        raise Rejected(429, "too_many_attempts", "Too many wrong passwords. Wait 15 minutes and try again.",
                       headers={"Retry-After": str(accounts.THROTTLE_RETRY_AFTER)})
    stored = await pool.fetchval("select password from operators where id = $1", target.id)
    if not await accounts.password_matches(stored, current):
        await accounts.record_failure(pool, pair_key, address_key)
        raise Rejected(403, "current_password_wrong", "The current password is not right.")
    return True


async def _lifecycle(request: web.Request, decide) -> web.Response:
    me = actor(request)
    target = await views.load_operator(request.app[POOL], request.app[STORE], me, request.match_info["id"])

    async def revoke(conn: asyncpg.Connection, events: list[Event]) -> None:
        if any(e.type in ("operator.deactivated", "operator.removed") for e in events):
            await accounts.revoke_sessions(conn, target.id)

    await run(request, operator_stream(target.id), domain.evolve_operator, lambda t: decide(me, t), extra=revoke)
    return web.Response(status=204)


async def deactivate(request: web.Request) -> web.Response:
    return await _lifecycle(request, domain.decide_deactivate)


async def reactivate(request: web.Request) -> web.Response:
    return await _lifecycle(request, domain.decide_reactivate)


async def remove(request: web.Request) -> web.Response:
    return await _lifecycle(request, domain.decide_remove)


async def set_avatar(request: web.Request) -> web.Response:
    """Internal: the gateway records an avatar it validated and stored (PUT
    /internal/operators/{id}/avatar, {"avatar_id": "<32 lowercase hex>"}). No public
    path reaches it: an image that skipped the gateway's checks cannot become an avatar."""
    me = actor(request)
    body = await read_json(request)
    avatar_id = domain.clean_avatar_id(body.get("avatar_id"))
    target = await views.load_operator(request.app[POOL], request.app[STORE], me, request.match_info["id"])
    await run(request, operator_stream(target.id), domain.evolve_operator,
              lambda t: domain.decide_avatar(me, t, avatar_id))
    return ok(views.operator_view(await views.operator_row(request.app[POOL], me, target.id), private=True))


async def can_set_avatar(request: web.Request) -> web.Response:
    """Lets the gateway refuse an upload before storing anything."""
    me = actor(request)
    target = await views.load_operator(request.app[POOL], request.app[STORE], me, request.match_info["id"])
    if me.operator_id != target.id:
        domain.require_manage(me, target)
    return web.Response(status=204)


# ---- templates ----------------------------------------------------------------

async def list_templates(request: web.Request) -> web.Response:
    return ok({"templates": await views.templates(request.app[POOL], actor(request), request.query.get("q", ""))})


async def create_template(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    template_id = str(uuid.uuid4())
    outcome = await run(request, template_stream(template_id), domain.evolve_template,
                        lambda _: domain.decide_create_template(me, template_id, body.get("title"), body.get("text")))
    return ok(await views.template(request.app[POOL], outcome.result["stream_id"].removeprefix("template-")),
              status=201)


async def update_template(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    template = await views.load_template(request.app[STORE], request.match_info["id"])
    domain.decide_update_template(me, template, body.get("title"), body.get("text"))
    await run(request, template_stream(template.id), domain.evolve_template,
              lambda t: domain.decide_update_template(me, t, body.get("title"), body.get("text")))
    return ok(await views.template(request.app[POOL], template.id))


async def delete_template(request: web.Request) -> web.Response:
    me = actor(request)
    template = await views.load_template(request.app[STORE], request.match_info["id"])
    domain.decide_delete_template(me, template)
    await run(request, template_stream(template.id), domain.evolve_template,
              lambda t: domain.decide_delete_template(me, t))
    return web.Response(status=204)


ROUTES = [
    ("POST", "/api/session", login),
    ("GET", "/api/session", whoami),
    ("DELETE", "/api/session", logout),
    ("GET", "/api/project", get_project),
    ("POST", "/api/project/chat/enable", enable_chat),
    ("POST", "/api/project/chat/disable", disable_chat),
    ("PUT", "/api/project/widget", put_widget),
    ("PUT", "/api/project/sites", put_sites),
    ("PUT", "/api/project/triggers", put_triggers),
    ("GET", "/api/widget/config", widget_config),
    ("GET", "/api/widget/texts", widget_texts),
    ("GET", "/api/operators", list_operators),
    ("POST", "/api/operators", add_operator),
    ("GET", "/api/operators/{id}", get_operator),
    ("PATCH", "/api/operators/{id}", update_operator),
    ("DELETE", "/api/operators/{id}", remove),
    ("POST", "/api/operators/{id}/deactivate", deactivate),
    ("POST", "/api/operators/{id}/reactivate", reactivate),
    ("GET", "/api/templates", list_templates),
    ("POST", "/api/templates", create_template),
    ("PATCH", "/api/templates/{id}", update_template),
    ("DELETE", "/api/templates/{id}", delete_template),
    ("POST", "/internal/sessions/verify", verify),
    ("GET", "/internal/sessions/{session_id}", session_status),
    ("GET", "/internal/operators/{id}/avatar-permission", can_set_avatar),
    ("PUT", "/internal/operators/{id}/avatar", set_avatar),
]


def add_routes(app: web.Application) -> None:
    accounts.rotate_seconds(), accounts.rotation_grace_seconds()  # a malformed setting stops the start, not requests
    app.middlewares.append(session_middleware)   # outer: sees the mapped refusals, to hand a rotated token back
    app.middlewares.append(refusals_middleware)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
