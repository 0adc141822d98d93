"""The Conversation aggregate: pure state, evolve and decide.

Stream `conversation-<uuid>`; every event goes to `conversation.events`, so a reply can
never overtake its conversation's start. Families: chat.*, assignment.*, status.*, lead.*.

Decisions worth knowing:
- A visitor message whose client id the conversation already has appends nothing:
  resends after a reconnect or reload are absorbed here.
- Exactly one operator takes a conversation; the others get 409 already_taken naming
  the winner. Replies, notes, status changes and lead requests need the assignee or an
  admin; an unclaimed conversation must be taken first.
- A visitor writing into a closed conversation reopens it (status back to in_work with
  the same assignee, or new if nobody had it): the visitor's thread stays one thread."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from parley.envelope import Event, new_event
from parley.http import Rejected

TEXT_MAX = 4000
NOTE_MAX = 4000
PARAMS_MAX = 20
PARAM_KEY_MAX = 64
PARAM_VALUE_MAX = 256
CONTACT_MAX = 200
STATUSES = ("new", "in_work", "closed")


@dataclass(frozen=True)
class Operator:
    """Who acts, as the gateway resolved them from their session."""
    id: str
    project_id: str
    name: str
    is_admin: bool = False
    avatar_url: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    project_id: str
    visitor_id: str
    status: str = "new"
    assignee_id: str | None = None
    assignee_name: str | None = None
    message_ids: frozenset[str] = frozenset()
    custom_params: dict[str, str] = field(default_factory=dict)
    contacts: dict[str, str | None] = field(default_factory=dict)
    page_url: str | None = None
    transcript: tuple[dict[str, Any], ...] = ()   # what a lead carries: messages, never notes


def evolve(state: Conversation | None, event: Event) -> Conversation:
    d = event.data
    match event.type:
        case "chat.conversation_started":
            return Conversation(id=event.stream_id.removeprefix("conversation-"), project_id=event.project_id,
                                visitor_id=d["visitor_id"], page_url=d.get("page_url"))
        case "chat.visitor_message_posted":
            return replace(state, message_ids=state.message_ids | {d["message_id"]},
                           transcript=state.transcript + ({"from": "visitor", "text": d["text"],
                                                           "attachment": d.get("attachment"),
                                                           "at": event.occurred_at},))
        case "chat.operator_replied":
            return replace(state, message_ids=state.message_ids | {d["message_id"]},
                           transcript=state.transcript + ({"from": "operator", "operator": d["operator_name"],
                                                           "text": d["text"], "attachment": d.get("attachment"),
                                                           "at": event.occurred_at},))
        case "chat.custom_params_set":
            return replace(state, custom_params={**state.custom_params, **d["params"]})
        case "chat.contacts_given":
            return replace(state, contacts={**state.contacts, **{k: v for k, v in d.items() if v}})
        case "chat.page_visited":
            return replace(state, page_url=d["page_url"])
        case "assignment.taken" | "assignment.assigned":
            return replace(state, assignee_id=d["operator_id"], assignee_name=d["operator_name"])
        case "status.changed":
            return replace(state, status=d["status"])
    return state


def fold(events: list[Event]) -> Conversation | None:
    state = None
    for event in events:
        state = evolve(state, event)
    return state


def _stream(conversation_id: str) -> str:
    return f"conversation-{conversation_id}"


def clean_text(text: Any, limit: int = TEXT_MAX, *, allow_empty: bool = False) -> str:
    if not isinstance(text, str):
        raise Rejected(422, "text_invalid", "Text must be a string.")
    text = text.strip()
    if not text and not allow_empty:
        raise Rejected(422, "text_empty", "Write something first.")
    if len(text) > limit:
        raise Rejected(413, "text_too_long", f"The message is {len(text)} characters; at most {limit}.")
    return text


def clean_params(params: Any) -> dict[str, str]:
    if not isinstance(params, dict):
        raise Rejected(422, "params_invalid", "Custom params must be an object of names to values.")
    if len(params) > PARAMS_MAX:
        raise Rejected(413, "params_too_many", f"At most {PARAMS_MAX} custom params; got {len(params)}.")
    cleaned = {}
    for key, value in params.items():
        if isinstance(value, bool | int | float):
            value = str(value)
        if not isinstance(key, str) or not key or len(key) > PARAM_KEY_MAX:
            raise Rejected(422, "params_invalid", f"Param names are 1-{PARAM_KEY_MAX} characters.")
        if not isinstance(value, str) or len(value) > PARAM_VALUE_MAX:
            raise Rejected(422, "params_invalid", f"Param {key!r}: values are text up to {PARAM_VALUE_MAX} characters.")
        cleaned[key] = value
    return cleaned


def clean_contacts(contacts: dict[str, Any]) -> dict[str, str | None]:
    cleaned = {}
    for key in ("name", "phone", "email"):
        value = contacts.get(key)
        if value is not None and (not isinstance(value, str) or len(value.strip()) > CONTACT_MAX):
            raise Rejected(422, "contacts_invalid", f"{key} must be text up to {CONTACT_MAX} characters.")
        cleaned[key] = value.strip() or None if isinstance(value, str) else None
    if not any(cleaned.values()):
        raise Rejected(422, "contacts_empty", "Give a name, a phone or an email.")
    return cleaned


# ---- the visitor ----------------------------------------------------------------

def decide_visitor_message(state: Conversation | None, *, conversation_id: str, project_id: str, visitor_id: str,
                           message_id: str, text: Any, attachment: dict | None, page_url: str | None) -> list[Event]:
    text = clean_text(text, allow_empty=attachment is not None)
    stream = _stream(conversation_id)
    events = []
    if state is None:
        events.append(new_event("chat.conversation_started", stream, {"visitor_id": visitor_id, "page_url": page_url},
                                project_id=project_id))
    elif state.visitor_id != visitor_id:
        raise Rejected(403, "forbidden", "This is not your conversation.")
    elif message_id in state.message_ids:
        return []
    elif state.status == "closed":
        events.append(new_event("status.changed", stream,
                                {"status": "in_work" if state.assignee_id else "new", "by_operator_id": None},
                                project_id=project_id))
    elif page_url and page_url != state.page_url:
        events.append(new_event("chat.page_visited", stream, {"page_url": page_url}, project_id=project_id))
    events.append(new_event("chat.visitor_message_posted", stream,
                            {"message_id": message_id, "text": text, "attachment": attachment}, project_id=project_id))
    return events


def decide_custom_params(state: Conversation, params: Any) -> list[Event]:
    cleaned = clean_params(params)
    merged = {**state.custom_params, **cleaned}
    if len(merged) > PARAMS_MAX:
        raise Rejected(413, "params_too_many", f"At most {PARAMS_MAX} custom params per conversation.")
    if merged == state.custom_params:
        return []
    return [new_event("chat.custom_params_set", _stream(state.id), {"params": cleaned}, project_id=state.project_id)]


def decide_contacts(state: Conversation, contacts: dict[str, Any]) -> list[Event]:
    return [new_event("chat.contacts_given", _stream(state.id), clean_contacts(contacts), project_id=state.project_id)]


# ---- operators ------------------------------------------------------------------

def can_see(state: Conversation, who: Operator) -> bool:
    return state.project_id == who.project_id and (
        who.is_admin or state.assignee_id is None or state.assignee_id == who.id)


def _require_handler(state: Conversation | None, who: Operator) -> Conversation:
    if state is None or not can_see(state, who):
        raise Rejected(404, "not_found", "Conversation not found.")
    if state.assignee_id is None and not who.is_admin:
        raise Rejected(409, "not_taken", "Take the conversation into work first.")
    if state.assignee_id not in (None, who.id) and not who.is_admin:
        raise Rejected(404, "not_found", "Conversation not found.")
    return state


def _operator_data(who: Operator) -> dict[str, Any]:
    return {"operator_id": who.id, "operator_name": who.name, "operator_avatar_url": who.avatar_url}


def decide_take(state: Conversation | None, who: Operator) -> list[Event]:
    if state is None or state.project_id != who.project_id:
        raise Rejected(404, "not_found", "Conversation not found.")
    if state.assignee_id == who.id:
        return []
    if state.assignee_id is not None:
        raise Rejected(409, "already_taken", f"Already taken by {state.assignee_name}.")
    stream = _stream(state.id)
    return [new_event("assignment.taken", stream, _operator_data(who), project_id=state.project_id),
            new_event("status.changed", stream, {"status": "in_work", "by_operator_id": who.id},
                      project_id=state.project_id)]


def decide_assign(state: Conversation | None, who: Operator, to: Operator) -> list[Event]:
    if not who.is_admin:
        raise Rejected(403, "forbidden", "Only an admin can assign conversations.")
    if state is None or state.project_id != who.project_id or to.project_id != who.project_id:
        raise Rejected(404, "not_found", "Conversation not found.")
    if state.assignee_id == to.id:
        return []
    stream = _stream(state.id)
    events = [new_event("assignment.assigned", stream,
                        {**_operator_data(to), "by_operator_id": who.id, "by_name": who.name},
                        project_id=state.project_id)]
    if state.status == "new":
        events.append(new_event("status.changed", stream, {"status": "in_work", "by_operator_id": who.id},
                                project_id=state.project_id))
    return events


def decide_reply(state: Conversation | None, who: Operator, message_id: str, text: Any,
                 attachment: dict | None) -> list[Event]:
    state = _require_handler(state, who)
    if message_id in state.message_ids:
        return []
    text = clean_text(text, allow_empty=attachment is not None)
    return [new_event("chat.operator_replied", _stream(state.id),
                      {"message_id": message_id, **_operator_data(who), "text": text, "attachment": attachment},
                      project_id=state.project_id)]


def decide_note(state: Conversation | None, who: Operator, note_id: str, text: Any) -> list[Event]:
    state = _require_handler(state, who)
    return [new_event("chat.note_added", _stream(state.id),
                      {"note_id": note_id, "operator_id": who.id, "operator_name": who.name,
                       "text": clean_text(text, NOTE_MAX)}, project_id=state.project_id)]


def decide_status(state: Conversation | None, who: Operator, status: Any) -> list[Event]:
    state = _require_handler(state, who)
    if status not in ("in_work", "closed"):
        raise Rejected(422, "status_invalid", "Status must be in_work or closed.")
    if status == state.status:
        return []
    return [new_event("status.changed", _stream(state.id), {"status": status, "by_operator_id": who.id},
                      project_id=state.project_id)]


def decide_request_lead(state: Conversation | None, who: Operator) -> list[Event]:
    """The CRM gets the transcript without notes, the contacts, the custom params, the page
    and the operator's email (to make the matching CRM manager responsible)."""
    state = _require_handler(state, who)
    return [new_event("lead.requested", _stream(state.id), {
        "conversation_id": state.id, "visitor_id": state.visitor_id, "transcript": list(state.transcript),
        "contacts": state.contacts, "custom_params": state.custom_params, "page_url": state.page_url,
        "operator_id": who.id, "operator_email": who.email}, project_id=state.project_id)]
