"""The sessions page (issue 23): an operator sees where they are logged in (device,
address, opened, last seen) and ends any one session, or all but this one; the owner sees
and ends anyone's. Ending a session is `operator.logged_out` (reason `revoked`) on the
operator's stream, as a logout is: the projection revokes it and every gateway closes its
open sockets."""
from __future__ import annotations

from aiohttp import web

from parley.contract import canonical_uuid, operator_stream
from parley.http import Rejected, id_in_path, ok
from parley.service import POOL

from operator_registry import accounts, domain
from operator_registry.authentication import SESSION, actor, owner, run
from operator_registry.commands import operator_event


def _view(row, current: str | None) -> dict:
    return {"id": row["id"], "user_agent": row["user_agent"], "address": row["address"],
            "created_at": row["created_at"].isoformat(), "last_used_at": row["last_used_at"].isoformat(),
            "current": row["id"] == current}


def _their_id(request: web.Request) -> str:
    operator_id = id_in_path(request, "No such operator here.")
    return operator_id


async def _operator(request: web.Request, operator_id: str | None) -> dict:
    """The operator whose sessions these are: oneself, or anyone of the project for the owner."""
    me = actor(request)
    if operator_id is None or operator_id == me.operator_id:
        return {"id": me.operator_id, "project_id": me.project_id}
    owner(request, "see or end another operator's sessions")
    row = await request.app[POOL].fetchrow(
        "select id::text, project_id from operators where id = $1 and project_id = $2 and not removed",
        operator_id, me.project_id)
    if row is None:
        raise Rejected(404, "not_found", "No such operator here.")
    return dict(row)


async def _end(request: web.Request, operator: dict, session_ids: list[str]) -> None:
    if not session_ids:
        return
    if not await request.app[POOL].fetchval("select 1 from operators where id = $1", operator["id"]):
        # the owner before enabling the chat has no operator stream: the rows alone
        await request.app[POOL].execute("update sessions set revoked_at = now() where id = any($1::uuid[])",
                                        session_ids)
        return
    await run(request, operator_stream(operator["id"]), domain.evolve_operator, lambda _: [
        operator_event("operator.logged_out", operator, {"session_id": sid, "reason": "revoked"}) for sid in session_ids])


async def _list(request: web.Request, operator: dict) -> web.Response:
    rows = await accounts.open_sessions(request.app[POOL], operator["id"])
    return ok({"sessions": [_view(r, request[SESSION].id) for r in rows]})


async def list_mine(request: web.Request) -> web.Response:
    return await _list(request, await _operator(request, None))


async def list_theirs(request: web.Request) -> web.Response:
    return await _list(request, await _operator(request, _their_id(request)))


async def _end_one(request: web.Request, operator: dict) -> web.Response:
    session_id = canonical_uuid(request.match_info["session_id"])
    standing = {r["id"] for r in await accounts.open_sessions(request.app[POOL], operator["id"])}
    if session_id not in standing:
        raise Rejected(404, "not_found", "No such session (it may have ended already).")
    await _end(request, operator, [session_id])
    return web.Response(status=204)


async def end_mine(request: web.Request) -> web.Response:
    return await _end_one(request, await _operator(request, None))


async def end_theirs(request: web.Request) -> web.Response:
    return await _end_one(request, await _operator(request, _their_id(request)))


async def end_my_others(request: web.Request) -> web.Response:
    """Every session of mine but the one this request comes from."""
    operator = await _operator(request, None)
    current = request[SESSION].id
    others = [r["id"] for r in await accounts.open_sessions(request.app[POOL], operator["id"]) if r["id"] != current]
    await _end(request, operator, others)
    return ok({"ended": len(others)})


ROUTES = [
    ("GET", "/api/me/sessions", list_mine),
    ("POST", "/api/me/sessions/end-others", end_my_others),
    ("DELETE", "/api/me/sessions/{session_id}", end_mine),
    ("GET", "/api/operators/{id}/sessions", list_theirs),
    ("DELETE", "/api/operators/{id}/sessions/{session_id}", end_theirs),
]
