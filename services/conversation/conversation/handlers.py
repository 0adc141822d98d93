"""The conversation service's commands: what a visitor's or an operator's request asks,
checked, decided by domain.py on the kept state and written by the one command path
(commands.run: the next batch, or alone). Handlers take the app and plain values, never
a request (routes.py reads those), so a visitor command is answered the same alone and
as a call of the gateway's batch (parley.call_batches).

Refusals are DomainErrors (the rules'); the one fault raised here is parley.http's
`busy_storing` (a visitor's first commands kept colliding). parley.http maps both, and a
stream that keeps moving (ConcurrencyConflict), to HTTP in one place."""
from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

import asyncpg
from aiohttp import web

from parley.contract import canonical_uuid
from parley.envelope import Event
from parley.eventstore import Outcome
from parley.http import busy_storing
from parley.service import POOL, STORE

from conversation import commands, domain, receipts, views
from conversation.current_conversations import CURRENT
from conversation.domain import DomainError, Operator

log = logging.getLogger(__name__)

PROJECT_ID_MAX = 100     # the envelope's project_id
VISITOR_ID_MAX = 64      # chat.conversation_started's visitor_id
MESSAGE_ID_MAX = 64
OPERATOR_NAME_MAX = 80
# Operator message and note ids derived from (project, operator, conversation, key).
_OPERATOR_IDS = uuid.UUID("0d7f3b4e-5b8a-4a51-9f0c-2c6a1f3e9b57")
# The start and the first message are written by one command, microseconds apart: a
# message this close to the event that set the idle timer is not "after" it.
_SAME_MOMENT = timedelta(seconds=1)

Decide = Callable[[domain.Conversation | None], list[Event]]


def text(value: Any, max_length: int, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, str) and 1 <= len(value) <= max_length


def visitor_of(values: Any) -> tuple[str, str]:
    """(project_id, visitor_id) of a visitor command, as the gateway passed them."""
    project_id, visitor_id = values.get("project_id"), values.get("visitor_id")
    if not text(project_id, PROJECT_ID_MAX) or not text(visitor_id, VISITOR_ID_MAX):
        raise DomainError("visitor_required",
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


# ---- visitor --------------------------------------------------------------------

async def _conversation_for(app: web.Application, project_id: str, visitor_id: str,
                            message_id: str | None) -> tuple[str, str | None]:
    """(conversation id, previous conversation id) for a visitor's command: their
    current conversation, or - when it is closed - a new one linked to it (conversations
    end). A resend of a message the closed conversation already has goes to it, where
    it is absorbed."""
    current = await app[CURRENT].of(project_id, visitor_id)
    if current is None:
        return str(uuid.uuid4()), None
    if current["status"] == "closed" and not (message_id and await views.message_seq(
            app[POOL], current["id"], message_id)):
        return str(uuid.uuid4()), current["id"]
    return current["id"], None


class _NotGoing(Exception):
    """The conversation the visitor's socket follows is not one of theirs that is going."""


async def _in_visitors_conversation(app: web.Application, project_id: str, visitor_id: str, command_id: str,
                                    decide_in: Callable[[str, str | None], Decide],
                                    *, message_id: str | None = None, followed: Any = None,
                                    **kept) -> tuple[str, Outcome]:
    """Run a visitor's command in their conversation (_conversation_for): the
    conversation's id and the outcome. `decide_in(conversation id, previous id)`. Two
    first commands at once: the loser's row in visitor_conversations is refused, and it
    runs again inside the winner's conversation.

    `followed`: the conversation the caller's socket follows (the gateway's). When it is
    the visitor's and going, the command runs there without the lookup: a visitor's
    next conversation starts only once this one is closed, so a going one is their
    current one (unless an operator reopened it after the next began; then the socket
    that shows it writes there). That is one query and one wait less on every message
    but a visitor's first. Closed, erased or someone else's, the lookup decides, as before."""
    if (cid := canonical_uuid(followed)) is not None:
        decide = decide_in(cid, None)

        def decide_if_going(state: domain.Conversation | None) -> list[Event]:
            if (state is None or state.visitor_id != visitor_id or state.project_id != project_id
                    or state.status == "closed" or state.erased):
                raise _NotGoing()
            return decide(state)
        try:
            outcome = await commands.run(app[STORE], command_id, cid, decide_if_going, **kept)
            return outcome.result["conversation_id"], outcome
        except _NotGoing:
            pass
    for _ in range(3):
        conversation_id, previous = await _conversation_for(app, project_id, visitor_id, message_id)
        try:
            outcome = await commands.run(app[STORE], command_id, conversation_id,
                                         decide_in(conversation_id, previous), **kept)
            return outcome.result["conversation_id"], outcome
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name != "visitor_conversations_pkey":
                raise
    raise busy_storing()


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
        return await views.events(app[STORE], conversation_id, after)
    return [e.to_dict() for e in appended]


async def _message_answer(app: web.Application, body: dict[str, Any], conversation_id: str, message_id: str,
                          outcome: Outcome) -> dict[str, Any]:
    """A visitor message's answer (the message route's and the offline form's): its
    conversation, its seq (from the events just appended, else - a resend - as recorded
    when it was stored), and the events the caller's socket has not sent."""
    seq = next((e.stream_version for e in outcome.events
                if e.type == "chat.visitor_message_posted" and e.data["message_id"] == message_id), None)
    if seq is None:
        seq = await views.message_seq(app[POOL], conversation_id, message_id)
    return {"conversation_id": conversation_id, "seq": seq,
            "events": await _events_after(app, body, conversation_id, list(outcome.events)), **_key_of(outcome)}


def _key_of(outcome: Outcome) -> dict[str, str]:
    """A visitor command that started its conversation answers with the conversation's
    key (made in its transaction): the gateway that asked opens the first events it
    pushes without a key call (docs/architecture.md, Personal data)."""
    return {"subject_key": base64.b64encode(outcome.subject_key).decode()} if outcome.subject_key else {}


def _message_id(body: dict[str, Any], message: str) -> str:
    message_id = body.get("message_id")
    if not text(message_id, MESSAGE_ID_MAX):
        raise DomainError("message_id_required", message)
    return message_id


def _invitation(body: dict[str, Any], project_id: str) -> tuple[Operator, str, str] | None:
    """(inviting operator, invitation id, text) of an invitation the visitor answers, as
    the gateway kept it (gateway/site_visitor_routes.py); None when there is none."""
    found = body.get("invitation")
    if found is None:
        return None
    if (not isinstance(found, dict) or canonical_uuid(found.get("id")) is None
            or canonical_uuid(found.get("operator_id")) is None
            or not text(found.get("operator_name"), OPERATOR_NAME_MAX)
            or not text(found.get("operator_avatar_url"), 200, optional=True)
            or not text(found.get("text"), domain.TEXT_MAX)):
        raise DomainError("invitation_invalid", "The invitation is not one an operator sent.")
    return (Operator(id=canonical_uuid(found["operator_id"]), project_id=project_id, name=found["operator_name"],
                     avatar_url=found.get("operator_avatar_url")), canonical_uuid(found["id"]), found["text"])


async def visitor_message(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    project_id, visitor_id = visitor_of(body)
    message_id = _message_id(body, "Every message carries the widget's id for it.")
    params = _site_params(body)
    invitation = _invitation(body, project_id)

    def decide_in(conversation_id: str, previous: str | None) -> Decide:
        def decide(state: domain.Conversation | None) -> list[Event]:
            events = domain.decide_visitor_message(
                state, conversation_id=conversation_id, project_id=project_id, visitor_id=visitor_id,
                message_id=message_id, text=body.get("text"), attachment=body.get("attachment"),
                page_url=body.get("page_url"), chat_open=_chat_open(body), previous_conversation_id=previous)
            if state is None and events:   # it starts here: the params held, and the invitation answered
                started = domain.evolve(None, events[0])
                events[1:1] = (domain.decide_custom_params(started, params) if params else []) + (
                    domain.decide_invited(started, *invitation) if invitation else [])
            return events
        return decide

    conversation_id, outcome = await _in_visitors_conversation(
        app, project_id, visitor_id, f"visitor-message:{project_id}:{visitor_id}:{message_id}", decide_in,
        message_id=message_id, followed=body.get("conversation_id"), visitor_message_id=message_id)
    return await _message_answer(app, body, conversation_id, message_id, outcome)


async def _current_id(app: web.Application, project_id: str, visitor_id: str) -> str:
    """The visitor's current conversation, for a command that needs one to exist."""
    current = await app[CURRENT].of(project_id, visitor_id)
    if current is None:
        raise DomainError("no_conversation", "Write a message first.", "conflict")
    return current["id"]


async def visitor_params(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    project_id, visitor_id = visitor_of(body)
    conversation_id = await _current_id(app, project_id, visitor_id)
    await commands.run(app[STORE], f"params:{uuid.uuid4()}", conversation_id,
                       lambda s: domain.decide_custom_params(s, body.get("params")))
    return {"conversation_id": conversation_id}


async def visitor_contacts(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """The contact form. Before any message it starts the conversation (with the params
    the socket held, `custom_params`), so the offline form needs no message."""
    project_id, visitor_id = visitor_of(body)
    domain.clean_contacts(body)  # refused before anything is started
    params = _site_params(body)
    conversation_id, outcome = await _in_visitors_conversation(
        app, project_id, visitor_id, f"contacts:{uuid.uuid4()}",
        lambda cid, previous: lambda s: domain.decide_contacts(
            s, body, conversation_id=cid, project_id=project_id, visitor_id=visitor_id, page_url=body.get("page_url"),
            params=params, chat_open=_chat_open(body), previous_conversation_id=previous))
    return {"conversation_id": conversation_id,
            "events": await _events_after(app, body, conversation_id, list(outcome.events)), **_key_of(outcome)}


async def visitor_offline(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """The offline form (`offline_message`): contacts and a message. It starts a
    conversation marked left_while_closed (after a closed one too: the visitor's current
    conversation becomes the new one, linked by previous_conversation_id), or goes into
    the visitor's conversation that is still going. Idempotent by the form's id."""
    project_id, visitor_id = visitor_of(body)
    message_id = _message_id(body, "The form carries the widget's id for it.")
    contacts = {k: body.get(k) for k in ("name", "phone", "email")}
    domain.decide_offline(None, conversation_id=str(uuid.uuid4()), project_id=project_id, visitor_id=visitor_id,
                          message_id=message_id, contacts=contacts, text=body.get("text"),
                          page_url=None)  # refused before anything is looked up
    params = _site_params(body)

    def decide_in(conversation_id: str, previous: str | None) -> Decide:
        return lambda state: domain.decide_offline(
            state, conversation_id=conversation_id, project_id=project_id, visitor_id=visitor_id,
            message_id=message_id, contacts=contacts, text=body.get("text"), page_url=body.get("page_url"),
            params=params, chat_open=_chat_open(body), previous_conversation_id=previous)

    conversation_id, outcome = await _in_visitors_conversation(
        app, project_id, visitor_id, f"offline:{project_id}:{visitor_id}:{message_id}", decide_in,
        message_id=message_id, visitor_message_id=message_id)
    return await _message_answer(app, body, conversation_id, message_id, outcome)


async def visitor_transcript(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """"Email me this conversation": the visitor's current conversation, as it stands."""
    project_id, visitor_id = visitor_of(body)
    conversation_id = await _current_id(app, project_id, visitor_id)
    outcome = await commands.run(app[STORE], f"transcript:{uuid.uuid4()}", conversation_id,
                                 lambda s: domain.decide_transcript_request(s, visitor_id, body.get("email")))
    return {"conversation_id": conversation_id, "seq": outcome.events[-1].stream_version}


async def visitor_read(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """The widget has shown the operators' messages up to `seq` (receipts.py decides)."""
    project_id, visitor_id = visitor_of(body)
    conversation_id = canonical_uuid(body.get("conversation_id"))
    if conversation_id is None:
        raise DomainError("not_found", "Conversation not found.", "not_found")
    outcome = await commands.run(app[STORE], f"visitor-read:{uuid.uuid4()}", conversation_id,
                                 lambda s: receipts.decide_visitor_read(
                                     s if s is None or s.project_id == project_id else None, visitor_id,
                                     body.get("seq")))
    return {"conversation_id": conversation_id, "read": bool(outcome.events)}


# ---- the scheduler --------------------------------------------------------------

async def close_idle(app: web.Application, conversation_id: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The scheduler's idle timer (docs/working-hours.md, Timers): `key` is the timer id,
    body {"hours": N, "idle_since_version": V, "idle_since": T}, V and T being the event
    that set the timer. A message either way after it keeps the conversation open: the
    answer's `active` names the last one, from which the scheduler sets the timer again
    (messages do not move it, issue 21). Otherwise the conversation is closed with
    reason idle; already closed, or the same timer again: nothing is appended."""
    since, anchor = body.get("idle_since_version"), _instant(body.get("idle_since"))
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise DomainError("idle_since_version_invalid", "idle_since_version is a stream version, a whole number.")
    last = await views.last_message(app[STORE], conversation_id, since) if since is not None else None
    if last is not None and (anchor is None or datetime.fromisoformat(last["occurred_at"]) > anchor + _SAME_MOMENT):
        return {"conversation_id": conversation_id, "closed": False, "active": last}
    # Closed unless a message comes after the last one seen here (decided under the
    # stream's lock, so one that arrives meanwhile is never closed over).
    outcome = await commands.run(app[STORE], f"close-idle:{key}", conversation_id, lambda s: domain.decide_close_idle(
        s, body.get("hours"), last["version"] if last is not None else since))
    return {"conversation_id": conversation_id, "closed": bool(outcome.events), "active": None}


def _instant(value: Any) -> datetime | None:
    try:
        found = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        raise DomainError("idle_since_invalid", "idle_since is an ISO 8601 instant.") from None
    if found is not None and found.tzinfo is None:
        raise DomainError("idle_since_invalid", "idle_since is an ISO 8601 instant with its offset.")
    return found


# ---- operators ------------------------------------------------------------------

def operator_command_ids(kind: str, me: Operator, conversation_id: str, key: str | None) -> tuple[str, str]:
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


async def operator_command(app: web.Application, me: Operator, conversation_id: str, key: str | None, kind: str,
                           decide: Callable[[domain.Conversation | None, Operator, str], list[Event]]
                           ) -> dict[str, Any]:
    """An operator command under a command id scoped to its project, operator and
    conversation; `decide(state, me, made_id)` gets the id for what it creates. The
    answer: the conversation's row after it, and the events it appended."""
    command_id, made_id = operator_command_ids(kind, me, conversation_id, key)
    outcome = await commands.run(app[STORE], command_id, conversation_id, lambda s: decide(s, me, made_id),
                                 reply_id=made_id if kind == "reply" else None, transcript=kind == "lead")
    return {"conversation": await views.conversation_row(app[POOL], conversation_id),
            "events": [e.to_dict() for e in outcome.events]}


def assignee(body: dict[str, Any]) -> Operator:
    """The operator an assign command names."""
    to = body.get("operator")
    if (not isinstance(to, dict) or canonical_uuid(to.get("id")) is None or not text(to.get("project"), PROJECT_ID_MAX)
            or not text(to.get("name"), OPERATOR_NAME_MAX) or not text(to.get("avatar_url"), 200, optional=True)):
        raise DomainError("operator_required", "Name the operator to assign.")
    return Operator(id=canonical_uuid(to["id"]), project_id=to["project"], name=to["name"],
                    avatar_url=to.get("avatar_url"))


async def request_lead(app: web.Application, me: Operator, conversation_id: str, key: str | None,
                       body: dict[str, Any]) -> dict[str, Any]:
    """"Send to CRM": `{"again": true}` to make a second lead for the same conversation.
    The lead goes with what is known of the client (views.client_contacts)."""
    again = body.get("again", False)
    if not isinstance(again, bool):
        raise DomainError("again_invalid", "again is true or false.")
    known = await views.client_contacts(app[POOL], conversation_id)
    return await operator_command(app, me, conversation_id, key, "lead",
                                  lambda s, me, _: domain.decide_request_lead(s, me, known=known, again=again))
