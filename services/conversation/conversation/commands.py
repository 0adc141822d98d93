"""Commands decide on the kept state, so a command costs the same at message 50 and at
message 1,500 (issue 12).

`EventStore.execute` is given a `basis`: the version and the state kept in
`conversation_state` (one row, plus the stream's head from the events index to check
it is current) instead of every event. Everything else about execute is unchanged:
command ids, retries on a concurrent writer, group commit, effects in the append's
transaction (where projection.keep_state writes the next state).

A row that is missing (a conversation from before the table) or of another format is
made good from the events: what it lacks is folded on top, once, and written back by
the command's transaction."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Callable

import asyncpg

from parley.contract import conversation_stream
from parley.envelope import Event
from parley.eventstore import Decision, EventStore, Outcome

from conversation import domain, projection


@dataclass(frozen=True)
class Kept:
    version: int
    state: domain.Conversation | None


async def read_kept(store: EventStore, conversation_id: str) -> Kept:
    """The kept state and its version: one query when the row is current."""
    stream = conversation_stream(conversation_id)
    row = await store.pool.fetchrow(
        """select s.version, s.state,
                  (select coalesce(max(stream_version), 0) from events where stream_id = $2) as head
           from (select 1) one left join conversation_state s on s.conversation_id = $1::uuid""",
        conversation_id, stream)
    version, state = 0, None
    if row["version"] is not None and (state := domain.from_state(row["state"])) is not None:
        version = row["version"]
    if row["head"] != version:  # behind (or no row yet): fold what it lacks, once
        later = await store.load(stream, after=version)
        state, version = domain.fold(later, state), version + len(later)
    return Kept(version, state)


async def known_ids(pool: asyncpg.Pool, conversation_id: str, *, visitor: Sequence[str] = (),
                    operator: Sequence[str] = ()) -> tuple[frozenset[str], frozenset[str]]:
    """Which of these message ids the conversation already has (visitor's, operators'):
    one primary-key lookup each (commands ask about one), whatever the conversation's
    length. (Equality, not `= any(array)`: PostgreSQL 16 may scan the conversation's
    whole key range filtering by the array.)"""
    found: dict[str, set[str]] = {"visitor": set(), "operator": set()}
    for side, ids in (("visitor", visitor), ("operator", operator)):
        for message_id in ids:
            if await pool.fetchval(
                    """select true from conversation_messages
                       where conversation_id = $1::uuid and side = $2 and message_id = $3""",
                    conversation_id, side, message_id):
                found[side].add(message_id)
    return frozenset(found["visitor"]), frozenset(found["operator"])


async def message_seq(pool: asyncpg.Pool, conversation_id: str, message_id: str) -> int | None:
    """The seq of the visitor's message with this id (the widget's id for it)."""
    return await pool.fetchval(
        """select seq from conversation_messages where conversation_id = $1::uuid and side = 'visitor'
           and message_id = $2""", conversation_id, message_id)


async def run(store: EventStore, command_id: str, conversation_id: str,
              decide: Callable[[domain.Conversation | None], list[Event]], *,
              visitor_ids: Sequence[str] = (), reply_ids: Sequence[str] = (),
              transcript: bool = False, attempts: int = 20) -> Outcome:
    """Run `decide(state)` once per command id. The state is the kept one, with the
    message ids among `visitor_ids`/`reply_ids` that the conversation already has;
    `transcript=True` (a lead request) folds the events instead, as the lead carries
    the whole transcript anyway. Raises ConcurrencyConflict after `attempts`."""
    stream = conversation_stream(conversation_id)
    decided_on: list[domain.Conversation | None] = [None]

    async def decide_on(history: Kept) -> Decision:
        state = history.state
        if transcript and history.version:
            state = domain.fold((await store.load(stream))[:history.version])
        elif state is not None and (visitor_ids or reply_ids):
            seen_visitor, seen_operator = await known_ids(store.pool, conversation_id, visitor=visitor_ids,
                                                          operator=reply_ids)
            state = _with_ids(state, seen_visitor, seen_operator)
        decided_on[0] = state
        return Decision(decide(state), {"conversation_id": conversation_id})

    async def effects(conn: asyncpg.Connection, events: list[Event]) -> None:
        for event in events:
            await projection.apply(conn, event)
        await projection.keep_state(conn, decided_on[0], events)

    async def basis(_: str) -> tuple[int, Kept]:
        kept = await read_kept(store, conversation_id)
        return kept.version, kept

    return await store.execute(command_id, stream, decide_on, effects=effects, attempts=attempts, basis=basis)


def _with_ids(state: domain.Conversation, visitor: frozenset[str], operator: frozenset[str]) -> domain.Conversation:
    return replace(state, message_ids=state.message_ids | visitor, reply_ids=state.reply_ids | operator)
