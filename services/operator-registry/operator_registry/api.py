"""operator-registry's HTTP API. The gateway forwards the public `/api/...` routes here
unchanged (paths, bodies, the session cookie or bearer token); this service
authenticates every request itself and applies the permission rules of domain.py.

Errors are `{"error": {"code": ..., "message": ...}}` with a fitting HTTP status."""
from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable

import asyncpg
from aiohttp import web

from parley.envelope import Event, new_event
from parley.eventstore import Outcome
from parley.http import Rejected, error_response as error, ok, read_json
from parley.service import POOL, STORE

from operator_registry import accounts, commands, domain
from operator_registry.domain import Actor
from operator_registry.widget_texts import DEFAULT_TEXTS, LANGUAGES, MULTILINE_KEYS, TEXT_LIMITS, effective_texts

SESSION_COOKIE = "parley_session"
ROTATED_TOKEN_HEADER = "X-Parley-Session"
SESSION = web.RequestKey("session", object)


@web.middleware
async def email_taken_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == "operators_email":
            raise Rejected(409, "email_taken", "Another operator of this project already uses this email.")
        raise


def token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def set_session_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=accounts.SESSION_IDLE_DAYS * 86400, httponly=True,
                        samesite="Lax", path="/")
    response.headers[ROTATED_TOKEN_HEADER] = token


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Resolves the session (if any) once per request; a rotated token goes back to the client."""
    session = await accounts.verify_session(request.app[POOL], token_of(request))
    request[SESSION] = session
    response = await handler(request)
    if session is not None and session.new_token:
        set_session_cookie(response, session.new_token)
    return response


def actor(request: web.Request) -> Actor:
    session = request[SESSION]
    if session is None:
        raise Rejected(401, "unauthenticated", "Log in first: this needs an operator session.")
    return session.actor


def command_id(request: web.Request) -> str:
    """The client's idempotency key: a retried request returns the first outcome."""
    key = request.headers.get("Idempotency-Key", "")
    return f"{request.method} {request.path} {key}" if 8 <= len(key) <= 100 else str(uuid.uuid4())


async def run(request: web.Request, stream_id: str, evolve, decide: Callable[[Any], list[Event]],
              *, password_hash: str | None = None, command: str | None = None,
              extra: Callable[[asyncpg.Connection, list[Event]], Awaitable[None]] | None = None) -> Outcome:
    return await commands.run(request.app[STORE], command or command_id(request), stream_id, evolve, decide,
                              password_hash=password_hash, extra=extra)


# ---- views --------------------------------------------------------------------

_OPERATOR_COLUMNS = "id::text, project_id, name, email, is_admin, is_owner, active, avatar_id"


def operator_view(row: asyncpg.Record, *, private: bool) -> dict[str, Any]:
    view = {"id": row["id"], "name": row["name"], "is_admin": row["is_admin"], "is_owner": row["is_owner"],
            "active": row["active"],
            "avatar_url": f"/avatars/{row['avatar_id']}.png" if row["avatar_id"] else None}
    if private:
        view["email"] = row["email"]
    return view


async def operator_row(request: web.Request, operator_id: str) -> asyncpg.Record:
    me = actor(request)
    try:
        uuid.UUID(operator_id)
    except ValueError:
        raise domain.not_found("Operator")
    row = await request.app[POOL].fetchrow(
        f"select {_OPERATOR_COLUMNS} from operators where id = $1 and project_id = $2 and not removed",
        operator_id, me.project_id)
    if row is None:
        raise domain.not_found("Operator")
    return row


async def load_operator(request: web.Request, operator_id: str) -> domain.Operator:
    await operator_row(request, operator_id)  # 404 unless it is in the actor's project
    events = await request.app[STORE].load(f"operator-{operator_id}")
    return domain.fold(domain.evolve_operator, events)


async def project_row(request: web.Request, project_id: str) -> asyncpg.Record:
    row = await request.app[POOL].fetchrow("select * from projects where id = $1", project_id)
    if row is None:
        raise Rejected(404, "project_not_found", f"No project {project_id!r}.")
    return row


def project_view(row: asyncpg.Record, me: Actor) -> dict[str, Any]:
    view = {"id": row["id"], "name": row["name"], "chat_enabled": row["chat_enabled"],
            "language": row["language"], "texts": row["texts"], "sites": row["sites"]}
    if me.is_owner or me.is_admin:
        view["owner"] = {"name": row["owner_name"], "email": row["owner_email"],
                         "operator_id": str(row["owner_operator_id"])}
    return view


# ---- session ------------------------------------------------------------------

async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    project_id, email, password = body.get("project"), body.get("email"), body.get("password")
    if not all(isinstance(v, str) and v for v in (project_id, email, password)):
        return error(400, "credentials_required", "Send project, email and password.")
    pool = request.app[POOL]
    ip = request.headers.get("X-Forwarded-For", request.remote or "").split(",")[-1].strip()
    email_key, ip_key = f"email:{project_id}:{email.strip().lower()}", f"ip:{ip}"
    if await accounts.throttled(pool, email_key, ip_key):
        return error(429, "too_many_attempts", "Too many failed logins. Wait 15 minutes and try again.",
                     headers={"Retry-After": "900"})
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
        await accounts.record_failure(pool, email_key, ip_key)
        return error(401, "invalid_credentials", "Wrong project, email or password.")
    await pool.execute("delete from login_failures where key = $1", email_key)
    session_id = str(uuid.uuid4())
    tokens: list[str] = []

    async def start_session(conn: asyncpg.Connection, events: list[Event]) -> None:
        tokens.append(await accounts.create_session(conn, session_id, operator["id"], operator["project_id"]))

    if await pool.fetchval("select 1 from operators where id = $1", operator["id"]):
        await run(request, f"operator-{operator['id']}", domain.evolve_operator,
                  lambda _: [_event("operator.logged_in", operator, {"session_id": session_id})],
                  extra=start_session, command=session_id)
    else:  # the owner before enabling the chat: no operator stream yet
        async with pool.acquire() as conn:
            await start_session(conn, [])
    created = {"token": tokens[0]}
    session = await accounts.verify_session(pool, created["token"])
    response = ok({"token": created["token"], "operator": await me_view(request, session)}, status=201)
    set_session_cookie(response, created["token"])
    return response


def _event(type: str, operator, data: dict[str, Any]) -> Event:
    return new_event(type, f"operator-{operator['id']}", data, project_id=operator["project_id"])


async def me_view(request: web.Request, session: accounts.Session) -> dict[str, Any]:
    a = session.actor
    row = await request.app[POOL].fetchrow(f"select {_OPERATOR_COLUMNS} from operators where id = $1", a.operator_id)
    return {"id": a.operator_id, "project": a.project_id, "name": session.name, "email": session.email,
            "is_admin": a.is_admin, "is_owner": a.is_owner, "session_id": session.id,
            "avatar_url": f"/avatars/{row['avatar_id']}.png" if row and row["avatar_id"] else None}


async def whoami(request: web.Request) -> web.Response:
    actor(request)
    return ok(await me_view(request, request[SESSION]))


async def logout(request: web.Request) -> web.Response:
    me = actor(request)
    session_id = request[SESSION].id
    stream = f"operator-{me.operator_id}"
    if await request.app[POOL].fetchval("select 1 from operators where id = $1", me.operator_id):
        await run(request, stream, domain.evolve_operator, lambda _: [
            _event("operator.logged_out", {"id": me.operator_id, "project_id": me.project_id},
                   {"session_id": session_id, "reason": "logout"})])
    else:
        await request.app[POOL].execute("update sessions set revoked_at = now() where id = $1", session_id)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def verify(request: web.Request) -> web.Response:
    """For the gateway: who holds this token (used to authenticate WebSockets)."""
    body = await read_json(request)
    session = await accounts.verify_session(request.app[POOL], body.get("token"))
    if session is None:
        return error(401, "unauthenticated", "Unknown, expired or revoked session.")
    return ok(await me_view(request, session))


# ---- project ------------------------------------------------------------------

async def get_project(request: web.Request) -> web.Response:
    me = actor(request)
    return ok(project_view(await project_row(request, me.project_id), me))


async def _change_project(request: web.Request, decide) -> web.Response:
    me = actor(request)
    await run(request, f"project-{me.project_id}", domain.evolve_project, lambda p: decide(p, me))
    return ok(project_view(await project_row(request, me.project_id), me))


async def enable_chat(request: web.Request) -> web.Response:
    me = actor(request)
    await commands.enable_chat(request.app[STORE], command_id(request), me)
    return ok(project_view(await project_row(request, me.project_id), me))


async def disable_chat(request: web.Request) -> web.Response:
    return await _change_project(request, domain.decide_disable_chat)


async def put_widget(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _change_project(
        request, lambda p, me: domain.decide_widget_settings(p, me, body.get("language"), body.get("texts", {})))


async def put_sites(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _change_project(request, lambda p, me: domain.decide_sites(p, me, body.get("sites")))


async def widget_config(request: web.Request) -> web.Response:
    """Public: what the widget on a site needs to know about its project."""
    row = await project_row(request, request.query.get("project", ""))
    return ok({"project": row["id"], "enabled": row["chat_enabled"], "language": row["language"],
               "texts": effective_texts(row["language"], row["texts"]), "sites": row["sites"]})


async def widget_texts(_: web.Request) -> web.Response:
    """Public: the widget's standard texts in every language, their limits, which span lines."""
    return ok({"languages": list(LANGUAGES), "defaults": DEFAULT_TEXTS, "limits": TEXT_LIMITS,
               "multiline": sorted(MULTILINE_KEYS)})


# ---- operators ----------------------------------------------------------------

async def list_operators(request: web.Request) -> web.Response:
    me = actor(request)
    rows = await request.app[POOL].fetch(
        f"select {_OPERATOR_COLUMNS} from operators where project_id = $1 and not removed order by is_owner desc, name",
        me.project_id)
    private = me.is_admin or me.is_owner
    return ok({"operators": [operator_view(r, private=private or r["id"] == me.operator_id) for r in rows]})


async def get_operator(request: web.Request) -> web.Response:
    me = actor(request)
    row = await operator_row(request, request.match_info["id"])
    return ok(operator_view(row, private=me.is_admin or me.is_owner or row["id"] == me.operator_id))


async def add_operator(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    password = domain.check_password(body.get("password"))
    operator_id = str(uuid.uuid4())
    # Checked before hashing: argon2 is slow on purpose, and a refused request should not pay for it.
    domain.decide_add_operator(me, operator_id, body.get("name"), body.get("email"), body.get("is_admin", False))
    outcome = await run(request, f"operator-{operator_id}", domain.evolve_operator,
                        lambda _: domain.decide_add_operator(me, operator_id, body.get("name"), body.get("email"),
                                                             body.get("is_admin", False)),
                        password_hash=await accounts.hash_password(password))
    created = outcome.result["stream_id"].removeprefix("operator-")
    return ok(operator_view(await operator_row(request, created), private=True), status=201)


async def update_operator(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    changes = {k: body[k] for k in ("name", "email", "is_admin") if k in body}
    password = body.get("password")
    password_hash = await accounts.hash_password(domain.check_password(password)) if password is not None else None
    target = await load_operator(request, request.match_info["id"])
    session_id = request[SESSION].id

    async def revoke_other_sessions(conn: asyncpg.Connection, events: list[Event]) -> None:
        if any(e.type == "operator.password_changed" for e in events):
            await accounts.revoke_sessions(conn, target.id, keep=session_id if target.id == me.operator_id else None)

    await run(request, f"operator-{target.id}", domain.evolve_operator,
              lambda t: domain.decide_update_operator(me, t, changes, password is not None),
              password_hash=password_hash, extra=revoke_other_sessions)
    return ok(operator_view(await operator_row(request, target.id), private=True))


async def _lifecycle(request: web.Request, decide) -> web.Response:
    me = actor(request)
    target = await load_operator(request, request.match_info["id"])

    async def revoke(conn: asyncpg.Connection, events: list[Event]) -> None:
        if any(e.type in ("operator.deactivated", "operator.removed") for e in events):
            await accounts.revoke_sessions(conn, target.id)

    await run(request, f"operator-{target.id}", domain.evolve_operator, lambda t: decide(me, t), extra=revoke)
    return web.Response(status=204)


async def deactivate(request: web.Request) -> web.Response:
    return await _lifecycle(request, domain.decide_deactivate)


async def reactivate(request: web.Request) -> web.Response:
    return await _lifecycle(request, domain.decide_reactivate)


async def remove(request: web.Request) -> web.Response:
    return await _lifecycle(request, domain.decide_remove)


async def set_avatar(request: web.Request) -> web.Response:
    """Called by the gateway after it validated and stored the image."""
    me = actor(request)
    body = await read_json(request)
    avatar_id = body.get("avatar_id")
    if not isinstance(avatar_id, str) or len(avatar_id) != 32:
        return error(422, "avatar_id_invalid", "avatar_id must be the gateway's 32-character file id.")
    target = await load_operator(request, request.match_info["id"])
    await run(request, f"operator-{target.id}", domain.evolve_operator,
              lambda t: domain.decide_avatar(me, t, avatar_id))
    return ok(operator_view(await operator_row(request, target.id), private=True))


async def can_set_avatar(request: web.Request) -> web.Response:
    """Lets the gateway refuse an upload before storing anything."""
    me = actor(request)
    target = await load_operator(request, request.match_info["id"])
    if me.operator_id != target.id:
        domain.require_manage(me, target)
    return web.Response(status=204)


# ---- templates ----------------------------------------------------------------

def template_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "text": row["text"]}


def search_query(q: str) -> str:
    """'дост кур' -> 'дост:* & кур:*': every word, as a prefix."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in q.lower()).split() if w][:10]
    return " & ".join(f"{w}:*" for w in words)


async def list_templates(request: web.Request) -> web.Response:
    me = actor(request)
    q = search_query(request.query.get("q", ""))
    pool = request.app[POOL]
    if q:
        rows = await pool.fetch(
            """select id::text, title, text from templates, to_tsquery('simple', $2) query
               where project_id = $1 and not deleted and search @@ query
               order by ts_rank(search, query) desc, title limit 50""", me.project_id, q)
    else:
        rows = await pool.fetch(
            "select id::text, title, text from templates where project_id = $1 and not deleted order by title limit 200",
            me.project_id)
    return ok({"templates": [template_view(r) for r in rows]})


async def _template(request: web.Request) -> domain.Template | None:
    try:
        template_id = str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise domain.not_found("Template")
    return domain.fold(domain.evolve_template, await request.app[STORE].load(f"template-{template_id}"))


async def create_template(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    template_id = str(uuid.uuid4())
    outcome = await run(request, f"template-{template_id}", domain.evolve_template,
                        lambda _: domain.decide_create_template(me, template_id, body.get("title"), body.get("text")))
    row = await request.app[POOL].fetchrow("select id::text, title, text from templates where id = $1",
                                           outcome.result["stream_id"].removeprefix("template-"))
    return ok(template_view(row), status=201)


async def update_template(request: web.Request) -> web.Response:
    me = actor(request)
    body = await read_json(request)
    template = await _template(request)
    domain.decide_update_template(me, template, body.get("title"), body.get("text"))
    await run(request, f"template-{template.id}", domain.evolve_template,
              lambda t: domain.decide_update_template(me, t, body.get("title"), body.get("text")))
    row = await request.app[POOL].fetchrow("select id::text, title, text from templates where id = $1", template.id)
    return ok(template_view(row))


async def delete_template(request: web.Request) -> web.Response:
    me = actor(request)
    template = await _template(request)
    domain.decide_delete_template(me, template)
    await run(request, f"template-{template.id}", domain.evolve_template,
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
    ("GET", "/api/widget/config", widget_config),
    ("GET", "/api/widget/texts", widget_texts),
    ("GET", "/api/operators", list_operators),
    ("POST", "/api/operators", add_operator),
    ("GET", "/api/operators/{id}", get_operator),
    ("PATCH", "/api/operators/{id}", update_operator),
    ("DELETE", "/api/operators/{id}", remove),
    ("POST", "/api/operators/{id}/deactivate", deactivate),
    ("POST", "/api/operators/{id}/reactivate", reactivate),
    ("PUT", "/api/operators/{id}/avatar", set_avatar),
    ("GET", "/api/templates", list_templates),
    ("POST", "/api/templates", create_template),
    ("PATCH", "/api/templates/{id}", update_template),
    ("DELETE", "/api/templates/{id}", delete_template),
    ("POST", "/internal/sessions/verify", verify),
    ("GET", "/internal/operators/{id}/avatar-permission", can_set_avatar),
]


def add_routes(app: web.Application) -> None:
    app.middlewares.append(email_taken_middleware)
    app.middlewares.append(session_middleware)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
