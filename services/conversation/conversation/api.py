"""The conversation service's HTTP API, called by the gateway only.

The gateway authenticates visitors (signed visitor token) and operators (session) and
passes who acts: visitor calls carry `project_id` and `visitor_id` in the body,
operator calls the operator in the actor header (contract.ACTOR_HEADER, JSON), believed
because every call here is signed (parley.internal_auth). Permissions are decided in
domain.py; its refusals become HTTP answers in one place (parley.http).
Every input gets a final answer: a 4xx with a code, or a 503 with Retry-After when the store is busy."""
from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

import asyncpg
from aiohttp import web

from parley import call_batches
from parley.actor import actor_of
from parley.contract import canonical_uuid, conversation_stream, operator_may_see
from parley.envelope import Event
from parley.eventstore import ConcurrencyConflict, Outcome
from parley.http import RETRY_AFTER_SECONDS, Rejected, ok, read_json
from parley.service import POOL, STORE

from conversation import commands, domain, identities
from conversation.current_conversations import CURRENT, CurrentConversations
from conversation.domain import DomainError, Operator

log = logging.getLogger(__name__)

INBOX_LIMIT = 200
PROJECT_ID_MAX = 100     # the envelope's project_id
VISITOR_ID_MAX = 64      # chat.conversation_started's visitor_id
MESSAGE_ID_MAX = 64
OPERATOR_NAME_MAX = 80
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{8,128}$")
# Operator message and note ids derived from (project, operator, conversation, key).
_OPERATOR_IDS = uuid.UUID("0d7f3b4e-5b8a-4a51-9f0c-2c6a1f3e9b57")

def _busy() -> Rejected:
    return Rejected(503, "busy", "Could not store this right now; send it again.",
                    headers={"Retry-After": RETRY_AFTER_SECONDS})


def _text(value: Any, max_length: int, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, str) and 1 <= len(value) <= max_length


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


def operator_command(kind: str, me: Operator, conversation_id: str, key: str | None) -> tuple[str, str]:
    """(command id, id for what the command creates) of an operator command.

    A client's Idempotency-Key counts within its project, its operator and its
    conversation only: another operator's identical key is another command. The id the
    events carry is derived from all four (or random without a key), never the client's
    key itself, so it cannot collide with another operator's or the visitor's ids."""
    if key is None:
        made = str(uuid.uuid4())
        return f"{kind}:{made}", made
    made = str(uuid.uuid5(_OPERATOR_IDS, "\n".join((kind, me.project_id, me.id, conversation_id, key))))
    return f"{kind}:{made}", made


async def run(app: web.Application, command_id: str, conversation_id: str,
              decide: Callable[[domain.Conversation | None], list[Event]], **kept) -> Outcome:
    """A command, decided on the kept state (commands.run: `visitor_message_id`/`reply_id` it
    checks for resends, `transcript` for a lead request)."""
    try:
        return await commands.run(app[STORE], command_id, conversation_id, decide, **kept)
    except ConcurrencyConflict:
        raise _busy() from None


async def _events_after(app: web.Application, body: dict[str, Any], conversation_id: str,
                        appended: list[Event]) -> list[dict[str, Any]] | None:
    """A visitor command's answer carries the events its socket has not sent (the gateway
    sends them before the ack, with no second call): those after the caller's `after` in
    its `conversation_id` (from the start when it named none or another one). Usually just
    the command's own events; else one indexed read. None when the caller gave no `after`."""
    after = body.get("after")
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        return None
    if body.get("conversation_id") != conversation_id:
        after = 0
    if not appended or appended[0].stream_version != after + 1:
        appended = await app[STORE].load(conversation_stream(conversation_id), after=after)
    return [e.to_dict() for e in appended]


def _conversation_id(request: web.Request) -> str:
    """The path's id, spelled the one canonical way (`urn:uuid:`, braces, bare hex: 404)."""
    conversation_id = canonical_uuid(request.match_info["id"])
    if conversation_id is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    return conversation_id


async def _load(request: web.Request, conversation_id: str) -> tuple[domain.Conversation | None, list[Event]]:
    events = await request.app[STORE].load(conversation_stream(conversation_id))
    return domain.fold(events), events


# ---- visitor --------------------------------------------------------------------

def _visitor(values: Any) -> tuple[str, str]:
    project_id, visitor_id = values.get("project_id"), values.get("visitor_id")
    if not _text(project_id, PROJECT_ID_MAX) or not _text(visitor_id, VISITOR_ID_MAX):
        raise Rejected(422, "visitor_required",
                       f"project_id (1-{PROJECT_ID_MAX} characters) and visitor_id (1-{VISITOR_ID_MAX}) are required.")
    return project_id, visitor_id


def _chat_open(body: dict[str, Any]) -> bool:
    """Whether the chat is open now, as the gateway computed it from the schedule
    (docs/working-hours.md); a caller that does not say means open."""
    return body.get("chat_open") is not False


def _site_params(body: dict[str, Any]) -> dict[str, str]:
    """The custom params the socket held; a site's bad params must not cost the visitor
    what they sent with them, so they are dropped (and logged) rather than refused."""
    try:
        return domain.clean_params(body.get("custom_params") or {})
    except DomainError as e:
        log.warning("custom params dropped", extra={"reason": e.message})
        return {}


async def _conversation_for(app: web.Application, project_id: str, visitor_id: str,
                            message_id: str | None) -> tuple[str, str | None]:
    """(conversation id, previous conversation id) for a visitor's command: their
    current conversation, or - when it is closed - a new one linked to it (conversations
    end). A resend of a message the closed conversation already has goes to it, where
    it is absorbed."""
    current = await app[CURRENT].of(project_id, visitor_id)
    if current is None:
        return str(uuid.uuid4()), None
    if current["status"] == "closed" and not (message_id and await commands.message_seq(
            app[POOL], current["id"], message_id)):
        return str(uuid.uuid4()), current["id"]
    return current["id"], None


async def _in_visitors_conversation(app: web.Application, project_id: str, visitor_id: str, command_id: str,
                                    decide_in: Callable[[str, str | None],
                                                        Callable[[domain.Conversation | None], list[Event]]],
                                    *, message_id: str | None = None, **kept) -> tuple[str, Outcome]:
    """Run a visitor's command in their conversation (_conversation_for): the
    conversation's id and the outcome. `decide_in(conversation id, previous id)`. Two
    first commands at once: the loser's row in visitor_conversations is refused, and it
    runs again inside the winner's conversation."""
    for _ in range(3):
        conversation_id, previous = await _conversation_for(app, project_id, visitor_id, message_id)
        try:
            outcome = await run(app, command_id, conversation_id, decide_in(conversation_id, previous), **kept)
            return outcome.result["conversation_id"], outcome
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name != "visitor_conversations_pkey":
                raise
    raise _busy()


async def visitor_message(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    project_id, visitor_id = _visitor(body)
    message_id = body.get("message_id")
    if not _text(message_id, MESSAGE_ID_MAX):
        raise Rejected(422, "message_id_required", "Every message carries the widget's id for it.")
    params = _site_params(body)

    def decide_in(conversation_id: str, previous: str | None):
        def decide(state: domain.Conversation | None) -> list[Event]:
            events = domain.decide_visitor_message(
                state, conversation_id=conversation_id, project_id=project_id, visitor_id=visitor_id,
                message_id=message_id, text=body.get("text"), attachment=body.get("attachment"),
                page_url=body.get("page_url"), chat_open=_chat_open(body), previous_conversation_id=previous)
            if state is None and params and events:
                started = domain.evolve(None, events[0])
                events[1:1] = domain.decide_custom_params(started, params)
            return events
        return decide

    conversation_id, outcome = await _in_visitors_conversation(
        app, project_id, visitor_id, f"visitor-message:{project_id}:{visitor_id}:{message_id}", decide_in,
        message_id=message_id, visitor_message_id=message_id)
    return await _message_answer(app, body, conversation_id, message_id, outcome)


async def _message_answer(app: web.Application, body: dict[str, Any], conversation_id: str, message_id: str,
                          outcome: Outcome) -> dict[str, Any]:
    """A visitor message's answer (the message route's and the offline form's): its
    conversation, its seq, and the events the caller's socket has not sent."""
    return {"conversation_id": conversation_id,
            "seq": await _message_seq(app, conversation_id, message_id, outcome.events),
            "events": await _events_after(app, body, conversation_id, list(outcome.events))}


async def _message_seq(app: web.Application, conversation_id: str, message_id: str, appended) -> int | None:
    """The seq of the visitor's message: from the events just appended, else (a resend)
    as recorded when it was stored."""
    for event in appended:
        if event.type == "chat.visitor_message_posted" and event.data["message_id"] == message_id:
            return event.stream_version
    return await commands.message_seq(app[POOL], conversation_id, message_id)


async def visitor_params(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    project_id, visitor_id = _visitor(body)
    current = await app[CURRENT].of(project_id, visitor_id)
    if current is None:
        raise Rejected(409, "no_conversation", "Write a message first.")
    conversation_id = current["id"]
    await run(app, f"params:{uuid.uuid4()}", conversation_id,
              lambda s: domain.decide_custom_params(s, body.get("params")))
    return {"conversation_id": conversation_id}


async def visitor_contacts(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """The contact form. Before any message it starts the conversation (with the params
    the socket held, `custom_params`), so the offline form needs no message."""
    project_id, visitor_id = _visitor(body)
    domain.clean_contacts(body)  # refused before anything is started
    params = _site_params(body)
    conversation_id, outcome = await _in_visitors_conversation(
        app, project_id, visitor_id, f"contacts:{uuid.uuid4()}",
        lambda cid, previous: lambda s: domain.decide_contacts(
            s, body, conversation_id=cid, project_id=project_id, visitor_id=visitor_id, page_url=body.get("page_url"),
            params=params, chat_open=_chat_open(body), previous_conversation_id=previous))
    return {"conversation_id": conversation_id,
            "events": await _events_after(app, body, conversation_id, list(outcome.events))}


async def visitor_offline(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """The offline form (`offline_message`): contacts and a message. It starts a
    conversation marked left_while_closed (after a closed one too: the visitor's current
    conversation becomes the new one, linked by previous_conversation_id), or goes into
    the visitor's conversation that is still going. Idempotent by the form's id."""
    project_id, visitor_id = _visitor(body)
    message_id = body.get("message_id")
    if not _text(message_id, MESSAGE_ID_MAX):
        raise Rejected(422, "message_id_required", "The form carries the widget's id for it.")
    contacts = {k: body.get(k) for k in ("name", "phone", "email")}
    domain.decide_offline(None, conversation_id=str(uuid.uuid4()), project_id=project_id, visitor_id=visitor_id,
                          message_id=message_id, contacts=contacts, text=body.get("text"),
                          page_url=None)  # refused before anything is looked up
    params = _site_params(body)

    def decide_in(conversation_id: str, previous: str | None):
        return lambda state: domain.decide_offline(
            state, conversation_id=conversation_id, project_id=project_id, visitor_id=visitor_id,
            message_id=message_id, contacts=contacts, text=body.get("text"), page_url=body.get("page_url"),
            params=params, chat_open=_chat_open(body), previous_conversation_id=previous)

    conversation_id, outcome = await _in_visitors_conversation(
        app, project_id, visitor_id, f"offline:{project_id}:{visitor_id}:{message_id}", decide_in,
        message_id=message_id, visitor_message_id=message_id)
    return await _message_answer(app, body, conversation_id, message_id, outcome)


async def close_idle(request: web.Request) -> web.Response:
    """The scheduler's idle timer (docs/working-hours.md, Timers): Idempotency-Key is the
    timer id, body {"hours": N, "idle_since_version": V, "idle_since": T}, V and T being
    the event that set the timer. A message either way after it keeps the conversation
    open: the answer's `active` names the last one, from which the scheduler sets the
    timer again (messages do not move it, issue 21). Otherwise the conversation is closed
    with reason idle; already closed, or the same timer again: nothing is appended."""
    conversation_id = _conversation_id(request)
    key = idempotency_key(request)
    if key is None:
        raise Rejected(422, "idempotency_key_required", "Send the timer id as Idempotency-Key.")
    body = await read_json(request)
    since, anchor = body.get("idle_since_version"), _instant(body.get("idle_since"))
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise Rejected(422, "idle_since_version_invalid", "idle_since_version is a stream version, a whole number.")
    last = await _last_message(request.app, conversation_id, since) if since is not None else None
    if last is not None and (anchor is None or datetime.fromisoformat(last["occurred_at"]) > anchor + _SAME_MOMENT):
        return ok({"conversation_id": conversation_id, "closed": False, "active": last})
    # Closed unless a message comes after the last one seen here (decided under the
    # stream's lock, so one that arrives meanwhile is never closed over).
    outcome = await run(request.app, f"close-idle:{key}", conversation_id, lambda s: domain.decide_close_idle(
        s, body.get("hours"), last["version"] if last is not None else since))
    return ok({"conversation_id": conversation_id, "closed": bool(outcome.events), "active": None})


# The start and the first message are written by one command, microseconds apart: a
# message this close to the event that set the timer is not "after" it.
_SAME_MOMENT = timedelta(seconds=1)


def _instant(value: Any) -> datetime | None:
    try:
        found = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        raise Rejected(422, "idle_since_invalid", "idle_since is an ISO 8601 instant.") from None
    if found is not None and found.tzinfo is None:
        raise Rejected(422, "idle_since_invalid", "idle_since is an ISO 8601 instant with its offset.")
    return found


async def _last_message(app: web.Application, conversation_id: str, since: int) -> dict[str, Any] | None:
    """The last message either way after version `since` while the conversation is still
    going: {"version", "occurred_at"}. Read when an idle timer fires, once per idle period
    of a conversation, never on a message."""
    last = None
    for event in await app[STORE].load(conversation_stream(conversation_id), after=since):
        if event.type in ("chat.visitor_message_posted", "chat.operator_replied"):
            last = {"version": event.stream_version, "occurred_at": event.occurred_at}
        elif event.type == "status.changed" and event.data.get("status") == "closed":
            last = None
    return last


async def visitor_conversation(request: web.Request) -> web.Response:
    project_id, visitor_id = _visitor(request.query)
    current = await request.app[CURRENT].of(project_id, visitor_id)
    return ok({"conversation_id": current["id"] if current is not None else None})


async def conversation_events(request: web.Request) -> web.Response:
    """Every event after `after` (the gateway picks what each audience may see)."""
    conversation_id = _conversation_id(request)
    try:
        after = int(request.query.get("after", "0") or 0)
    except ValueError:
        raise Rejected(422, "after_invalid", "after is a stream version (a whole number).")
    events = await request.app[STORE].load(conversation_stream(conversation_id), after=max(after, 0))
    return ok({"events": [e.to_dict() for e in events]})


async def conversation_summary(request: web.Request) -> web.Response:
    """Who may see a conversation: project and assignee (the gateway's push filter)."""
    row = await request.app[POOL].fetchrow(
        "select project_id, visitor_id, assignee_id::text from conversations where id = $1", _conversation_id(request))
    if row is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    return ok(dict(row))


# ---- operators ------------------------------------------------------------------

_ROW = f"""id::text, project_id, visitor_id, status, assignee_id::text, assignee_name, visitor_name, contacts,
          custom_params, page_url, last_message_text, last_message_from, last_message_at, waiting_since, unread,
          started_at, lead_requested_at, left_while_closed, version, erased_at, {identities.IDENTITY_COLUMN}"""


def row_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    for key in ("last_message_at", "waiting_since", "started_at", "lead_requested_at", "erased_at"):
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
    elif view == "closed":   # one's own finished conversations, newest first (everyone, admins too)
        where, args = "assignee_id = $2 and status = 'closed'", (me.id,)
    elif view == "all" and me.is_admin:
        where, args = "true", ()
    elif view == "all":
        raise Rejected(403, "forbidden", "Only admins see every conversation.")
    else:
        raise Rejected(422, "view_invalid", "view is new, mine, closed or all.")
    rows = await pool.fetch(
        f"""select {_ROW} from conversations where project_id = $1 and {where}
            order by last_message_at desc nulls last limit {INBOX_LIMIT}""", me.project_id, *args)
    return ok({"view": view, "conversations": [row_view(r) for r in rows]})


async def transcript(request: web.Request) -> web.Response:
    me = operator_of(request)
    conversation_id = _conversation_id(request)
    state, events = await _load(request, conversation_id)
    if state is None or not (domain.can_see(state, me) or await _handles_this_visitor(request, state, me)):
        raise Rejected(404, "not_found", "Conversation not found.")
    row = await request.app[POOL].fetchrow(f"select {_ROW} from conversations where id = $1", conversation_id)
    return ok({"conversation": row_view(row), "events": [e.to_dict() for e in events]})


async def _handles_this_visitor(request: web.Request, state: domain.Conversation, me: Operator) -> bool:
    """An operator who may see one of a visitor's conversations may read the visitor's
    others (their history, from the side panel), even those another operator handled;
    reading only - commands still need the conversation itself (domain.can_see)."""
    return state.project_id == me.project_id and bool(await request.app[POOL].fetchval(
        """select exists (select 1 from conversations where project_id = $1 and visitor_id = $2
                          and (assignee_id is null or assignee_id = $3))""",
        state.project_id, state.visitor_id, me.id))


CLIENT_HISTORY_LIMIT = 20


@dataclasses.dataclass(frozen=True)
class Known:
    contacts: dict[str, str]
    confirmed: frozenset[str]   # the fields an operator entered or confirmed, or the site verified


async def known_contacts(pool: asyncpg.Pool, project_id: str, visitor_id: str, conversation_id: str,
                         contacts: dict[str, Any] | None, confirmed: Sequence[str] = ()) -> Known:
    """The conversation's contacts, with what is missing taken from the newest earlier
    conversation of the same visitor that has it, then - by a confirmed phone or email
    only - a name from the newest earlier one with the same phone or email (the client
    card's "who", and what a lead is sent with). A verified visitor's identity
    (identities.py) counts as given, and confirmed, in this conversation. A contact the
    visitor typed is not proof it is theirs (issue 23), so it never pulls in someone
    else's name."""
    known = {k: v for k, v in (contacts or {}).items() if k in ("name", "phone", "email") and v}
    sure = {k for k in confirmed if k in known}
    if visitor_id.startswith(identities.VERIFIED_PREFIX):   # what the site said of its logged-in user
        verified = await identities.lookup(pool, project_id, visitor_id)
        known, sure = {**verified, **known}, sure | {k for k in verified if k not in known}
    if len(known) < 3:
        for earlier in await pool.fetch(
                """select contacts, contacts_confirmed from conversations
                   where project_id = $1 and visitor_id = $2 and id <> $3
                   and contacts <> '{}'::jsonb order by started_at desc limit $4""",
                project_id, visitor_id, conversation_id, CLIENT_HISTORY_LIMIT):
            for k in ("name", "phone", "email"):
                if not known.get(k) and earlier["contacts"].get(k):
                    known[k] = earlier["contacts"][k]
                    if k in earlier["contacts_confirmed"]:
                        sure.add(k)
    phone = known.get("phone") if "phone" in sure else None
    email = (known.get("email") or "").lower() or None if "email" in sure else None
    if not known.get("name") and (phone or email):
        named = await pool.fetchval(
            """select contacts->>'name' from conversations
               where project_id = $1 and id <> $2 and contacts->>'name' is not null
                 and (contacts->>'phone' = $3 or lower(contacts->>'email') = $4)
               order by started_at desc limit 1""",
            project_id, conversation_id, phone, email)
        if named:
            known["name"] = named
    return Known(known, frozenset(sure))


async def client(request: web.Request) -> web.Response:
    """Who the visitor of this conversation is, for the returning client's card: their
    contacts and their earlier conversations in the project, found by the same visitor
    token or the same phone or email. Contacts missing here are taken from the newest
    earlier conversation of the same visitor that has them (one hop: a phone given
    last time still finds last time's leads).

    Issue 23: a match by a contact nobody confirmed (the visitor typed it) is marked
    `unconfirmed`; and an operator who is not an admin is shown only the earlier
    conversations they may read (the same visitor's, and others' they may see) - of the
    others, only how many there are."""
    me = operator_of(request)
    conversation_id = _conversation_id(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(
        """select project_id, visitor_id, assignee_id::text, visitor_name, contacts, contacts_confirmed
           from conversations where id = $1""", conversation_id)
    if row is None or not operator_may_see(row["project_id"], row["assignee_id"], project_id=me.project_id,
                                           operator_id=me.id, is_admin=me.is_admin):
        raise Rejected(404, "not_found", "Conversation not found.")
    known = await known_contacts(pool, row["project_id"], row["visitor_id"], conversation_id, row["contacts"],
                                 row["contacts_confirmed"])
    phone, email = known.contacts.get("phone"), (known.contacts.get("email") or "").strip().lower() or None
    history = await pool.fetch(
        """select id::text, started_at, status, assignee_id::text, assignee_name, last_message_text, last_message_at,
                  lead_requested_at, visitor_id = $2 as same_visitor, contacts->>'phone' = $3 as same_phone,
                  lower(contacts->>'email') = $4 as same_email
           from conversations
           where project_id = $1 and id <> $5
             and (visitor_id = $2 or contacts->>'phone' = $3 or lower(contacts->>'email') = $4)
           order by started_at desc limit $6""",
        row["project_id"], row["visitor_id"], phone, email, conversation_id, CLIENT_HISTORY_LIMIT)
    conversations, hidden = [], 0
    for h in history:
        # The same visitor's are readable by whoever holds this one (_handles_this_visitor);
        # another visitor's, found by phone or email, only if the operator may see them.
        if not (h["same_visitor"] or operator_may_see(row["project_id"], h["assignee_id"], project_id=me.project_id,
                                                      operator_id=me.id, is_admin=me.is_admin)):
            hidden += 1
            continue
        matched = [k for k, flag in (("visitor", h["same_visitor"]), ("phone", h["same_phone"]),
                                     ("email", h["same_email"])) if flag]
        conversations.append({"id": h["id"], "status": h["status"], "assignee_name": h["assignee_name"],
                              "last_message_text": h["last_message_text"], "matched_by": matched,
                              "unconfirmed": not any(k == "visitor" or k in known.confirmed for k in matched),
                              **{k: h[k].isoformat() if h[k] else None
                                 for k in ("started_at", "last_message_at", "lead_requested_at")}})
    return ok({"conversation_id": conversation_id, "visitor_id": row["visitor_id"],
               "name": known.contacts.get("name") or row["visitor_name"], "phone": phone,
               "email": known.contacts.get("email"), "confirmed": sorted(known.confirmed),
               "conversations": conversations, "hidden_conversations": hidden})


async def _operator_command(request: web.Request, kind: str,
                            decide: Callable[[domain.Conversation | None, Operator, str], list[Event]]) -> web.Response:
    """An operator command under a command id scoped to its project, operator and
    conversation; `decide(state, me, made_id)` gets the id for what it creates."""
    me = operator_of(request)
    conversation_id = _conversation_id(request)
    command_id, made_id = operator_command(kind, me, conversation_id, idempotency_key(request))
    outcome = await run(request.app, command_id, conversation_id, lambda s: decide(s, me, made_id),
                        reply_id=made_id if kind == "reply" else None, transcript=kind == "lead")
    row = await request.app[POOL].fetchrow(f"select {_ROW} from conversations where id = $1", conversation_id)
    return ok({"conversation": row_view(row), "events": [e.to_dict() for e in outcome.events]})


async def take(request: web.Request) -> web.Response:
    return await _operator_command(request, "take", lambda s, me, _: domain.decide_take(s, me))


async def reply(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _operator_command(request, "reply", lambda s, me, message_id: domain.decide_reply(
        s, me, message_id, body.get("text"), body.get("attachment")))


async def note(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _operator_command(request, "note",
                                   lambda s, me, note_id: domain.decide_note(s, me, note_id, body.get("text")))


async def set_status(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _operator_command(request, "status", lambda s, me, _: domain.decide_status(s, me, body.get("status")))


def _assignee(body: dict[str, Any]) -> Operator:
    to = body.get("operator")
    if (not isinstance(to, dict) or canonical_uuid(to.get("id")) is None or not _text(to.get("project"), PROJECT_ID_MAX)
            or not _text(to.get("name"), OPERATOR_NAME_MAX) or not _text(to.get("avatar_url"), 200, optional=True)):
        raise Rejected(422, "operator_required", "Name the operator to assign.")
    return Operator(id=canonical_uuid(to["id"]), project_id=to["project"], name=to["name"],
                    avatar_url=to.get("avatar_url"))


async def assign(request: web.Request) -> web.Response:
    body = await read_json(request)
    target = _assignee(body)
    return await _operator_command(request, "assign", lambda s, me, _: domain.decide_assign(s, me, target))


async def set_contacts(request: web.Request) -> web.Response:
    body = await read_json(request)
    return await _operator_command(request, "contacts",
                                   lambda s, me, _: domain.decide_operator_contacts(s, me, body))


async def request_lead(request: web.Request) -> web.Response:
    """"Send to CRM": `{"again": true}` to make a second lead for the same conversation."""
    body = await read_json(request)
    again = body.get("again", False)
    if not isinstance(again, bool):
        raise Rejected(422, "again_invalid", "again is true or false.")
    row = await request.app[POOL].fetchrow(
        "select project_id, visitor_id, contacts, contacts_confirmed from conversations where id = $1",
        _conversation_id(request))
    known = (await known_contacts(request.app[POOL], row["project_id"], row["visitor_id"], _conversation_id(request),
                                  row["contacts"], row["contacts_confirmed"])).contacts if row else {}
    return await _operator_command(request, "lead",
                                   lambda s, me, _: domain.decide_request_lead(s, me, known=known, again=again))


# The visitor's commands: alone or in a batch of the gateway's (parley.call_batches).
COMMANDS = [
    ("/internal/visitor/messages", visitor_message),
    ("/internal/visitor/params", visitor_params),
    ("/internal/visitor/contacts", visitor_contacts),
    ("/internal/visitor/offline", visitor_offline),
]

ROUTES = [
    ("GET", "/internal/visitor/conversation", visitor_conversation),
    ("POST", "/internal/conversations/{id}/close-idle", close_idle),
    ("GET", "/internal/conversations/{id}/events", conversation_events),
    ("GET", "/internal/conversations/{id}/summary", conversation_summary),
    ("GET", "/api/inbox", inbox),
    ("GET", "/api/conversations/{id}", transcript),
    ("GET", "/api/conversations/{id}/client", client),
    ("POST", "/api/conversations/{id}/take", take),
    ("POST", "/api/conversations/{id}/messages", reply),
    ("POST", "/api/conversations/{id}/notes", note),
    ("POST", "/api/conversations/{id}/status", set_status),
    ("POST", "/api/conversations/{id}/assign", assign),
    ("POST", "/api/conversations/{id}/lead", request_lead),
    ("POST", "/api/conversations/{id}/contacts", set_contacts),
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
