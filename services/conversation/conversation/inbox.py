"""The inbox's rules, pure: what one event does to a conversation's inbox row
(`conversations`) and which rows it adds to the tables beside it (message ids,
visitor_conversations, ratings). No I/O here: projection.py loads the rows, folds the
events with `evolve` and writes the result back - one event in the append's
transaction, or a whole partition batch in a rebuild - so both paths follow one set of
rules.

A row is a dict of COLUMNS, with JSON's values: those written by `evolve` are the
event's own (ids as strings, times as the event's ISO text), those loaded come as
PostgreSQL's JSON gives them (projection.row_of) - projection.py writes them back as text."""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from parley.contract import id_of
from parley.envelope import Event

PREVIEW = 140

COLUMNS = ("id", "project_id", "visitor_id", "status", "assignee_id", "assignee_name", "visitor_name", "contacts",
           "custom_params", "page_url", "last_message_text", "last_message_from", "last_message_at",
           "waiting_since", "unread", "started_at", "lead_requested_at", "version", "left_while_closed",
           "offer_id", "offered_to", "offered_at", "last_offered_to", "last_offered_at", "erased_at",
           "contacts_confirmed")

Row = dict[str, Any]

_NO_OFFER = {"offer_id": None, "offered_to": None, "offered_at": None}


def evolve(row: Row | None, event: Event, visitor_seqs: Iterable[int] = ()) -> Row | None:
    """The row after `event` (a new dict; `row` is left as it was). None stays None for
    any event but the start, as an UPDATE finds no row. `visitor_seqs` matters only to
    chat.read_by_operator: the seqs of the conversation's visitor messages before it
    (at least those after its read mark) - unread is how many came after the mark."""
    if event.type == "chat.conversation_started":
        return start(row, event)
    if row is None:
        return None
    row = dict(row)
    follow(row, event, visitor_seqs)
    return row


def start(row: Row | None, event: Event) -> Row:
    """The row a chat.conversation_started makes."""
    if row is not None:   # as the INSERT would: a conversation starts once
        raise ValueError(f"conversation {id_of(event.stream_id)} started twice")
    d = event.data
    return {**dict.fromkeys(COLUMNS), "id": id_of(event.stream_id), "project_id": event.project_id,
            "visitor_id": d["visitor_id"], "status": "new", "contacts": {}, "contacts_confirmed": [],
            "custom_params": {},
            "page_url": d.get("page_url"), "unread": 0, "started_at": event.occurred_at,
            "version": event.stream_version, "left_while_closed": bool(d.get("left_while_closed"))}


def follow(row: Row, event: Event, visitor_seqs: Iterable[int] = ()) -> None:
    """`row` changed in place by any event but the start: evolve without the copy, for a
    batch that folds many events into a row it owns (projection.apply_all)."""
    d, at = event.data, event.occurred_at
    match event.type:   # the most frequent first
        case "chat.visitor_message_posted":
            row["last_message_text"] = preview(d["text"], d.get("attachment"))
            row["last_message_from"] = "visitor"
            row["last_message_at"] = at
            row["unread"] += 1
            if row["waiting_since"] is None:
                row["waiting_since"] = at
        case "chat.operator_replied":
            row["last_message_text"] = preview(d["text"], d.get("attachment"))
            row["last_message_from"] = "operator"
            row["last_message_at"] = at
            row["unread"] = 0
            row["waiting_since"] = None
        case "chat.read_by_operator":   # opened by an operator: unread is what came after it
            mark, before = d["seq"], event.stream_version
            row["unread"] = sum(1 for seq in visitor_seqs if mark < seq < before)
        case "status.changed":
            row["status"] = d["status"]
            if d["status"] in ("new", "closed"):   # as the aggregate: no offer stands any more
                row.update(_NO_OFFER)
        case "chat.page_visited":
            row["page_url"] = d["page_url"]
        case "chat.custom_params_set":
            row["custom_params"] = {**row["custom_params"], **d["params"]}
        case "chat.contacts_given":
            given = {k: d.get(k) for k in ("name", "phone", "email") if d.get(k)}
            # contacts_confirmed: the fields an operator entered or confirmed (issue 23: only
            # those find other people's conversations and are looked up in the CRM).
            if d.get("by_operator_id"):  # an operator's contacts replace what was known
                row.update(contacts=given, visitor_name=d.get("name"), contacts_confirmed=sorted(given))
            else:  # the visitor's add to it; a name that is not given keeps the known one
                row["contacts"] = {**row["contacts"], **given}
                row["contacts_confirmed"] = [k for k in row["contacts_confirmed"] or () if k not in given]
                if d.get("name") is not None:
                    row["visitor_name"] = d["name"]
        case "assignment.taken" | "assignment.assigned" | "assignment.accepted":
            row.update(_NO_OFFER, assignee_id=d["operator_id"], assignee_name=d["operator_name"])
        case "assignment.offered":
            row.update(offer_id=d["offer_id"], offered_to=d["operator_id"], offered_at=at,
                       last_offered_to=d["operator_id"], last_offered_at=at)
        case "assignment.offer_expired":
            if _same_id(row["offer_id"], d["offer_id"]):   # a later offer stands: it stays
                row.update(_NO_OFFER)
        case "lead.requested":
            row["lead_requested_at"] = at
        case "chat.conversation_erased":   # a record is left: status, operator, times, counts
            row.update(visitor_name=None, contacts={}, contacts_confirmed=[], custom_params={}, page_url=None,
                       last_message_text=None, erased_at=at)
    if event.stream_version > row["version"]:
        row["version"] = event.stream_version


class Message(NamedTuple):
    """A conversation_messages row: which message ids a conversation has, and their seq."""
    conversation_id: str
    side: str
    message_id: str
    seq: int


def message(event: Event) -> Message | None:
    match event.type:
        case "chat.visitor_message_posted":
            return Message(id_of(event.stream_id), "visitor", event.data["message_id"], event.stream_version)
        case "chat.operator_replied":
            return Message(id_of(event.stream_id), "operator", event.data["message_id"], event.stream_version)
    return None


class VisitorConversation(NamedTuple):
    """A start moves the visitor's current conversation (visitor_conversations) to this
    one; after a closed conversation (`previous`, the offline form's case) it takes the
    previous one's place. Without `previous` the visitor must have none: two first
    messages sent at once must end in one conversation (handlers.visitor_message)."""
    project_id: str
    visitor_id: str
    conversation_id: str
    previous: str | None


def visitor_conversation(event: Event) -> VisitorConversation | None:
    if event.type != "chat.conversation_started":
        return None
    return VisitorConversation(event.project_id, event.data["visitor_id"], id_of(event.stream_id),
                               event.data.get("previous_conversation_id") or None)


class Rating(NamedTuple):
    conversation_id: str
    project_id: str
    operator_id: str | None
    operator_name: str | None
    rating: int
    comment: str | None
    rated_at: str


def rating(event: Event) -> Rating | None:
    if event.type != "chat.rated":
        return None
    d = event.data
    return Rating(id_of(event.stream_id), event.project_id, d["operator_id"], d["operator_name"], d["rating"],
                  d["comment"], event.occurred_at)


def preview(text: str, attachment: dict | None) -> str:
    if not text and attachment:
        return f"📎 {attachment['name']}"
    return text if len(text) <= PREVIEW else text[:PREVIEW - 1] + "…"


def _same_id(a: Any, b: Any) -> bool:
    """Ids compare as PostgreSQL compares uuids: in any case (its JSON writes them in lower)."""
    return a is not None and b is not None and str(a).lower() == str(b).lower()
