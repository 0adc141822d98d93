"""Commands decide on the kept state, so a command costs the same at message 50 and at
message 1,500 (issue 12), and go in batches, so a busy service sends fewer statements
per command, not more (issue 21: command_batch).

`run` is the one entry: a command joins the next batch. `run_alone` is the single
path - a lead request, and each command of a batch that could not be written as a
whole: `EventStore.execute` is given a `basis`, the version and the state kept in
`conversation_state` (one row, plus the stream's head from the events index to check
it is current) instead of every event, with execute's command ids, retries on a
concurrent writer, group commit, and effects in the append's transaction (where
projection.keep_state writes the next state).

A row that is missing (a conversation from before the table) or of another format is
made good from the events: what it lacks is folded on top, once, and written back by
the command's transaction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import asyncpg

from parley.contract import conversation_stream
from parley.envelope import Event
from parley.eventstore import Decision, EventStore, Outcome

from conversation import domain, projection
from conversation.command_batch import Command, batches_of, with_found_ids


@dataclass(frozen=True)
class Kept:
    version: int
    state: domain.Conversation | None
    recorded: dict | None = None   # the command's first result when this is a retry
    has_visitor_id: bool = False   # the conversation already has the visitor message id asked about
    has_reply_id: bool = False     # ... the reply id asked about


async def read_kept(store: EventStore, conversation_id: str, *, command_id: str | None = None,
                    visitor_id: str | None = None, reply_id: str | None = None) -> Kept:
    """What a command decides on, in one query when the row is current: the kept state
    and its version, the stream's head (to check the row is current), the command's
    first result if this is a retry, and whether the conversation already has the
    message ids the command asks about (one primary-key lookup each, whatever its
    length; equality, not `= any(array)`: PostgreSQL 16 may scan the conversation's
    whole key range filtering by an array)."""
    stream = conversation_stream(conversation_id)
    row = await store.pool.fetchrow(
        """select s.version, s.state,
                  (select coalesce(max(stream_version), 0) from events where stream_id = $2) as head,
                  (select result from commands where command_id = $3) as recorded,
                  exists (select from conversation_messages where conversation_id = $1::uuid and side = 'visitor'
                          and message_id = $4) as has_visitor_id,
                  exists (select from conversation_messages where conversation_id = $1::uuid and side = 'operator'
                          and message_id = $5) as has_reply_id
           from (select 1) one left join conversation_state s on s.conversation_id = $1::uuid""",
        conversation_id, stream, command_id, visitor_id, reply_id)
    version, state = 0, None
    if row["version"] is not None and (state := domain.from_state(row["state"])) is not None:
        version = row["version"]
    if row["head"] != version:  # behind (or no row yet): fold what it lacks, once
        later = await store.load(stream, after=version)
        state, version = domain.fold(later, state), version + len(later)
    return Kept(version, state, row["recorded"], row["has_visitor_id"], row["has_reply_id"])


async def run(store: EventStore, command_id: str, conversation_id: str,
              decide: Callable[[domain.Conversation | None], list[Event]], *,
              visitor_message_id: str | None = None, reply_id: str | None = None,
              transcript: bool = False) -> Outcome:
    """Run `decide(state)` once per command id. The state is the kept one, with the
    message ids `visitor_message_id`/`reply_id` if the conversation already has them (a
    resend). Commands go in batches (command_batch); `transcript=True` (a lead request,
    rare) goes alone and folds the events instead, as the lead carries the whole
    transcript anyway. Raises ConcurrencyConflict when the stream keeps moving."""
    command = Command(command_id, conversation_id, decide, visitor_message_id, reply_id)
    if transcript:
        return await run_alone(store, command, transcript=True)
    return await batches_of(store, run_alone).run(command)


async def run_alone(store: EventStore, command: Command, *, transcript: bool = False,
                    attempts: int = 20) -> Outcome:
    """One command in its own decision and append (EventStore.execute): the path of a
    lead request, and of each command of a batch whose transaction failed."""
    conversation_id = command.conversation_id
    stream = conversation_stream(conversation_id)
    decided_on: list[domain.Conversation | None] = [None]

    async def decide_on(history: Kept) -> Decision:
        state = history.state
        if transcript and history.version:
            state = domain.fold((await store.load(stream))[:history.version])
        elif state is not None:
            found = {(conversation_id, "visitor", command.visitor_message_id)} if history.has_visitor_id else set()
            if history.has_reply_id:
                found.add((conversation_id, "operator", command.reply_id))
            state = with_found_ids(state, frozenset(found), command)
        decided_on[0] = state
        return Decision(command.decide(state), {"conversation_id": conversation_id})

    async def effects(conn: asyncpg.Connection, events: list[Event]) -> None:
        await projection.apply_all(conn, events)   # the command's events in one go: a few statements
        await projection.keep_state(conn, decided_on[0], events)

    async def basis(_: str, command_id: str) -> tuple[dict | None, int, Kept]:
        kept = await read_kept(store, conversation_id, command_id=command_id, visitor_id=command.visitor_message_id,
                               reply_id=command.reply_id)
        return kept.recorded, kept.version, kept

    return await store.execute(command.command_id, stream, decide_on, effects=effects, attempts=attempts,
                               basis=basis)
