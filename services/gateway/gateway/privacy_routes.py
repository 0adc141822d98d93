"""Data rights for owners and admins (issue 20), forwarded to the conversation service,
which owns the conversations and runs the erasure (its erasure_requests.py):

- `POST /api/project/privacy/erasures` {one of conversation_id, visitor_id, phone,
  email}: 202 {id, status}; an Idempotency-Key makes a retry the same erasure;
- `GET /api/project/privacy/erasures/{id}`: its status and what was erased;
- retention (`GET|PUT /api/project/privacy/retention`) is one of admin_settings_routes'
  forwarded settings;
- `GET /api/project/privacy/export?<one of the four>`: one JSON document with every
  matching conversation (transcript, operator notes marked as such, contacts, params,
  pages, rating, files with their download links) and the leads crm-bridge sent for
  each; crm-bridge not answering leaves `leads: null` with `leads_unavailable`.

Refused before any upstream call: someone who is not an admin (403) and an id that is
not a UUID (404)."""
from __future__ import annotations

from aiohttp import web

from parley.http import MAX_JSON_BYTES, Rejected, id_in_path, ok, read_body
from parley.service_client import path

from gateway import auth
from gateway.upstreams import as_operator, conversation, crm, relay


async def _admin(request: web.Request) -> dict:
    me = await auth.current_operator(request)
    if me.get("is_admin") is not True:
        raise Rejected(403, "admin_only", "Only the owner or an admin may export or erase a visitor's data.")
    return me


async def request_erasure(request: web.Request) -> web.Response:
    me = await _admin(request)
    body = await read_body(request, MAX_JSON_BYTES)
    headers = as_operator(request, me)
    if request.headers.get("Idempotency-Key"):
        headers["Idempotency-Key"] = request.headers["Idempotency-Key"][:200]
    return relay(await conversation(request.app).call(
        "POST", path("api", "project", "privacy", "erasures"), body=body, headers=headers,
        content_type=request.headers.get("Content-Type") if body else None))


async def erasure_status(request: web.Request) -> web.Response:
    me = await _admin(request)
    erasure_id = id_in_path(request, "No such erasure.")
    return relay(await conversation(request.app).call(
        "GET", path("api", "project", "privacy", "erasures", erasure_id), headers=as_operator(request, me)))


async def export(request: web.Request) -> web.Response:
    me = await _admin(request)
    headers = as_operator(request, me)
    document = await conversation(request.app).checked("GET", path("api", "project", "privacy", "export"),
                                                       params=dict(request.query), headers=headers)
    for c in document["conversations"]:
        try:
            c["leads"] = (await crm(request.app).checked("GET", path("api", "conversations", c["id"], "leads"),
                                                         headers=headers))["leads"]
        except Rejected as e:
            if e.status < 500:
                raise
            c["leads"], c["leads_unavailable"] = None, "crm-bridge is not answering: try the export again later."
    answer = ok(document)
    answer.headers["Content-Disposition"] = 'attachment; filename="parley-export.json"'
    return answer


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/project/privacy/export", export)
    app.router.add_post("/api/project/privacy/erasures", request_erasure)
    app.router.add_get("/api/project/privacy/erasures/{id}", erasure_status)
