"""The operator side of conversations: REST for the inbox, transcript and commands,
and attachment downloads. The gateway authenticates the operator (auth.py) and the
conversation service decides what they may do. Conversation ids are checked to be
UUIDs before any upstream call."""
from __future__ import annotations

from aiohttp import web

from parley.contract import canonical_uuid
from parley.http import Rejected, id_in_path, ok, read_json
from parley.service_client import path

from gateway import auth, files, visitor_files
from gateway.live import audience
from gateway.upstreams import as_caller, as_operator, conversation, conversation_summary, registry

ACTIONS = ("take", "messages", "notes", "status", "lead", "accept", "read")
_INBOX_VIEWS = ("new", "mine", "closed", "all")


def conversation_id(request: web.Request) -> str:
    return id_in_path(request, "Conversation not found.")


def _with_operator_views(body: dict) -> dict:
    body["events"] = [audience.for_operator(e) for e in body.get("events", [])]
    return body


async def inbox(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    view = request.query.get("view", "new")
    if view not in _INBOX_VIEWS:
        raise Rejected(422, "view_invalid", "view is new, mine, closed or all.")
    return ok(await conversation(request.app).checked("GET", path("api", "inbox"), params={"view": view},
                                                      headers=as_operator(request, me)))


async def search(request: web.Request) -> web.Response:
    """Search across the history the operator may see (the conversation service decides what)."""
    me = await auth.current_operator(request)
    params = {k: request.query[k] for k in ("q", "after") if k in request.query}
    return ok(await conversation(request.app).checked("GET", path("api", "search"), params=params,
                                                      headers=as_operator(request, me)))


async def transcript(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    return ok(_with_operator_views(await conversation(request.app).checked(
        "GET", path("api", "conversations", cid), headers=as_operator(request, me))))


async def command(request: web.Request) -> web.Response:
    """take, messages, notes, status, lead, accept (an offer): the same call, the service decides."""
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    action = request.match_info["action"]
    body = await read_json(request)
    if action == "messages":
        body["attachment"] = await files.attachment_for(request, body.get("attachment"), me["project"],
                                                        f"operator:{me['id']}", cid)
    elif body.get("attachment") is not None:
        # Only a reply carries a file; anything else would link (and so hand out) a file
        # that no message shows.
        raise Rejected(422, "attachment_not_allowed", f"Only a reply carries a file; {action} does not.")
    result = await conversation(request.app).checked("POST", path("api", "conversations", cid, action), json=body,
                                                     headers=as_operator(request, me))
    if body.get("attachment"):
        await files.link(request, body["attachment"], cid)
    return ok(_with_operator_views(result))


async def assign(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    body = await read_json(request)
    target_id = canonical_uuid(body.get("operator_id"))
    if target_id is None:
        raise Rejected(422, "operator_required", "Send {\"operator_id\": \"<uuid>\"}.")
    token, _ = auth.session_token(request)
    answer = await registry(request.app).call("GET", path("api", "operators", target_id),
                                              headers=as_caller(request, token))
    auth.take_rotation(request, answer)
    if answer.status == 404:
        raise Rejected(404, "operator_not_found", "No such operator here.")
    if answer.status != 200:
        raise Rejected(answer.status if answer.status < 500 else 503, "operator_not_found"
                       if answer.status < 500 else "service_unavailable", "Could not look the operator up.")
    target = answer.body
    if not target["active"]:
        raise Rejected(422, "operator_inactive", f"{target['name']} is deactivated.")
    result = await conversation(request.app).checked("POST", path("api", "conversations", cid, "assign"), json={
        "operator": {"id": target["id"], "project": me["project"], "name": target["name"],
                     "avatar_url": target.get("avatar_url")}}, headers=as_operator(request, me))
    return ok(_with_operator_views(result))


async def set_contacts(request: web.Request) -> web.Response:
    """PUT contacts: an operator types or corrects them (the assignee or an admin)."""
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    body = await read_json(request)
    contacts = {k: body.get(k) for k in ("name", "phone", "email")}
    return ok(_with_operator_views(await conversation(request.app).checked(
        "POST", path("api", "conversations", cid, "contacts"), json=contacts, headers=as_operator(request, me))))


async def operator_attachment(request: web.Request) -> web.Response:
    """An operator's file for a conversation they may see (it is linked when a message carries it)."""
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    summary = await conversation_summary(request.app, cid)
    if summary is None or not audience.may_see(summary["project_id"], summary["assignee_id"], me):
        raise Rejected(404, "not_found", "Conversation not found.")
    return files.uploaded(await files.store_upload(request, me["project"], f"operator:{me['id']}"))


def _no_such_file() -> Rejected:
    return Rejected(404, "not_found", "File not found.")


async def download(request: web.Request) -> web.StreamResponse:
    row = await files.file_row(request)
    if auth.visitor_token_of(request) and await visitor_files.may_download(request, row):
        return await files.download(request, row)
    try:
        me = await auth.current_operator(request)
    except Rejected as e:
        if e.status == 503:
            raise
        raise _no_such_file()  # do not tell strangers the file exists
    if me["project"] != row["project_id"]:
        raise _no_such_file()
    if row["uploaded_by"] == f"operator:{me['id']}":
        return await files.download(request, row)
    if row["conversation_id"]:
        answer = await conversation(request.app).call(
            "GET", path("internal", "conversations", row["conversation_id"], "summary"))
        if answer.status == 200 and audience.may_see(answer.body["project_id"], answer.body["assignee_id"], me):
            return await files.download(request, row)
    raise _no_such_file()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/inbox", inbox)
    app.router.add_get("/api/search", search)
    app.router.add_get("/api/conversations/{id}", transcript)
    app.router.add_post("/api/conversations/{id}/assign", assign)
    app.router.add_put("/api/conversations/{id}/contacts", set_contacts)
    app.router.add_post("/api/conversations/{id}/attachments", operator_attachment)
    app.router.add_post("/api/conversations/{id}/{action:take|messages|notes|status|lead|accept|read}", command)
    app.router.add_get("/files/{id}", download)
