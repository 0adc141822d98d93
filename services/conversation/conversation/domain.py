"""The Conversation aggregate: pure state, evolve and decide.

Stream `conversation-<uuid>`; every event goes to `conversation.events`, so a reply can
never overtake its conversation's start. Families: chat.*, assignment.*, status.*, lead.*.

Decisions worth knowing:
- A visitor message whose client id the conversation already has appends nothing:
  resends after a reconnect or reload are absorbed here. Visitor message ids and
  operator reply ids are kept apart, so neither side can make the other's message
  look like a resend.
- Exactly one operator takes a conversation; the others get 409 already_taken (naming
  the winner to admins only: nobody else may see it now). Replies, notes, status changes and lead requests need the assignee or an
  admin; an unclaimed conversation must be taken first.
- Conversations end: once closed, the visitor's next message starts a new conversation
  (`previous_conversation_id` links it to the closed one; handlers.py picks which). A
  message that reaches a conversation closed a moment before (the close won a race
  with it) reopens that one instead (status back to in_work with the same assignee, or
  new if nobody had it), so nothing the visitor sent is refused.
- Working hours (docs/working-hours.md): while the chat is closed (`chat_open` False,
  as the gateway computes it) nothing may start or reopen a conversation - that is
  `chat_closed`; a conversation that is not closed carries on. The offline form
  (decide_offline) starts one marked `left_while_closed`, with contacts and message.
- Real-world input gets a final answer: control characters are stripped from text, a
  page URL is cut to the length the events allow, never refused; anything else that
  cannot be stored is a DomainError (parley.http maps its kind to an HTTP status)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from parley.contract import conversation_stream, id_of, operator_may_see
from parley.domain_error import DomainError
from parley.envelope import Event, new_event
from parley.text import strip_controls

TEXT_MAX = 4000
NOTE_MAX = 4000
PAGE_URL_MAX = 2000          # maxLength of page_url in chat.conversation_started, chat.page_visited, lead.requested
PARAMS_MAX = 20
PARAM_KEY_MAX = 64
PARAM_VALUE_MAX = 256
CONTACT_MAX = 200
STATUSES = ("new", "in_work", "closed")


def _not_found() -> DomainError:
    return DomainError("not_found", "Conversation not found.", "not_found")


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
    message_ids: frozenset[str] = frozenset()     # the visitor's (the widget's client ids)
    reply_ids: frozenset[str] = frozenset()       # the operators'
    custom_params: dict[str, str] = field(default_factory=dict)
    contacts: dict[str, str | None] = field(default_factory=dict)
    contacts_confirmed: tuple[str, ...] = ()   # the fields an operator entered or confirmed (issue 23)
    page_url: str | None = None
    transcript: tuple[dict[str, Any], ...] = ()   # what a lead carries: messages, never notes
    left_while_closed: bool = False                # started by the offline form while the chat was closed
    # Auto-assignment (offers.py): the offer waiting for an Accept, and who has been
    # offered the conversation since it was last new (each at most once per round).
    offer_id: str | None = None
    offer_to: str | None = None
    offered_ids: tuple[str, ...] = ()
    # Read receipts (receipts.py): the seq of each side's last message, and how far each
    # side has read the other's; CSAT (ratings.py): rated once.
    last_visitor_seq: int = 0
    last_reply_seq: int = 0
    read_by_operator_seq: int = 0
    read_by_visitor_seq: int = 0
    rated: bool = False
    leads_requested: int = 0    # "Send to CRM" done this many times (a second needs `again`)
    erased: bool = False        # its personal data erased (issue 20): a closed record, nothing more


def evolve(state: Conversation | None, event: Event) -> Conversation:
    d = event.data
    match event.type:
        case "chat.conversation_started":
            return Conversation(id=id_of(event.stream_id), project_id=event.project_id,
                                visitor_id=d["visitor_id"], page_url=d.get("page_url"),
                                left_while_closed=bool(d.get("left_while_closed")))
        case "chat.visitor_message_posted":
            return replace(state, message_ids=state.message_ids | {d["message_id"]},
                           last_visitor_seq=event.stream_version,
                           transcript=state.transcript + ({"from": "visitor", "text": d["text"],
                                                           "attachment": d.get("attachment"),
                                                           "at": event.occurred_at},))
        case "chat.operator_replied":
            return replace(state, reply_ids=state.reply_ids | {d["message_id"]},
                           last_reply_seq=event.stream_version,
                           transcript=state.transcript + ({"from": "operator", "operator": d["operator_name"],
                                                           "text": d["text"], "attachment": d.get("attachment"),
                                                           "at": event.occurred_at},))
        case "chat.custom_params_set":
            return replace(state, custom_params={**state.custom_params, **d["params"]})
        case "chat.contacts_given":  # the visitor's add to what is known; an operator's replace it
            given = {k: d.get(k) for k in ("name", "phone", "email") if d.get(k)}
            if d.get("by_operator_id"):
                return replace(state, contacts=given, contacts_confirmed=tuple(sorted(given)))
            return replace(state, contacts={**state.contacts, **given},
                           contacts_confirmed=tuple(k for k in state.contacts_confirmed if k not in given))
        case "chat.page_visited":
            return replace(state, page_url=d["page_url"])
        case "chat.read_by_operator":
            return replace(state, read_by_operator_seq=max(state.read_by_operator_seq, d["seq"]))
        case "chat.read_by_visitor":
            return replace(state, read_by_visitor_seq=max(state.read_by_visitor_seq, d["seq"]))
        case "chat.rated":
            return replace(state, rated=True)
        case "lead.requested":
            return replace(state, leads_requested=state.leads_requested + 1)
        case "chat.conversation_erased":   # what the state kept of the visitor goes too
            return replace(state, erased=True, contacts={}, contacts_confirmed=(), custom_params={}, page_url=None,
                           transcript=(), offer_id=None, offer_to=None)
        case "assignment.taken" | "assignment.assigned" | "assignment.accepted":
            return replace(state, assignee_id=d["operator_id"], assignee_name=d["operator_name"],
                           offer_id=None, offer_to=None)
        case "assignment.offered":   # each operator once a round; a new round starts the list again
            tried = () if d.get("new_round") else state.offered_ids
            return replace(state, offer_id=d["offer_id"], offer_to=d["operator_id"],
                           offered_ids=tried + (d["operator_id"],))
        case "assignment.offer_expired":
            return replace(state, offer_id=None, offer_to=None) if state.offer_id == d["offer_id"] else state
        case "status.changed":
            if d["status"] == "new":   # back with nobody on it: a new round of offers
                return replace(state, status="new", offer_id=None, offer_to=None, offered_ids=())
            if d["status"] == "closed":
                return replace(state, status="closed", offer_id=None, offer_to=None)
            return replace(state, status=d["status"])
    return state


def fold(events: list[Event], state: Conversation | None = None) -> Conversation | None:
    """The state after `events`, from scratch or on top of `state`."""
    for event in events:
        state = evolve(state, event)
    return state


# ---- the kept state -------------------------------------------------------------
# Commands decide on the state kept beside the stream (the conversation_state row,
# written in the transaction that appends the events it follows), never by folding the
# whole stream. It keeps everything a decision reads but what grows with every message:
# the transcript (only a lead request reads it, from the events) and the message ids
# (looked up by id: conversation_messages). The events stay the source of truth: the
# kept state must equal kept(fold(events)), and a row of another STATE_FORMAT is
# rebuilt from them.

STATE_FORMAT = 6   # 2: offers; 3: read receipts and the rating; 4: leads requested; 5: erased; 6: confirmed contacts


def kept(state: Conversation | None) -> Conversation | None:
    """The part of a state the state row keeps."""
    if state is None:
        return None
    return replace(state, transcript=(), message_ids=frozenset(), reply_ids=frozenset())


def to_state(state: Conversation) -> dict[str, Any]:
    """The state row's JSON."""
    return {"format": STATE_FORMAT, "id": state.id, "project_id": state.project_id, "visitor_id": state.visitor_id,
            "status": state.status, "assignee_id": state.assignee_id, "assignee_name": state.assignee_name,
            "custom_params": state.custom_params, "contacts": state.contacts,
            "contacts_confirmed": list(state.contacts_confirmed), "page_url": state.page_url,
            "left_while_closed": state.left_while_closed, "offer_id": state.offer_id, "offer_to": state.offer_to,
            "offered_ids": list(state.offered_ids), "last_visitor_seq": state.last_visitor_seq,
            "last_reply_seq": state.last_reply_seq, "read_by_operator_seq": state.read_by_operator_seq,
            "read_by_visitor_seq": state.read_by_visitor_seq, "rated": state.rated,
            "leads_requested": state.leads_requested, "erased": state.erased}


def from_state(row: dict[str, Any], *, message_ids: frozenset[str] = frozenset(),
               reply_ids: frozenset[str] = frozenset()) -> Conversation | None:
    """The state a row keeps, with the message ids a command asks about (the ones found);
    None for a row of another format (rebuild it from the events)."""
    if row.get("format") != STATE_FORMAT:
        return None
    fields = {k: v for k, v in row.items() if k != "format"}
    fields["offered_ids"] = tuple(fields.get("offered_ids") or ())
    fields["contacts_confirmed"] = tuple(fields.get("contacts_confirmed") or ())
    return Conversation(**fields, message_ids=message_ids, reply_ids=reply_ids)


def clean_text(text: Any, limit: int = TEXT_MAX, *, allow_empty: bool = False) -> str:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise DomainError("text_invalid", "Text must be a string.")
    text = strip_controls(text).strip()
    if not text and not allow_empty:
        raise DomainError("text_empty", "Write something first.")
    if len(text) > limit:
        raise DomainError("text_too_long", f"The message is {len(text)} characters; at most {limit}.", "too_large")
    return text


def clean_page_url(page_url: Any) -> str | None:
    """The page the visitor writes from, cut to what the events hold (long UTM tails are
    common); anything that is not text is no page. Never a reason to refuse a message."""
    if not isinstance(page_url, str):
        return None
    return strip_controls(page_url).strip()[:PAGE_URL_MAX].strip() or None


_FILE_ID = re.compile(r"^[a-f0-9]{32}$")


def clean_attachment(attachment: Any) -> dict[str, Any] | None:
    """None, or a file the gateway stored: {file_id, name, size, content_type}."""
    if attachment is None:
        return None
    if (not isinstance(attachment, dict) or set(attachment) != {"file_id", "name", "size", "content_type"}
            or not isinstance(attachment["file_id"], str) or not _FILE_ID.match(attachment["file_id"])
            or not isinstance(attachment["name"], str) or not 1 <= len(attachment["name"]) <= 255
            or isinstance(attachment["size"], bool) or not isinstance(attachment["size"], int)
            or attachment["size"] < 0
            or not isinstance(attachment["content_type"], str) or not 1 <= len(attachment["content_type"]) <= 100):
        raise DomainError("attachment_invalid", "The attachment is not a file uploaded here.")
    return attachment


def clean_params(params: Any) -> dict[str, str]:
    if not isinstance(params, dict):
        raise DomainError("params_invalid", "Custom params must be an object of names to values.")
    if len(params) > PARAMS_MAX:
        raise DomainError("params_too_many", f"At most {PARAMS_MAX} custom params; got {len(params)}.", "too_large")
    cleaned = {}
    for key, value in params.items():
        if isinstance(value, bool | int | float):
            value = str(value)
        key = strip_controls(key) if isinstance(key, str) else key
        if not isinstance(key, str) or not key or len(key) > PARAM_KEY_MAX:
            raise DomainError("params_invalid", f"Param names are 1-{PARAM_KEY_MAX} characters.")
        if not isinstance(value, str) or len(value := strip_controls(value)) > PARAM_VALUE_MAX:
            raise DomainError("params_invalid",
                              f"Param {key!r}: values are text up to {PARAM_VALUE_MAX} characters.")
        cleaned[key] = value
    return cleaned


EMAIL_MAX = CONTACT_MAX   # addresses may be 254 long, but the events (chat.contacts_given, lead.requested) hold 200
PHONE_DIGITS = (5, 15)   # E.164 numbers have at most 15 digits; fewer than 5 is no phone
_PHONE_NOISE = re.compile(r"[\s\-().\u00a0]")


def normalise_phone(raw: str) -> str:
    """A phone as typed, in E.164 where that is certain, else its digits as given.

    Spaces, dashes, dots and parentheses go; a leading + stays (a leading 00 becomes +).
    Russian habits: 8XXXXXXXXXX (11 digits) and 7XXXXXXXXXX become +7XXXXXXXXXX, and a
    10-digit number starting with 9 (a mobile without its code) becomes +79XXXXXXXXX.
    Anything else keeps its digits as given (no guessing of other countries). A phone
    with anything but digits after that, or outside 5-15 digits, is refused."""
    s = _PHONE_NOISE.sub("", raw)
    plus = s.startswith("+")
    digits = s[1:] if plus else s
    if not plus and digits.startswith("00"):
        plus, digits = True, digits[2:]
    if not re.fullmatch(r"[0-9]+", digits) or not PHONE_DIGITS[0] <= len(digits) <= PHONE_DIGITS[1]:
        raise DomainError("phone_invalid", f"A phone is {PHONE_DIGITS[0]}-{PHONE_DIGITS[1]} digits, "
                                           "with an optional leading +.")
    if plus:
        return "+" + digits
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "+7" + digits
    return digits


_EMAIL = re.compile(r"[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]")


def check_email(raw: str) -> str:
    """Light: one @, something before it, a dot inside the domain, no spaces, at most EMAIL_MAX."""
    if len(raw) > EMAIL_MAX or not _EMAIL.fullmatch(raw):
        raise DomainError("email_invalid", f"An email looks like name@example.com (at most {EMAIL_MAX} characters).")
    return raw


def clean_contacts(contacts: dict[str, Any], *, allow_empty: bool = False) -> dict[str, str | None]:
    """{name, phone, email}: text or null, controls stripped, the phone normalised
    (normalise_phone), the email checked (check_email). Refusals name the field:
    name_invalid, phone_invalid, email_invalid; none given at all is contacts_empty."""
    cleaned = {}
    for key in ("name", "phone", "email"):
        value = contacts.get(key)
        limit = EMAIL_MAX if key == "email" else CONTACT_MAX
        if value is not None and not isinstance(value, str):
            raise DomainError(f"{key}_invalid", f"{key} must be text up to {limit} characters.")
        value = strip_controls(value).strip() if value is not None else ""
        if len(value) > limit:
            raise DomainError(f"{key}_invalid", f"{key} must be text up to {limit} characters.")
        if value and key == "phone":
            value = normalise_phone(value)
        elif value and key == "email":
            value = check_email(value)
        cleaned[key] = value or None
    if not any(cleaned.values()) and not allow_empty:
        raise DomainError("contacts_empty", "Give a name, a phone or an email.")
    return cleaned


# ---- erasure (issue 20) ------------------------------------------------------------

def erased() -> DomainError:
    return DomainError("conversation_erased", "This conversation's personal data was erased; it is kept only as a "
                       "record.", "conflict")


def decide_erase(state: Conversation | None, erasure_id: str, reason: str = "request",
                 file_ids: Sequence[str] = ()) -> list[Event]:
    """Erase the conversation's personal data: closed if it was not, then marked erased
    with the files its messages carried (the gateway deletes them; the I/O here wipes the
    key and scrubs the rows: conversation/erasure.py). Erased already: nothing."""
    if state is None:
        raise _not_found()
    if state.erased:
        return []
    stream = conversation_stream(state.id)
    events = []
    if state.status != "closed":
        events.append(new_event("status.changed", stream, {"status": "closed", "by_operator_id": None,
                                                           "reason": "erased"}, project_id=state.project_id))
    return events + [new_event("chat.conversation_erased", stream, {"erasure_id": erasure_id, "reason": reason,
                                                                    "file_ids": sorted(set(file_ids))},
                               project_id=state.project_id)]


# ---- the visitor ----------------------------------------------------------------

def chat_closed() -> DomainError:
    return DomainError("chat_closed", "The chat is closed now: leave a message in the form and we will answer.",
                       "conflict")


def _started(conversation_id: str, project_id: str, visitor_id: str, page_url: str | None, *,
             left_while_closed: bool = False, previous_conversation_id: str | None = None) -> Event:
    data: dict[str, Any] = {"visitor_id": visitor_id, "page_url": page_url}
    if left_while_closed:
        data["left_while_closed"] = True
    if previous_conversation_id:
        data["previous_conversation_id"] = previous_conversation_id
    return new_event("chat.conversation_started", conversation_stream(conversation_id), data, project_id=project_id)


def decide_visitor_message(state: Conversation | None, *, conversation_id: str, project_id: str, visitor_id: str,
                           message_id: str, text: Any, attachment: Any, page_url: Any,
                           chat_open: bool = True, previous_conversation_id: str | None = None) -> list[Event]:
    attachment = clean_attachment(attachment)
    text = clean_text(text, allow_empty=attachment is not None)
    page_url = clean_page_url(page_url)
    stream = conversation_stream(conversation_id)
    events = []
    if not chat_open and (state is None or (state.status == "closed" and message_id not in state.message_ids)):
        raise chat_closed()  # nothing may start or reopen a conversation outside working hours
    if state is None:
        events.append(_started(conversation_id, project_id, visitor_id, page_url,
                               previous_conversation_id=previous_conversation_id))
    elif state.visitor_id != visitor_id:
        raise DomainError("forbidden", "This is not your conversation.", "forbidden")
    elif message_id in state.message_ids:
        return []
    else:
        if state.status == "closed":
            events.append(new_event("status.changed", stream,
                                    {"status": "in_work" if state.assignee_id else "new", "by_operator_id": None},
                                    project_id=project_id))
        if page_url and page_url != state.page_url:
            events.append(new_event("chat.page_visited", stream, {"page_url": page_url}, project_id=project_id))
    events.append(new_event("chat.visitor_message_posted", stream,
                            {"message_id": message_id, "text": text, "attachment": attachment}, project_id=project_id))
    return events


def decide_invited(state: Conversation, inviter: Operator, invitation_id: str, text: Any) -> list[Event]:
    """A conversation the visitor starts by answering an operator's invitation (issue 24,
    item 3; the gateway keeps invitations, gateway/live/site_visitors.py): it is the
    inviting operator's at once, with the invitation as its first operator message, so
    the transcript, a lead and a search read as the visitor saw it."""
    if inviter.project_id != state.project_id:
        raise _not_found()
    stream = conversation_stream(state.id)
    return [new_event("assignment.taken", stream, _operator_data(inviter), project_id=state.project_id),
            new_event("status.changed", stream, {"status": "in_work", "by_operator_id": inviter.id},
                      project_id=state.project_id),
            new_event("chat.operator_replied", stream,
                      {"message_id": invitation_id, **_operator_data(inviter), "text": clean_text(text),
                       "attachment": None}, project_id=state.project_id)]


def decide_custom_params(state: Conversation, params: Any) -> list[Event]:
    cleaned = clean_params(params)
    merged = {**state.custom_params, **cleaned}
    if len(merged) > PARAMS_MAX:
        raise DomainError("params_too_many", f"At most {PARAMS_MAX} custom params per conversation.", "too_large")
    if merged == state.custom_params:
        return []
    return [new_event("chat.custom_params_set", conversation_stream(state.id), {"params": cleaned},
                      project_id=state.project_id)]


def decide_contacts(state: Conversation | None, contacts: dict[str, Any], *, conversation_id: str | None = None,
                    project_id: str | None = None, visitor_id: str | None = None, page_url: Any = None,
                    params: dict[str, str] | None = None, chat_open: bool = True,
                    previous_conversation_id: str | None = None) -> list[Event]:
    """The visitor's contact form. Contacts given before any message start the conversation
    (while the chat is open), with the params the socket held; contacts the
    conversation already has append nothing (a resent form)."""
    cleaned = clean_contacts(contacts)
    events = []
    if state is None:
        if conversation_id is None:
            raise _not_found()
        if not chat_open:
            raise chat_closed()
        events.append(_started(conversation_id, project_id, visitor_id, clean_page_url(page_url),
                               previous_conversation_id=previous_conversation_id))
        state = evolve(None, events[0])
        if params:
            events += decide_custom_params(state, params)
    elif visitor_id is not None and state.visitor_id != visitor_id:
        raise DomainError("forbidden", "This is not your conversation.", "forbidden")
    elif all(state.contacts.get(k) == v for k, v in cleaned.items() if v):
        return []
    return events + [new_event("chat.contacts_given", conversation_stream(state.id), cleaned,
                               project_id=state.project_id)]


def decide_transcript_request(state: Conversation | None, visitor_id: str, email: Any) -> list[Event]:
    """"Email me this conversation" from the widget (issue 24, item 5): crm-bridge sends it
    as it stands at this event, without notes. An erased conversation has nothing to send."""
    if state is None or state.visitor_id != visitor_id:
        raise _not_found()
    if state.erased:
        raise erased()
    if not isinstance(email, str):
        raise DomainError("email_invalid", "Give the email address to send the conversation to.")
    return [new_event("chat.transcript_requested", conversation_stream(state.id), {"email": check_email(email.strip())},
                      project_id=state.project_id)]


def decide_offline(state: Conversation | None, *, conversation_id: str, project_id: str, visitor_id: str,
                   message_id: str, contacts: dict[str, Any], text: Any, page_url: Any,
                   params: dict[str, str] | None = None, chat_open: bool = False,
                   previous_conversation_id: str | None = None) -> list[Event]:
    """The offline form: contacts (a phone or an email required) and a message. With no
    conversation (or after a closed one: `previous_conversation_id`) it starts one,
    marked `left_while_closed` when the chat is closed; into a conversation that is
    still going it adds the contacts and the message. The message id is the form's
    frame id, so a resent form appends nothing."""
    cleaned = clean_contacts(contacts)
    if not cleaned["phone"] and not cleaned["email"]:
        raise DomainError("contact_required", "Leave a phone or an email so that we can answer.")
    text = clean_text(text)
    events: list[Event] = []
    if state is None:
        events.append(_started(conversation_id, project_id, visitor_id, clean_page_url(page_url),
                               left_while_closed=not chat_open, previous_conversation_id=previous_conversation_id))
        state = evolve(None, events[0])
        if params:
            events += decide_custom_params(state, params)
    elif state.visitor_id != visitor_id:
        raise DomainError("forbidden", "This is not your conversation.", "forbidden")
    elif message_id in state.message_ids:
        return []
    events += decide_contacts(state, cleaned, visitor_id=visitor_id)
    return events + decide_visitor_message(state, conversation_id=state.id, project_id=state.project_id,
                                           visitor_id=visitor_id, message_id=message_id, text=text,
                                           attachment=None, page_url=page_url, chat_open=True)


def decide_close_idle(state: Conversation | None, hours: Any, since_version: int | None = None) -> list[Event]:
    """The scheduler's idle timer fired: no message either way for `hours` working hours
    since the event at `since_version`, the one that set the timer. Closed with the
    reason; a conversation already closed stays as it is, and so does one with a message
    after that event (the scheduler does not move the timer on every message: it sets it
    again from the last one, scheduler/timers.py)."""
    if state is None:
        raise _not_found()
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 720:
        raise DomainError("hours_invalid", "hours is the idle timer's setting, 1-720.")
    if state.status == "closed":
        return []
    if since_version is not None and max(state.last_visitor_seq, state.last_reply_seq) > since_version:
        return []
    return [new_event("status.changed", conversation_stream(state.id),
                      {"status": "closed", "by_operator_id": None, "reason": "idle", "idle_hours": hours},
                      project_id=state.project_id)]


# ---- operators ------------------------------------------------------------------

def can_see(state: Conversation, who: Operator) -> bool:
    return operator_may_see(state.project_id, state.assignee_id, project_id=who.project_id, operator_id=who.id,
                            is_admin=who.is_admin)


def _require_handler(state: Conversation | None, who: Operator) -> Conversation:
    """Replies, notes, status and leads: the assignee, or an admin; unclaimed must be taken first."""
    if state is None or not can_see(state, who):
        raise _not_found()
    if state.erased:
        raise erased()
    if state.assignee_id is None and not who.is_admin:
        raise DomainError("not_taken", "Take the conversation into work first.", "conflict")
    return state


def _operator_data(who: Operator) -> dict[str, Any]:
    return {"operator_id": who.id, "operator_name": who.name, "operator_avatar_url": who.avatar_url}


def decide_take(state: Conversation | None, who: Operator) -> list[Event]:
    if state is None or state.project_id != who.project_id:
        raise _not_found()
    if state.assignee_id == who.id:
        return []
    if state.assignee_id is not None:
        # Only an admin may see someone else's conversation, so only an admin is told whose it is.
        raise DomainError("already_taken", f"Already taken by {state.assignee_name}." if who.is_admin
                          else "Another operator has already taken it.", "conflict")
    stream = conversation_stream(state.id)
    return [new_event("assignment.taken", stream, _operator_data(who), project_id=state.project_id),
            new_event("status.changed", stream, {"status": "in_work", "by_operator_id": who.id},
                      project_id=state.project_id)]


def decide_assign(state: Conversation | None, who: Operator, to: Operator) -> list[Event]:
    if not who.is_admin:
        raise DomainError("forbidden", "Only an admin can assign conversations.", "forbidden")
    if state is None or state.project_id != who.project_id or to.project_id != who.project_id:
        raise _not_found()
    if state.assignee_id == to.id:
        return []
    stream = conversation_stream(state.id)
    events = [new_event("assignment.assigned", stream,
                        {**_operator_data(to), "by_operator_id": who.id, "by_name": who.name},
                        project_id=state.project_id)]
    if state.status == "new":
        events.append(new_event("status.changed", stream, {"status": "in_work", "by_operator_id": who.id},
                                project_id=state.project_id))
    return events


def decide_reply(state: Conversation | None, who: Operator, message_id: str, text: Any,
                 attachment: Any) -> list[Event]:
    state = _require_handler(state, who)
    if message_id in state.reply_ids:
        return []
    attachment = clean_attachment(attachment)
    text = clean_text(text, allow_empty=attachment is not None)
    return [new_event("chat.operator_replied", conversation_stream(state.id),
                      {"message_id": message_id, **_operator_data(who), "text": text, "attachment": attachment},
                      project_id=state.project_id)]


def decide_note(state: Conversation | None, who: Operator, note_id: str, text: Any) -> list[Event]:
    state = _require_handler(state, who)
    return [new_event("chat.note_added", conversation_stream(state.id),
                      {"note_id": note_id, "operator_id": who.id, "operator_name": who.name,
                       "text": clean_text(text, NOTE_MAX)}, project_id=state.project_id)]


def decide_operator_contacts(state: Conversation | None, who: Operator, contacts: Any) -> list[Event]:
    """An operator types or corrects the contacts (assignee or admin, like replies): the
    contacts become exactly these - a field left empty is cleared - and count as
    confirmed. The same contacts, already confirmed: nothing."""
    state = _require_handler(state, who)
    if not isinstance(contacts, dict):
        raise DomainError("contacts_invalid", "Send {name, phone, email}.")
    cleaned = clean_contacts(contacts, allow_empty=True)
    same = {k: v for k, v in cleaned.items() if v}
    if same == {k: v for k, v in state.contacts.items() if v} and set(same) <= set(state.contacts_confirmed):
        return []
    return [new_event("chat.contacts_given", conversation_stream(state.id), {**cleaned, "by_operator_id": who.id},
                      project_id=state.project_id)]


def decide_status(state: Conversation | None, who: Operator, status: Any) -> list[Event]:
    state = _require_handler(state, who)
    if not isinstance(status, str) or status not in ("in_work", "closed"):
        raise DomainError("status_invalid", "Status must be in_work or closed.")
    if status == state.status:
        return []
    return [new_event("status.changed", conversation_stream(state.id), {"status": status, "by_operator_id": who.id},
                      project_id=state.project_id)]


def decide_request_lead(state: Conversation | None, who: Operator, *, known: dict[str, str] | None = None,
                        again: bool = False) -> list[Event]:
    """The CRM gets the transcript without notes, the contacts, the custom params, the page
    and the operator's email (to make the matching CRM manager responsible).

    `known`: what Parley already knows of this client from their earlier conversations
    (the client card's contacts); it fills what this conversation lacks, so a returning
    Maria Ivanova's lead is titled with her name. A lead nobody can call or write back
    is refused (`lead_contacts_missing`), and so is a second lead for the conversation
    unless asked for in so many words (`again`): one stray click makes neither an empty
    nor a duplicate lead."""
    state = _require_handler(state, who)
    if state.leads_requested and not again:
        raise DomainError("lead_already_sent", "A lead was already sent to the CRM for this conversation. "
                          "Send again only to make a second lead (again: true).", "conflict")
    contacts = {k: v for k, v in (known or {}).items() if k in ("name", "phone", "email") and v}
    contacts.update({k: v for k, v in state.contacts.items() if v})
    if not contacts.get("phone") and not contacts.get("email"):
        raise DomainError("lead_contacts_missing", "The lead would have no phone or email to reach the client: "
                          "add their contacts to the conversation first.")
    return [new_event("lead.requested", conversation_stream(state.id), {
        "conversation_id": state.id, "visitor_id": state.visitor_id, "transcript": list(state.transcript),
        "contacts": contacts, "custom_params": state.custom_params, "page_url": state.page_url,
        "operator_id": who.id, "operator_email": who.email}, project_id=state.project_id)]
