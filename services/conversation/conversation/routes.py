"""The conversation service's HTTP routes, called by the gateway only: each reads the
request (path id, Idempotency-Key, JSON body, the acting operator) and hands plain
values to a command handler (handlers.py) or a read (views.py). Nothing here decides.

The gateway authenticates visitors (signed visitor token) and operators (session) and
passes who acts: visitor calls carry `project_id` and `visitor_id` in the body,
operator calls the operator in the actor header (contract.ACTOR_HEADER, JSON), believed
because every call here is signed (parley.internal_auth). Every input gets a final
answer: a 4xx with a code, or a 503 with Retry-After when the store is busy (parley.http)."""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

from aiohttp import web

from parley import call_batches
from parley.actor import actor_of
from parley.envelope import Event
from parley.http import Rejected, id_in_path, ok, read_json
from parley.service import POOL, STORE

from conversation import domain, handlers, identities, receipts, search_views, views
from conversation.current_conversations import CURRENT, CurrentConversations
from conversation.domain import Operator

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{8,128}$")


def operator_of(request: web.Request) -> Operator:
    """The operator the gateway authenticated (parley.actor: strict types, 401 otherwise)."""
    return Operator(**dataclasses.asdict(actor_of(request)))


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise Rejected(422, "idempotency_key_invalid", "Idempotency-Key is 8-128 printable ASCII characters.")
    return key


def conversation_id_of(request: web.Request) -> str:
    """The path's id, spelled the one canonical way (`urn:uuid:`, braces, bare hex: 404)."""
    return id_in_path(request, "Conversation not found.")


async def operator_route(request: web.Request, kind: str,
                         decide: Callable[[domain.Conversation | None, Operator, str], list[Event]]) -> web.Response:
    """An operator command on the path's conversation (handlers.operator_command)."""
    return ok(await handlers.operator_command(request.app, operator_of(request), conversation_id_of(request),
                                              idempotency_key(request), kind, decide))


# ---- reads ----------------------------------------------------------------------

async def visitor_conversation(request: web.Request) -> web.Response:
    project_id, visitor_id = handlers.visitor_of(request.query)
    current = await request.app[CURRENT].of(project_id, visitor_id)
    return ok({"conversation_id": current["id"] if current is not None else None,
               "status": current["status"] if current is not None else None})


async def conversation_events(request: web.Request) -> web.Response:
    """Every event after `after` (the gateway picks what each audience may see)."""
    conversation_id = conversation_id_of(request)
    try:
        after = int(request.query.get("after", "0") or 0)
    except ValueError:
        raise Rejected(422, "after_invalid", "after is a stream version (a whole number).")
    return ok({"events": await views.events(request.app[STORE], conversation_id, after)})


async def search(request: web.Request) -> web.Response:
    return ok(await search_views.search(request.app[POOL], operator_of(request), request.query.get("q"),
                                        request.query.get("after")))


async def email_transcript(request: web.Request) -> web.Response:
    """crm-bridge's: a conversation to email as it stood at `upto` (views.email_transcript)."""
    try:
        upto = int(request.query.get("upto", ""))
    except ValueError:
        raise Rejected(422, "upto_invalid", "upto is a stream version (a whole number).") from None
    found = await views.email_transcript(request.app[STORE], conversation_id_of(request), upto)
    if found is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    return ok(found)


async def conversation_summary(request: web.Request) -> web.Response:
    summary = await views.summary(request.app[POOL], conversation_id_of(request))
    if summary is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    return ok(summary)


async def inbox(request: web.Request) -> web.Response:
    view = request.query.get("view", "new")
    return ok({"view": view, "conversations": await views.inbox(request.app[POOL], operator_of(request), view)})


async def transcript(request: web.Request) -> web.Response:
    return ok(await views.transcript(request.app[STORE], request.app[POOL], operator_of(request),
                                     conversation_id_of(request)))


async def client(request: web.Request) -> web.Response:
    return ok(await views.client_card(request.app[POOL], operator_of(request), conversation_id_of(request)))


# ---- commands -------------------------------------------------------------------

async def close_idle(request: web.Request) -> web.Response:
    conversation_id = conversation_id_of(request)
    key = idempotency_key(request)
    if key is None:
        raise Rejected(422, "idempotency_key_required", "Send the timer id as Idempotency-Key.")
    return ok(await handlers.close_idle(request.app, conversation_id, key, await read_json(request)))


async def take(request: web.Request) -> web.Response:
    return await operator_route(request, "take", lambda s, me, _: domain.decide_take(s, me))


async def reply(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await operator_route(request, "reply", lambda s, me, message_id: domain.decide_reply(
        s, me, message_id, body.get("text"), body.get("attachment")))


async def note(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await operator_route(request, "note", lambda s, me, note_id: domain.decide_note(s, me, note_id, body.get("text")))


async def set_status(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await operator_route(request, "status", lambda s, me, _: domain.decide_status(s, me, body.get("status")))


async def assign(request: web.Request) -> web.Response:
    target = handlers.assignee(await read_json(request))
    return await operator_route(request, "assign", lambda s, me, _: domain.decide_assign(s, me, target))


async def set_contacts(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await operator_route(request, "contacts", lambda s, me, _: domain.decide_operator_contacts(s, me, body))


async def operator_read(request: web.Request) -> web.Response:
    """The operator shows the conversation up to `seq` (receipts.py decides)."""
    body = await read_json(request)
    return await operator_route(request, "read", lambda s, me, _: receipts.decide_operator_read(s, me, body.get("seq")))


async def request_lead(request: web.Request) -> web.Response:
    body = await read_json(request)
    return ok(await handlers.request_lead(request.app, operator_of(request), conversation_id_of(request),
                                          idempotency_key(request), body))


# The visitor's commands: alone or in a batch of the gateway's (parley.call_batches).
COMMANDS = [
    ("/internal/visitor/messages", handlers.visitor_message),
    ("/internal/visitor/params", handlers.visitor_params),
    ("/internal/visitor/contacts", handlers.visitor_contacts),
    ("/internal/visitor/offline", handlers.visitor_offline),
    ("/internal/visitor/read", handlers.visitor_read),
    ("/internal/visitor/transcript", handlers.visitor_transcript),
]

ROUTES = [
    ("GET", "/internal/visitor/conversation", visitor_conversation),
    ("POST", "/internal/conversations/{id}/close-idle", close_idle),
    ("GET", "/internal/conversations/{id}/events", conversation_events),
    ("GET", "/internal/conversations/{id}/summary", conversation_summary),
    ("GET", "/internal/conversations/{id}/email-transcript", email_transcript),
    ("GET", "/api/inbox", inbox),
    ("GET", "/api/search", search),
    ("GET", "/api/conversations/{id}", transcript),
    ("GET", "/api/conversations/{id}/client", client),
    ("POST", "/api/conversations/{id}/take", take),
    ("POST", "/api/conversations/{id}/messages", reply),
    ("POST", "/api/conversations/{id}/notes", note),
    ("POST", "/api/conversations/{id}/status", set_status),
    ("POST", "/api/conversations/{id}/assign", assign),
    ("POST", "/api/conversations/{id}/lead", request_lead),
    ("POST", "/api/conversations/{id}/contacts", set_contacts),
    ("POST", "/api/conversations/{id}/read", operator_read),
    ("PUT", "/internal/visitors/identity", identities.put_identity),
]


async def _current_conversations(app: web.Application) -> None:
    app[CURRENT] = CurrentConversations(app[POOL])


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_current_conversations)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    for path, handler in COMMANDS:
        call_batches.add_command(app, path, handler)
