"""A conversation's CRM side, for any operator who may see the conversation:

- `GET /api/conversations/{id}/leads`: its handoffs (pending, "Lead #123 created,
  responsible: Anna Petrova", or failed with the reason and whether a retry can help);
- `POST /api/conversations/{id}/leads/{request_id}/retry`: a retry of a failed one, by
  the conversation's operator or an admin (idempotent in crm-bridge);
- `GET /api/conversations/{id}/client[?refresh=1]`: the returning client's card.

The card joins the conversation service's answer (who the client is, their earlier
conversations by visitor token, phone or email) with crm-bridge's (the leads Parley
made for them and the CRM's own record). The card never fails because of the CRM side:
with crm-bridge or the CRM down, it comes back with `crm.stale` set and the reason.

The CRM is asked only about contacts an operator entered or confirmed (or the site
verified): a visitor who types someone else's phone learns nothing and shows the
operator nothing of that person's CRM records (issue 23). Otherwise `crm.unconfirmed`
lists the contacts to confirm first (the app's "Confirm and look up")."""
from __future__ import annotations

import logging

from aiohttp import web

from parley.http import Rejected, id_in_path, ok
from parley.service_client import path

from gateway import auth
from gateway.live import audience
from gateway.conversations import conversation_id
from gateway.upstreams import as_operator, conversation, conversation_summary, crm

log = logging.getLogger(__name__)


async def _visible(request: web.Request) -> tuple[dict, str, dict]:
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    summary = await conversation_summary(request.app, cid)
    if summary is None or not audience.may_see(summary["project_id"], summary["assignee_id"], me):
        raise Rejected(404, "not_found", "Conversation not found.")
    return me, cid, summary


async def leads(request: web.Request) -> web.Response:
    me, cid, _ = await _visible(request)
    return ok(await crm(request.app).checked("GET", path("api", "conversations", cid, "leads"),
                                             headers=as_operator(request, me)))


async def retry(request: web.Request) -> web.Response:
    me, cid, summary = await _visible(request)
    request_id = id_in_path(request, "No such lead request.", "request_id")
    if summary["assignee_id"] != me["id"] and not me["is_admin"]:
        raise Rejected(403, "forbidden", "Only the conversation's operator or an admin may retry its handoff.")
    return ok(await crm(request.app).checked("POST", path("api", "conversations", cid, "leads", request_id, "retry"),
                                             headers=as_operator(request, me)))


async def client_card(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    cid = conversation_id(request)
    refresh = request.query.get("refresh") in ("1", "true")
    headers = as_operator(request, me)
    who = await conversation(request.app).checked("GET", path("api", "conversations", cid, "client"), headers=headers)
    earlier, hidden = who.pop("conversations"), who.pop("hidden_conversations", 0)
    confirmed = set(who.get("confirmed") or ())
    asked = {k: who[k] if k in confirmed else None for k in ("phone", "email")}
    try:
        found = await crm(request.app).checked(
            "POST", path("api", "client-card"), headers=headers,
            json={**asked, "refresh": refresh, "conversation_ids": [cid] + [c["id"] for c in earlier]})
    except Rejected as e:
        if e.status < 500:
            raise
        log.warning("client card without its CRM side", extra={"conversation_id": cid, "code": e.code})
        found = {"leads": [], "crm": {"kind": None, "leads": [], "fetched_at": None, "stale": True,
                                      "error": "The CRM bridge is not answering; the CRM side may be out of date."}}
    by_conversation: dict[str, list] = {}
    for lead in found["leads"]:
        by_conversation.setdefault(lead["conversation_id"], []).append(lead)
    for c in earlier:
        c["leads"] = by_conversation.get(c["id"], [])
    unconfirmed = [k for k in ("phone", "email") if who.get(k) and k not in confirmed]
    return ok({"client": who, "leads": by_conversation.get(cid, []), "earlier_conversations": earlier,
               "hidden_conversations": hidden,
               "crm": {**found["crm"], "unconfirmed": unconfirmed}})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/conversations/{id}/leads", leads)
    app.router.add_post("/api/conversations/{id}/leads/{request_id}/retry", retry)
    app.router.add_get("/api/conversations/{id}/client", client_card)
