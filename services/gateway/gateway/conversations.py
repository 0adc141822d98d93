"""The operator side of conversations: REST for the inbox, transcript and commands,
and attachment downloads. The gateway authenticates the operator (their session, via
operator-registry) and the conversation service decides what they may do."""
from __future__ import annotations

from aiohttp import web

from parley.http import Rejected, ok, read_json

from gateway import audience, files
from gateway.conversation_upstream import call, checked
from gateway.operator_sockets import SESSION_COOKIE, verify_token
from gateway.upstream import HTTP, forwarded_headers, registry_url
from gateway.visitor_socket import visitor_file


async def current_operator(request: web.Request) -> dict:
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.startswith("Bearer ") else request.cookies.get(SESSION_COOKIE)
    operator = await verify_token(request.app, token) if token else None
    if operator is None:
        raise Rejected(401, "unauthenticated", "Log in first: this needs an operator session.")
    return operator


def _with_operator_views(body: dict) -> dict:
    body["events"] = [audience.for_operator(e) for e in body.get("events", [])]
    return body


async def inbox(request: web.Request) -> web.Response:
    me = await current_operator(request)
    return ok(await checked(request.app, "GET", "/api/inbox", params=dict(request.query), operator=me))


async def transcript(request: web.Request) -> web.Response:
    me = await current_operator(request)
    return ok(_with_operator_views(
        await checked(request.app, "GET", f"/api/conversations/{request.match_info['id']}", operator=me)))


async def command(request: web.Request) -> web.Response:
    """take, messages, notes, status, lead: the same call, the service decides."""
    me = await current_operator(request)
    body = await read_json(request) if request.can_read_body else {}
    if request.match_info["action"] == "messages":
        body["attachment"] = await files.attachment_for(request, body.get("attachment"), me["project"],
                                                        f"operator:{me['id']}")
    headers = {"Idempotency-Key": request.headers["Idempotency-Key"]} if "Idempotency-Key" in request.headers else {}
    conversation_id = request.match_info["id"]
    result = await checked(request.app, "POST", f"/api/conversations/{conversation_id}/{request.match_info['action']}",
                           json=body, operator=me, headers=headers)
    if body.get("attachment"):
        await files.link(request, body["attachment"], conversation_id)
    return ok(_with_operator_views(result))


async def assign(request: web.Request) -> web.Response:
    me = await current_operator(request)
    body = await read_json(request)
    target_id = body.get("operator_id")
    if not isinstance(target_id, str):
        raise Rejected(422, "operator_required", "Send {\"operator_id\": \"...\"}.")
    async with request.app[HTTP].get(f"{registry_url()}/api/operators/{target_id}",
                                     headers=forwarded_headers(request)) as r:
        if r.status != 200:
            raise Rejected(404 if r.status == 404 else r.status, "operator_not_found", "No such operator here.")
        target = await r.json()
    if not target["active"]:
        raise Rejected(422, "operator_inactive", f"{target['name']} is deactivated.")
    result = await checked(request.app, "POST", f"/api/conversations/{request.match_info['id']}/assign", json={
        "operator": {"id": target["id"], "project": me["project"], "name": target["name"],
                     "avatar_url": target.get("avatar_url")}}, operator=me)
    return ok(_with_operator_views(result))


async def operator_attachment(request: web.Request) -> web.Response:
    me = await current_operator(request)
    return files.uploaded(await files.store_upload(request, me["project"], f"operator:{me['id']}"))


async def download(request: web.Request) -> web.StreamResponse:
    row = await files.file_row(request)
    if request.query.get("token") and await visitor_file(request, row):
        return files.download(row)
    try:
        me = await current_operator(request)
    except Rejected:
        raise web.HTTPNotFound()  # do not tell strangers the file exists
    if me["project"] != row["project_id"]:
        raise web.HTTPNotFound()
    if row["uploaded_by"] == f"operator:{me['id']}":
        return files.download(row)
    if row["conversation_id"]:
        status, summary = await call(request.app, "GET", f"/internal/conversations/{row['conversation_id']}/summary")
        if status == 200 and audience.operator_may_see(summary["project_id"], summary["assignee_id"], me):
            return files.download(row)
    raise web.HTTPNotFound()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/inbox", inbox)
    app.router.add_get("/api/conversations/{id}", transcript)
    app.router.add_post("/api/conversations/{id}/assign", assign)
    app.router.add_post("/api/conversations/{id}/attachments", operator_attachment)
    app.router.add_post("/api/conversations/{id}/{action:take|messages|notes|status|lead}", command)
    app.router.add_get("/files/{id}", download)
