"""The conversation service's HTTP API, called by the gateway only.

The gateway authenticates visitors (signed visitor token) and operators (session) and
passes who acts: visitor calls carry `project_id` and `visitor_id` in the body,
operator calls the operator in the `X-Parley-Actor` header (JSON). This port must stay
on the internal network. Permissions are decided here, in domain.py."""
from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

import asyncpg
import orjson
from aiohttp import web

from parley.envelope import Event
from parley.eventstore import Decision, EventStore, Outcome
from parley.http import Rejected, ok, read_json
from parley.service import POOL, STORE

from conversation import domain, projection
from conversation.domain import Operator

log = logging.getLogger(__name__)

ACTOR_HEADER = "X-Parley-Actor"
INBOX_LIMIT = 200


def operator_of(request: web.Request) -> Operator:
    try:
        d = orjson.loads(request.headers[ACTOR_HEADER])
        return Operator(id=d["id"], project_id=d["project"], name=d["name"], is_admin=bool(d["is_admin"]),
                        avatar_url=d.get("avatar_url"), email=d.get("email"))
    except (KeyError, orjson.JSONDecodeError, TypeError):
        raise Rejected(401, "unauthenticated", "No operator on this request.")


def command_key(request: web.Request, default: str) -> str:
    key = request.headers.get("Idempotency-Key", "")
    return key if 8 <= len(key) <= 64 else default


async def run(store: EventStore, command_id: str, conversation_id: str,
              decide: Callable[[domain.Conversation | None], list[Event]]) -> Outcome:
    async def effects(conn: asyncpg.Connection, events: list[Event]) -> None:
        for event in events:
            await projection.apply(conn, event)

    def decide_on(history: list[Event]) -> Decision:
        return Decision(decide(domain.fold(history)), {"conversation_id": conversation_id})

    return await store.execute(command_id, f"conversation-{conversation_id}", decide_on, effects=effects,
                               attempts=20)


def _conversation_id(request: web.Request) -> str:
    try:
        return str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise Rejected(404, "not_found", "Conversation not found.")


async def _load(request: web.Request, conversation_id: str) -> tuple[domain.Conversation | None, list[Event]]:
    events = await request.app[STORE].load(f"conversation-{conversation_id}")
    return domain.fold(events), events


# ---- visitor --------------------------------------------------------------------

async def _visitor_conversation(pool: asyncpg.Pool, project_id: str, visitor_id: str) -> str | None:
    found = await pool.fetchval(
        "select conversation_id::text from visitor_conversations where project_id = $1 and visitor_id = $2",
        project_id, visitor_id)
    return found


def _visitor(body: dict[str, Any]) -> tuple[str, str]:
    project_id, visitor_id = body.get("project_id"), body.get("visitor_id")
    if not isinstance(project_id, str) or not isinstance(visitor_id, str):
        raise Rejected(400, "visitor_required", "project_id and visitor_id are required.")
    return project_id, visitor_id


async def visitor_message(request: web.Request) -> web.Response:
    body = await read_json(request)
    project_id, visitor_id = _visitor(body)
    message_id = body.get("message_id")
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= 64:
        raise Rejected(422, "message_id_required", "Every message carries the widget's id for it.")
    pool, store = request.app[POOL], request.app[STORE]
    try:
        params = domain.clean_params(body.get("custom_params") or {})
    except Rejected as e:  # a site's bad params must not cost the visitor their message
        log.warning("custom params dropped", extra={"reason": e.message})
        params = {}
    for _ in range(3):
        conversation_id = await _visitor_conversation(pool, project_id, visitor_id) or str(uuid.uuid4())

        def decide(state: domain.Conversation | None) -> list[Event]:
            events = domain.decide_visitor_message(
                state, conversation_id=conversation_id, project_id=project_id, visitor_id=visitor_id,
                message_id=message_id, text=body.get("text"), attachment=body.get("attachment"),
                page_url=body.get("page_url"))
            if state is None and params and events:
                started = domain.evolve(None, events[0])
                events[1:1] = domain.decide_custom_params(started, params)
            return events
        try:
            outcome = await run(store, f"visitor-message:{project_id}:{visitor_id}:{message_id}", conversation_id,
                                decide)
            conversation_id = outcome.result["conversation_id"]
            break
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name != "visitor_conversations_pkey":
                raise
            # Another first message of this visitor started the conversation: write into it.
    else:
        raise Rejected(503, "busy", "Could not store the message; send it again.")
    seq = await pool.fetchval(
        """select stream_version from events where stream_id = $1 and type = 'chat.visitor_message_posted'
           and data->>'message_id' = $2""", f"conversation-{conversation_id}", message_id)
    return ok({"conversation_id": conversation_id, "seq": seq})


async def _visitor_command(request: web.Request, kind: str, decide) -> web.Response:
    body = await read_json(request)
    project_id, visitor_id = _visitor(body)
    conversation_id = await _visitor_conversation(request.app[POOL], project_id, visitor_id)
    if conversation_id is None:
        raise Rejected(409, "no_conversation", "Write a message first.")
    await run(request.app[STORE], f"{kind}:{uuid.uuid4()}", conversation_id, lambda s: decide(s, body))
    return ok({"conversation_id": conversation_id})


async def visitor_params(request: web.Request) -> web.Response:
    return await _visitor_command(request, "params", lambda s, b: domain.decide_custom_params(s, b.get("params")))


async def visitor_contacts(request: web.Request) -> web.Response:
    return await _visitor_command(request, "contacts", lambda s, b: domain.decide_contacts(s, b))


async def visitor_conversation(request: web.Request) -> web.Response:
    project_id, visitor_id = request.query.get("project_id", ""), request.query.get("visitor_id", "")
    return ok({"conversation_id": await _visitor_conversation(request.app[POOL], project_id, visitor_id)})


async def conversation_events(request: web.Request) -> web.Response:
    """Every event after `after` (the gateway picks what each audience may see)."""
    conversation_id = _conversation_id(request)
    after = int(request.query.get("after", "0") or 0)
    events = await request.app[STORE].load(f"conversation-{conversation_id}")
    return ok({"events": [e.to_dict() for e in events if e.stream_version > after]})


async def conversation_summary(request: web.Request) -> web.Response:
    """Who may see a conversation: project and assignee (the gateway's push filter)."""
    row = await request.app[POOL].fetchrow(
        "select project_id, visitor_id, assignee_id::text from conversations where id = $1", _conversation_id(request))
    if row is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    return ok(dict(row))


# ---- operators ------------------------------------------------------------------

_ROW = """id::text, project_id, visitor_id, status, assignee_id::text, assignee_name, visitor_name, contacts,
          custom_params, page_url, last_message_text, last_message_from, last_message_at, waiting_since, unread,
          started_at, lead_requested_at, version"""


def row_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    for key in ("last_message_at", "waiting_since", "started_at", "lead_requested_at"):
        view[key] = view[key].isoformat() if view[key] else None
    return view


async def inbox(request: web.Request) -> web.Response:
    me = operator_of(request)
    view = request.query.get("view", "new")
    pool = request.app[POOL]
    if view == "new":
        where, args = "status = 'new' and assignee_id is null", ()
    elif view == "mine":
        where, args = "assignee_id = $2 and status <> 'closed'", (me.id,)
    elif view == "all" and me.is_admin:
        where, args = "true", ()
    elif view == "all":
        raise Rejected(403, "forbidden", "Only admins see every conversation.")
    else:
        raise Rejected(422, "view_invalid", "view is new, mine or all.")
    rows = await pool.fetch(
        f"""select {_ROW} from conversations where project_id = $1 and {where}
            order by last_message_at desc nulls last limit {INBOX_LIMIT}""", me.project_id, *args)
    return ok({"view": view, "conversations": [row_view(r) for r in rows]})


async def transcript(request: web.Request) -> web.Response:
    me = operator_of(request)
    conversation_id = _conversation_id(request)
    state, events = await _load(request, conversation_id)
    if state is None or not domain.can_see(state, me):
        raise Rejected(404, "not_found", "Conversation not found.")
    row = await request.app[POOL].fetchrow(f"select {_ROW} from conversations where id = $1", conversation_id)
    return ok({"conversation": row_view(row), "events": [e.to_dict() for e in events]})


async def _operator_command(request: web.Request, command_id: str, decide) -> web.Response:
    me = operator_of(request)
    conversation_id = _conversation_id(request)
    outcome = await run(request.app[STORE], command_id, conversation_id, lambda s: decide(s, me))
    row = await request.app[POOL].fetchrow(f"select {_ROW} from conversations where id = $1", conversation_id)
    return ok({"conversation": row_view(row), "events": [e.to_dict() for e in outcome.events]})


async def take(request: web.Request) -> web.Response:
    me = operator_of(request)
    return await _operator_command(request, f"take:{request.match_info['id']}:{me.id}", domain.decide_take)


async def reply(request: web.Request) -> web.Response:
    body = await read_json(request)
    message_id = command_key(request, str(uuid.uuid4()))
    return await _operator_command(request, f"reply:{message_id}", lambda s, me: domain.decide_reply(
        s, me, message_id, body.get("text"), body.get("attachment")))


async def note(request: web.Request) -> web.Response:
    body = await read_json(request)
    note_id = command_key(request, str(uuid.uuid4()))
    return await _operator_command(request, f"note:{note_id}",
                                   lambda s, me: domain.decide_note(s, me, note_id, body.get("text")))


async def set_status(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _operator_command(request, f"status:{uuid.uuid4()}",
                                   lambda s, me: domain.decide_status(s, me, body.get("status")))


async def assign(request: web.Request) -> web.Response:
    body = await read_json(request)
    to = body.get("operator")
    if not isinstance(to, dict) or not all(isinstance(to.get(k), str) for k in ("id", "project", "name")):
        raise Rejected(422, "operator_required", "Name the operator to assign.")
    target = Operator(id=to["id"], project_id=to["project"], name=to["name"], avatar_url=to.get("avatar_url"))
    return await _operator_command(request, f"assign:{uuid.uuid4()}",
                                   lambda s, me: domain.decide_assign(s, me, target))


async def request_lead(request: web.Request) -> web.Response:
    return await _operator_command(request, command_key(request, f"lead:{uuid.uuid4()}"),
                                   domain.decide_request_lead)


ROUTES = [
    ("POST", "/internal/visitor/messages", visitor_message),
    ("POST", "/internal/visitor/params", visitor_params),
    ("POST", "/internal/visitor/contacts", visitor_contacts),
    ("GET", "/internal/visitor/conversation", visitor_conversation),
    ("GET", "/internal/conversations/{id}/events", conversation_events),
    ("GET", "/internal/conversations/{id}/summary", conversation_summary),
    ("GET", "/api/inbox", inbox),
    ("GET", "/api/conversations/{id}", transcript),
    ("POST", "/api/conversations/{id}/take", take),
    ("POST", "/api/conversations/{id}/messages", reply),
    ("POST", "/api/conversations/{id}/notes", note),
    ("POST", "/api/conversations/{id}/status", set_status),
    ("POST", "/api/conversations/{id}/assign", assign),
    ("POST", "/api/conversations/{id}/lead", request_lead),
]


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
