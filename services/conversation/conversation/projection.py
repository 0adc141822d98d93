"""The conversation service's tables follow its events, in the transaction that appends
them: the inbox (`conversations`), the message ids (`conversation_messages`) and the
aggregate's kept state (`conversation_state`, keep_state)."""
from __future__ import annotations

import asyncpg

from parley.contract import id_of
from parley.envelope import Event

from conversation import domain

PREVIEW = 140


async def apply(conn: asyncpg.Connection, event: Event) -> None:
    d, cid, at = event.data, id_of(event.stream_id), event.occurred_at
    match event.type:
        case "chat.conversation_started":
            await conn.execute(
                """insert into conversations (id, project_id, visitor_id, page_url, started_at, version,
                                              left_while_closed)
                   values ($1, $2, $3, $4, $5::text::timestamptz, $6, $7)""",
                cid, event.project_id, d["visitor_id"], d.get("page_url"), at, event.stream_version,
                bool(d.get("left_while_closed")))
            if d.get("previous_conversation_id"):  # the offline form after a closed conversation takes its place
                await conn.execute(
                    """delete from visitor_conversations where project_id = $1 and visitor_id = $2
                       and conversation_id = $3""", event.project_id, d["visitor_id"], d["previous_conversation_id"])
            # No upsert: a second conversation for the same visitor must fail here (see api.visitor_message).
            await conn.execute("insert into visitor_conversations (project_id, visitor_id, conversation_id) values ($1, $2, $3)",
                               event.project_id, d["visitor_id"], cid)
        case "chat.visitor_message_posted":
            await conn.execute(
                """update conversations set last_message_text = $2, last_message_from = 'visitor',
                          last_message_at = $3::text::timestamptz, unread = unread + 1,
                          waiting_since = coalesce(waiting_since, $3::text::timestamptz) where id = $1""",
                cid, _preview(d["text"], d.get("attachment")), at)
            await _message_id(conn, cid, "visitor", d["message_id"], event.stream_version)
        case "chat.operator_replied":
            await conn.execute(
                """update conversations set last_message_text = $2, last_message_from = 'operator',
                          last_message_at = $3::text::timestamptz, unread = 0, waiting_since = null where id = $1""",
                cid, _preview(d["text"], d.get("attachment")), at)
            await _message_id(conn, cid, "operator", d["message_id"], event.stream_version)
        case "chat.custom_params_set":
            await conn.execute("update conversations set custom_params = custom_params || $2::jsonb where id = $1",
                               cid, d["params"])
        case "chat.contacts_given":
            given = {k: d.get(k) for k in ("name", "phone", "email") if d.get(k)}
            if d.get("by_operator_id"):  # an operator's contacts replace what was known
                await conn.execute("update conversations set contacts = $2::jsonb, visitor_name = $3 where id = $1",
                                   cid, given, d.get("name"))
            else:
                await conn.execute(
                    """update conversations set contacts = contacts || $2::jsonb,
                              visitor_name = coalesce($3, visitor_name) where id = $1""", cid, given, d.get("name"))
        case "chat.page_visited":
            await conn.execute("update conversations set page_url = $2 where id = $1", cid, d["page_url"])
        case "assignment.taken" | "assignment.assigned" | "assignment.accepted":
            await conn.execute("""update conversations set assignee_id = $2, assignee_name = $3, offer_id = null,
                                  offered_to = null, offered_at = null where id = $1""",
                               cid, d["operator_id"], d["operator_name"])
        case "assignment.offered":
            await conn.execute(
                """update conversations set offer_id = $2, offered_to = $3, offered_at = $4::text::timestamptz,
                          last_offered_to = $3, last_offered_at = $4::text::timestamptz where id = $1""",
                cid, d["offer_id"], d["operator_id"], at)
        case "assignment.offer_expired":
            await conn.execute("""update conversations set offer_id = null, offered_to = null, offered_at = null
                                  where id = $1 and offer_id = $2""", cid, d["offer_id"])
        case "status.changed":
            await conn.execute("update conversations set status = $2 where id = $1", cid, d["status"])
            if d["status"] in ("new", "closed"):   # as the aggregate: no offer stands any more
                await conn.execute("update conversations set offer_id = null, offered_to = null, offered_at = null"
                                   " where id = $1", cid)
        case "chat.read_by_operator":   # opened by an operator: unread is what came after it
            await conn.execute(
                """update conversations set unread = (
                       select count(*) from conversation_messages
                       where conversation_id = $1 and side = 'visitor' and seq > $2) where id = $1""", cid, d["seq"])
        case "chat.rated":
            await conn.execute(
                """insert into ratings (conversation_id, project_id, operator_id, operator_name, rating, comment,
                                        rated_at)
                   values ($1, $2, $3, $4, $5, $6, $7::text::timestamptz) on conflict do nothing""",
                cid, event.project_id, d["operator_id"], d["operator_name"], d["rating"], d["comment"], at)
        case "lead.requested":
            await conn.execute("update conversations set lead_requested_at = $2::text::timestamptz where id = $1",
                               cid, at)
    await conn.execute("update conversations set version = $2 where id = $1 and version < $2", cid,
                       event.stream_version)


async def _message_id(conn: asyncpg.Connection, cid: str, side: str, message_id: str, seq: int) -> None:
    await conn.execute("""insert into conversation_messages (conversation_id, side, message_id, seq)
                          values ($1, $2, $3, $4) on conflict do nothing""", cid, side, message_id, seq)


async def keep_state(conn: asyncpg.Connection, decided_on: domain.Conversation | None, events: list[Event]) -> None:
    """The state after `events`, kept for the next command: `decided_on` is the state the
    command decided on (the stream's state just before `events`)."""
    if not events:
        return
    state = domain.fold(events, decided_on)
    await conn.execute(
        """insert into conversation_state (conversation_id, version, state) values ($1, $2, $3)
           on conflict (conversation_id) do update set version = excluded.version, state = excluded.state""",
        state.id, events[-1].stream_version, domain.to_state(state))


def _preview(text: str, attachment: dict | None) -> str:
    if not text and attachment:
        return f"📎 {attachment['name']}"
    return text if len(text) <= PREVIEW else text[:PREVIEW - 1] + "…"
