"""What the conversation service reads and never writes: the inbox, a conversation's
row and events, the returning client's card, who may see a conversation. Read-only SQL
over the projection (projection.py writes it) and the event store; each function takes
the pool or the store, not a request, so handlers and routes share them."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import asyncpg

from parley.contract import conversation_stream, operator_may_see
from parley.eventstore import EventStore

from conversation import domain, identities
from conversation.domain import DomainError, Operator

INBOX_LIMIT = 200
CLIENT_HISTORY_LIMIT = 20

_ROW = f"""id::text, project_id, visitor_id, status, assignee_id::text, assignee_name, visitor_name, contacts,
          custom_params, page_url, last_message_text, last_message_from, last_message_at, waiting_since, unread,
          started_at, lead_requested_at, left_while_closed, version, erased_at, {identities.IDENTITY_COLUMN}"""
# The inbox's views: (where, whether it takes the operator's id).
_INBOX_VIEWS = {
    "new": ("status = 'new' and assignee_id is null", False),
    "mine": ("assignee_id = $2 and status <> 'closed'", True),
    "closed": ("assignee_id = $2 and status = 'closed'", True),   # one's own finished, newest first (admins too)
    "all": ("true", False),
}


def _row_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    for key in ("last_message_at", "waiting_since", "started_at", "lead_requested_at", "erased_at"):
        view[key] = view[key].isoformat() if view[key] else None
    return view


async def conversation_row(pool: asyncpg.Pool, conversation_id: str) -> dict[str, Any] | None:
    """A conversation's inbox row, as the app shows it."""
    row = await pool.fetchrow(f"select {_ROW} from conversations where id = $1", conversation_id)
    return _row_view(row) if row is not None else None


async def inbox(pool: asyncpg.Pool, me: Operator, view: str) -> list[dict[str, Any]]:
    if view not in _INBOX_VIEWS:
        raise DomainError("view_invalid", "view is new, mine, closed or all.")
    if view == "all" and not me.is_admin:
        raise DomainError("forbidden", "Only admins see every conversation.", "forbidden")
    where, mine = _INBOX_VIEWS[view]
    rows = await pool.fetch(
        f"""select {_ROW} from conversations where project_id = $1 and {where}
            order by last_message_at desc nulls last limit {INBOX_LIMIT}""", me.project_id, *((me.id,) if mine else ()))
    return [_row_view(r) for r in rows]


async def handles_this_visitor(pool: asyncpg.Pool, project_id: str, visitor_id: str, me: Operator) -> bool:
    """An operator who may see one of a visitor's conversations may read the visitor's
    others (their history, from the side panel), even those another operator handled;
    reading only - commands still need the conversation itself (domain.can_see)."""
    return project_id == me.project_id and bool(await pool.fetchval(
        """select exists (select 1 from conversations where project_id = $1 and visitor_id = $2
                          and (assignee_id is null or assignee_id = $3))""",
        project_id, visitor_id, me.id))


async def events(store: EventStore, conversation_id: str, after: int = 0) -> list[dict[str, Any]]:
    return [e.to_dict() for e in await store.load(conversation_stream(conversation_id), after=max(after, 0))]


async def summary(pool: asyncpg.Pool, conversation_id: str) -> dict[str, Any] | None:
    """Who may see a conversation: project and assignee (the gateway's push filter)."""
    row = await pool.fetchrow(
        "select project_id, visitor_id, assignee_id::text from conversations where id = $1", conversation_id)
    return dict(row) if row is not None else None


async def message_seq(pool: asyncpg.Pool, conversation_id: str, message_id: str) -> int | None:
    """The seq of the visitor's message with this id (the widget's id for it)."""
    return await pool.fetchval(
        """select seq from conversation_messages where conversation_id = $1::uuid and side = 'visitor'
           and message_id = $2""", conversation_id, message_id)


async def last_message(store: EventStore, conversation_id: str, since: int) -> dict[str, Any] | None:
    """The last message either way after version `since` while the conversation is still
    going: {"version", "occurred_at"}. Read when an idle timer fires, once per idle period
    of a conversation, never on a message."""
    last = None
    for event in await store.load(conversation_stream(conversation_id), after=since):
        if event.type in ("chat.visitor_message_posted", "chat.operator_replied"):
            last = {"version": event.stream_version, "occurred_at": event.occurred_at}
        elif event.type == "status.changed" and event.data.get("status") == "closed":
            last = None
    return last


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


async def client_contacts(pool: asyncpg.Pool, conversation_id: str) -> dict[str, str]:
    """What is known of the conversation's client (known_contacts), as a lead carries it;
    {} for a conversation that does not exist."""
    row = await pool.fetchrow(
        "select project_id, visitor_id, contacts, contacts_confirmed from conversations where id = $1",
        conversation_id)
    if row is None:
        return {}
    return (await known_contacts(pool, row["project_id"], row["visitor_id"], conversation_id, row["contacts"],
                                 row["contacts_confirmed"])).contacts


async def client_card(pool: asyncpg.Pool, me: Operator, conversation_id: str) -> dict[str, Any]:
    """Who the visitor of this conversation is, for the returning client's card: their
    contacts and their earlier conversations in the project, found by the same visitor
    token or the same phone or email. Contacts missing here are taken from the newest
    earlier conversation of the same visitor that has them (one hop: a phone given
    last time still finds last time's leads).

    Issue 23: a match by a contact nobody confirmed (the visitor typed it) is marked
    `unconfirmed`; and an operator who is not an admin is shown only the earlier
    conversations they may read (the same visitor's, and others' they may see) - of the
    others, only how many there are."""
    row = await pool.fetchrow(
        """select project_id, visitor_id, assignee_id::text, visitor_name, contacts, contacts_confirmed
           from conversations where id = $1""", conversation_id)
    if row is None or not operator_may_see(row["project_id"], row["assignee_id"], project_id=me.project_id,
                                           operator_id=me.id, is_admin=me.is_admin):
        raise DomainError("not_found", "Conversation not found.", "not_found")
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
        # The same visitor's are readable by whoever holds this one (handles_this_visitor);
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
    return {"conversation_id": conversation_id, "visitor_id": row["visitor_id"],
               "name": known.contacts.get("name") or row["visitor_name"], "phone": phone,
               "email": known.contacts.get("email"), "confirmed": sorted(known.confirmed),
               "conversations": conversations, "hidden_conversations": hidden}


async def transcript(store: EventStore, pool: asyncpg.Pool, me: Operator, conversation_id: str) -> dict[str, Any]:
    """A conversation's row and every event, for an operator who may see it (or handles
    its visitor: handles_this_visitor)."""
    events = await store.load(conversation_stream(conversation_id))
    state = domain.fold(events)
    if state is None or not (domain.can_see(state, me)
                             or await handles_this_visitor(pool, state.project_id, state.visitor_id, me)):
        raise DomainError("not_found", "Conversation not found.", "not_found")
    return {"conversation": await conversation_row(pool, conversation_id), "events": [e.to_dict() for e in events]}


async def email_transcript(store: EventStore, conversation_id: str, upto: int) -> dict[str, Any] | None:
    """What crm-bridge emails (issue 24, item 5): the messages both ways up to stream
    version `upto` - never notes - and where to: the address of the request at `upto`,
    else the email the visitor left. None for no such conversation; `erased` when its
    personal data is gone (nothing is sent)."""
    events = [e for e in await store.load(conversation_stream(conversation_id)) if e.stream_version <= upto]
    state = domain.fold(events)
    if state is None:
        return None
    at = events[-1] if events else None
    email = at.data["email"] if at is not None and at.type == "chat.transcript_requested" \
        and at.stream_version == upto else state.contacts.get("email")
    return {"conversation_id": conversation_id, "project_id": state.project_id, "erased": state.erased,
            "email": None if state.erased else email,
            "messages": [] if state.erased else [
                {"from": m["from"], "operator": m.get("operator"), "text": m["text"],
                 "file": (m.get("attachment") or {}).get("name"), "at": m["at"]} for m in state.transcript]}
