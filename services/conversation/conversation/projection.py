"""The conversation service's tables follow its events: the inbox (`conversations`), the
message ids (`conversation_messages`), the visitors' current conversations
(`visitor_conversations`), the ratings, and the aggregate's kept state
(`conversation_state`, keep_state).

Live, a command's events are applied in the transaction that appends them: the command
batch reads the inbox rows with its kept states and sends the writes with its append
(command_batch.py), the single path runs `apply_all`. A rebuild gives `replay` a whole
partition batch (ConsumerRunner's handle_batch). Either way the rules are inbox.py's,
pure: the rows of the conversations concerned are loaded in one query, the events
folded into them in memory, and the results written back in one statement (a few more
for rarer events) - a constant number of round trips per batch, not per event."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import asyncpg
import orjson

from parley import statements
from parley.contract import id_of
from parley.envelope import Event
from parley.statements import Statement

from conversation import domain, inbox


def row_of(conversation_id: str) -> str:
    """SQL for the inbox row of the conversation whose id the expression `conversation_id`
    gives, as JSON (ids and times as text, as in an event), or null: a primary-key probe
    (a scalar subquery with `limit 1` is never planned as a scan of the table;
    command_batch._READ says why). The command batch reads it with its kept states, in
    the same round trip."""
    return (f"(select to_jsonb(c) from (select {', '.join(inbox.COLUMNS)} from conversations"
            f" where id = {conversation_id} limit 1) c)")


_LOAD = f"select {row_of('x.id')} as row from unnest($1::uuid[]) as x(id)"

# Rows whose visitor messages after a read mark are needed (chat.read_by_operator).
# The join keeps one primary-key range scan per conversation.
_VISITOR_SEQS = """
select m.conversation_id::text, m.seq
from unnest($1::uuid[], $2::int[]) as r(id, mark)
join conversation_messages m on m.conversation_id = r.id and m.side = 'visitor' and m.seq > r.mark
"""

# Every column arrives as an array of text (or int/bool) and is cast here, so loaded
# values (UUID, datetime) and an event's own (str) are written alike.
_TYPES = {"id": "uuid", "assignee_id": "uuid", "offer_id": "uuid", "offered_to": "uuid", "last_offered_to": "uuid",
          "contacts": "jsonb", "contacts_confirmed": "jsonb", "custom_params": "jsonb", "last_message_at": "timestamptz",
          "waiting_since": "timestamptz", "started_at": "timestamptz", "lead_requested_at": "timestamptz",
          "offered_at": "timestamptz", "last_offered_at": "timestamptz", "unread": "int", "version": "int",
          "left_while_closed": "bool", "erased_at": "timestamptz"}
_ARRAY = {"int": "int[]", "bool": "bool[]"}
_UPSERT = """
insert into conversations ({columns})
select {casts} from unnest({params}) as r({columns})
on conflict (id) do update set {updates}
""".format(columns=", ".join(inbox.COLUMNS),
           casts=", ".join(f"r.{c}::{_TYPES.get(c, 'text')}" if _TYPES.get(c) not in _ARRAY else f"r.{c}"
                           for c in inbox.COLUMNS),
           params=", ".join(f"${i}::{_ARRAY.get(_TYPES.get(c, 'text'), 'text[]')}"
                            for i, c in enumerate(inbox.COLUMNS, 1)),
           updates=", ".join(f"{c} = excluded.{c}" for c in inbox.COLUMNS if c != "id"))

_MESSAGES = """
insert into conversation_messages (conversation_id, side, message_id, seq)
select * from unnest($1::uuid[], $2::text[], $3::text[], $4::int[])
on conflict do nothing
"""
_RATINGS = """
insert into ratings (conversation_id, project_id, operator_id, operator_name, rating, comment, rated_at)
select c, p, o, n, r, m, t::timestamptz
from unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::smallint[], $6::text[], $7::text[])
     as x(c, p, o, n, r, m, t)
on conflict do nothing
"""
# An erased conversation: its visitor starts afresh (their next message starts a new,
# unlinked conversation) and its rating keeps the score, not the comment.
_ERASED = """
with left_ as (delete from visitor_conversations where conversation_id = any($1::uuid[]))
update ratings set comment = null where conversation_id = any($1::uuid[])
"""
_LEAVE_PREVIOUS = """
delete from visitor_conversations v
using unnest($1::text[], $2::text[], $3::uuid[]) as x(project_id, visitor_id, conversation_id)
where v.project_id = x.project_id and v.visitor_id = x.visitor_id and v.conversation_id = x.conversation_id
"""
# No upsert: a second conversation for the same visitor must fail here (see handlers.visitor_message).
_ENTER = """
insert into visitor_conversations (project_id, visitor_id, conversation_id)
select * from unnest($1::text[], $2::text[], $3::uuid[])
"""
# Replayed from the topic, a visitor's conversations may come in any order: Kafka orders
# a conversation's events, not two conversations' (in two partitions, or from two
# event-store shards into one). A returning visitor's new conversation may be applied
# before the closed one it replaced; whatever the order, the visitor keeps the one that
# started last - the one the live path left. (So a replay needs no delete of the
# previous row.) Rows are locked in visitor order, so two partitions' batches applied at
# once cannot deadlock.
_REPLAYED_CANDIDATES = """
select distinct on (x.project_id, x.visitor_id) x.project_id, x.visitor_id, x.conversation_id, c.started_at
from unnest($1::text[], $2::text[], $3::uuid[]) as x(project_id, visitor_id, conversation_id)
join conversations c on c.id = x.conversation_id
order by x.project_id, x.visitor_id, c.started_at desc
"""
_ENTER_REPLAYED = f"""
insert into visitor_conversations as v (project_id, visitor_id, conversation_id)
select project_id, visitor_id, conversation_id from ({_REPLAYED_CANDIDATES}) candidates
on conflict (project_id, visitor_id) do update set conversation_id = excluded.conversation_id
where (select started_at from conversations where id = excluded.conversation_id)
    > (select started_at from conversations where id = v.conversation_id)
"""
# The statement above compares with the conversation of a row that another partition's
# batch may have written and committed while it waited for the row: that conversation
# is not in its snapshot, so it keeps the row. A new statement sees it: compare again.
_ENTER_REPLAYED_AGAIN = f"""
update visitor_conversations v set conversation_id = candidates.conversation_id
from ({_REPLAYED_CANDIDATES}) candidates
where v.project_id = candidates.project_id and v.visitor_id = candidates.visitor_id
  and candidates.started_at > (select started_at from conversations where id = v.conversation_id)
"""


async def apply(conn: asyncpg.Connection, event: Event) -> None:
    """One event on its own: the event-by-event inbox the batch ways must equal (tests)."""
    await apply_all(conn, [event])


async def replay(conn: asyncpg.Connection, events: list[Event]) -> None:
    """A rebuild from the topic: one partition batch (ConsumerRunner's handle_batch)."""
    await apply_all(conn, events, replayed=True)


async def apply_all(conn: asyncpg.Connection, events: Sequence[Event], *, replayed: bool = False) -> None:
    """The tables after `events` (in stream order per conversation), in a few statements.
    `replayed`: read from the topic, where two conversations' events come in any order."""
    if not events:
        return
    ids = list(dict.fromkeys(id_of(e.stream_id) for e in events))
    await write(conn, await changes(conn, events, await load(conn, ids), replayed=replayed))


async def load(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, inbox.Row]:
    """The inbox rows of these conversations (those that have one), by id."""
    return {r["row"]["id"]: r["row"] for r in await conn.fetch(_LOAD, ids) if r["row"] is not None}


@dataclass(frozen=True)
class Changes:
    """What `events` write to the tables. `together`: writes to different tables that
    read nothing another writes - one statement's worth (parley/statements.py), which the
    command batch sends with its append. `after`: each on its own, in order, after those
    (the visitor moves read the inbox rows written; the ratings' erasure writes rows
    the ratings' insert may have written)."""
    together: list[Statement]
    after: list[Statement]


async def changes(conn: asyncpg.Connection, events: Sequence[Event], rows: dict[str, inbox.Row], *,
                  replayed: bool = False) -> Changes:
    """`events` folded into `rows` (the inbox rows of their conversations, as load() gives
    them; folded in place), and what they write."""
    visitor_seqs = await _visitor_seqs_after_reads(conn, events)
    moves: list[inbox.VisitorConversation] = []
    for event in events:
        cid = id_of(event.stream_id)
        if event.type == "chat.conversation_started":
            rows[cid] = inbox.start(rows.get(cid), event)
            moves.append(inbox.visitor_conversation(event))
            continue
        if (row := rows.get(cid)) is not None:
            inbox.follow(row, event, visitor_seqs.get(cid, ()))
        if event.type == "chat.visitor_message_posted":
            visitor_seqs.setdefault(cid, []).append(event.stream_version)
    together: list[Statement] = []
    if messages := [m for e in events if (m := inbox.message(e)) is not None]:
        together.append((_MESSAGES, [list(column) for column in zip(*messages)]))
    ids = dict.fromkeys(id_of(e.stream_id) for e in events)
    if written := [rows[cid] for cid in ids if cid in rows]:
        together.append((_UPSERT, [[_db_value(row[c]) for row in written] for c in inbox.COLUMNS]))
    after = _visitor_moves(moves, replayed) if moves else []
    if ratings := [r for e in events if e.type == "chat.rated" and (r := inbox.rating(e)) is not None]:
        after.append((_RATINGS, [list(column) for column in zip(*ratings)]))
    if erased := [id_of(e.stream_id) for e in events if e.type == "chat.conversation_erased"]:
        after.append((_ERASED, [erased]))
    return Changes(together, after)


async def write(conn: asyncpg.Connection, changes: Changes) -> None:
    """`changes` written: `together` as one statement, then the rest."""
    if changes.together:
        await statements.execute(conn, changes.together)
    await write_after(conn, changes)


async def write_after(conn: asyncpg.Connection, changes: Changes) -> None:
    """What goes after `together` (which the command batch sends with its append), in order."""
    for sql, args in changes.after:
        await conn.execute(sql, *args)


async def _visitor_seqs_after_reads(conn: asyncpg.Connection, events: Sequence[Event]) -> dict[str, list[int]]:
    """For each conversation read by an operator in `events`: the seqs of its visitor
    messages already stored after the lowest read mark (the batch's own are added as
    they are folded)."""
    marks: dict[str, int] = {}
    for e in events:
        if e.type == "chat.read_by_operator":
            cid = id_of(e.stream_id)
            marks[cid] = min(marks.get(cid, e.data["seq"]), e.data["seq"])
    found: dict[str, list[int]] = {}
    if marks:
        for cid, seq in await conn.fetch(_VISITOR_SEQS, list(marks), list(marks.values())):
            found.setdefault(cid, []).append(seq)
    return found


def _visitor_moves(moves: list[inbox.VisitorConversation], replayed: bool) -> list[Statement]:
    """visitor_conversations after the starts in `moves`, as if each were applied in turn:
    a start that leaves a previous conversation deletes that row (in the table, or
    among this batch's own), and every start inserts its row - a visitor who still has
    one makes the insert fail, as it must live. Replayed, the latest start wins instead."""
    if replayed:
        enter = [list(column) for column in zip(*sorted((m.project_id, m.visitor_id, m.conversation_id)
                                                          for m in moves))]
        return [(_ENTER_REPLAYED, enter), (_ENTER_REPLAYED_AGAIN, enter)]
    entered: dict[tuple[str, str], list[str]] = {}   # the batch's rows by visitor; more than one fails
    leave: list[tuple[str, str, str]] = []
    for move in moves:
        key = (move.project_id, move.visitor_id)
        mine = entered.setdefault(key, [])
        if move.previous is not None:
            if move.previous in mine:
                mine.remove(move.previous)
            else:
                leave.append((*key, move.previous))
        mine.append(move.conversation_id)
    written: list[Statement] = [(_LEAVE_PREVIOUS, [list(column) for column in zip(*leave)])] if leave else []
    enter = [(*key, cid) for key, cids in entered.items() for cid in cids]
    return written + [(_ENTER, [list(column) for column in zip(*enter)])]


def _db_value(value: Any) -> Any:
    """A column's value as the upsert's arrays take it: text for all but int and bool
    (a row holds JSON's values: loaded as JSON, or an event's own)."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


async def keep_state(conn: asyncpg.Connection, decided_on: domain.Conversation | None, events: list[Event]) -> None:
    """The state after `events`, kept for the next command: `decided_on` is the state the
    command decided on (the stream's state just before `events`)."""
    if not events:
        return
    await keep_states(conn, [(events[-1].stream_version, domain.fold(events, decided_on))])


async def keep_states(conn: asyncpg.Connection, states: Sequence[tuple[int, domain.Conversation]]) -> None:
    """(version, state) of each conversation, kept for its next command: one statement."""
    if states:
        await statements.execute(conn, [kept_states(states)])


def kept_states(states: Sequence[tuple[int, domain.Conversation]]) -> Statement:
    """The statement keep_states sends (the command batch sends it with its append)."""
    return ("""insert into conversation_state (conversation_id, version, state)
               select * from unnest($1::uuid[], $2::int[], $3::jsonb[])
               on conflict (conversation_id) do update set version = excluded.version, state = excluded.state""",
            [[state.id for _, state in states], [version for version, _ in states],
             [domain.to_state(state) for _, state in states]])
