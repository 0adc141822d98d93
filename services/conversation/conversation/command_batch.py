"""Set-based commands (issue 21): the conversation commands that arrive while a batch's
transaction runs become the next batch, and a batch costs a few statements whatever its
size, not a few per command.

One transaction per batch:
  1. the shard locks of every stream in it, in ascending order, sent with the BEGIN
     (eventstore.locked_transaction);
  2. one read of what every command decides on (`_READ`): the kept states and stream
     heads, the commands already recorded (retries), the message ids asked about
     (resends) - read under the locks, so no other append to these streams can come in
     between and the versions cannot conflict - and the inbox rows the events will fold into;
  3. `plan` decides in memory, pure: a conversation that appears twice decides the
     second time on the first's result; a refused command (DomainError) or an event
     that breaks its schema fails only that command;
  4. one statement for the append of all streams with their command records
     (EventStore.append_locked), the projection's inbox rows and message ids, and the kept
     states (parley/statements.py): at 100 messages/s a batch is one command, and it was
     nine round trips, now four (BEGIN with the locks, read, write, COMMIT);
  5. what the projection writes on its own (a start's visitor row, ratings, erasures);
  6. the keys of the conversations the batch started (parley/subject_keys.py), which
     the answers carry to the gateway.

A batch whose transaction fails (two first messages of one visitor starting two
conversations, a deadlock, the database going away) left nothing written: its halves
are tried again, in order, down to single commands, which go by the single path
(commands.run_alone) and get their own outcome - one bad command costs a few
transactions, not one per command of the batch."""
from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import asyncpg
from prometheus_client import Counter

from parley import subject_keys
from parley.batching import Batcher
from parley.contract import conversation_stream
from parley.envelope import Event
from parley.eventstore import Append, EventStore, Outcome, locked_transaction

from conversation import domain, inbox, projection

log = logging.getLogger(__name__)

BATCHES = Counter("parley_command_batches_total", "Transactions of set-based commands", ["outcome"])
BATCHED = Counter("parley_batched_commands_total", "Commands decided and written in a batch (commands/batches: batch size)")

Decide = Callable[[domain.Conversation | None], list[Event]]


@dataclass(frozen=True)
class Command:
    command_id: str
    conversation_id: str
    decide: Decide
    visitor_message_id: str | None = None   # a resend of a message the conversation has decides on it
    reply_id: str | None = None


@dataclass(frozen=True)
class Basis:
    """What a batch reads before deciding: each conversation's (version, kept state),
    the results of commands already run, the (conversation, side, message id) found, and
    the inbox rows of the conversations that have one (projection.load's)."""
    kept: dict[str, tuple[int, domain.Conversation | None]]
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    found: frozenset[tuple[str, str, str]] = frozenset()
    inbox_rows: dict[str, inbox.Row] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    outcomes: list[Outcome | Exception]        # one per command, in order
    appends: list[Append]                      # one per stream, its events in order
    states: list[tuple[int, domain.Conversation]]   # (version, state) to keep, one per stream written

    @property
    def events(self) -> list[Event]:
        return [e for a in self.appends for e in a.events]


def plan(commands: Sequence[Command], basis: Basis, validate: Callable[[Event], None]) -> Plan:
    """Decide every command of a batch in order, each on the state its predecessors left."""
    states = dict(basis.kept)                  # conversation id -> (version, state), moving on
    started = dict(basis.kept)                 # ... as read: each append's expected version
    done: dict[str, dict[str, Any]] = {}       # command ids that appended in this batch
    events: dict[str, list[Event]] = {}
    records: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    outcomes: list[Outcome | Exception] = []
    for command in commands:
        first = basis.recorded.get(command.command_id, done.get(command.command_id))
        if first is not None:
            outcomes.append(Outcome(first, [], replayed=True))
            continue
        cid = command.conversation_id
        version, state = states[cid]
        if state is not None:
            state = with_found_ids(state, basis.found, command)
        try:
            decided = command.decide(state)
            numbered = [e.with_version(version + i + 1) for i, e in enumerate(decided)]
            for e in numbered:
                validate(e)
        except Exception as e:  # this command's refusal (or bug) is its own
            outcomes.append(e)
            continue
        result = {"conversation_id": cid}
        outcomes.append(Outcome(result, numbered, replayed=False))
        if not numbered:   # nothing appended: as on the single path, nothing is recorded
            continue
        done[command.command_id] = result
        events.setdefault(cid, []).extend(numbered)
        records.setdefault(cid, []).append((command.command_id, result))
        states[cid] = (numbered[-1].stream_version, domain.fold(numbered, state))
    appends = [Append(conversation_stream(cid), started[cid][0], written, records[cid])
               for cid, written in events.items()]
    return Plan(outcomes, appends, [states[cid] for cid in events])


def with_found_ids(state: domain.Conversation, found: frozenset[tuple[str, str, str]], command: Command
                   ) -> domain.Conversation:
    """The state with the message ids this command asks about that the conversation has."""
    visitor = command.visitor_message_id
    reply = command.reply_id
    has_visitor = visitor is not None and (state.id, "visitor", visitor) in found
    has_reply = reply is not None and (state.id, "operator", reply) in found
    if not has_visitor and not has_reply:
        return state
    return replace(state, message_ids=state.message_ids | ({visitor} if has_visitor else set()),
                   reply_ids=state.reply_ids | ({reply} if has_reply else set()))


# Everything a batch decides on, in one round trip: a row per conversation (kept state,
# version, stream head, inbox row), a row per command already recorded, a row per message id found.
# Each is one primary-key probe per key, whatever the batch's or the tables' size: a
# lateral subquery with `limit 1` is never flattened into a join, so PostgreSQL cannot
# plan a sequential scan instead. With `= any($3)` and a plain join it did, for a batch
# of 150 against 15,000 commands (2 ms each, costing more the longer the run): a backlog
# made batches larger and every batch slower, which made the backlog grow.
_READ = f"""
select 'kept' as kind, a.id::text as conversation_id, s.version, s.state,
       (select coalesce(max(stream_version), 0) from events where stream_id = a.stream) as head,
       null::text as command_id, null::jsonb as result, null::text as side, null::text as message_id,
       {projection.row_of('a.id')} as inbox
from unnest($1::uuid[], $2::text[]) as a(id, stream)
left join lateral (select version, state from conversation_state where conversation_id = a.id limit 1) s on true
union all
select 'recorded', null, null, null, null, c.command_id, c.result, null, null, null
from unnest($3::text[]) as r(command_id)
cross join lateral (select command_id, result from commands where command_id = r.command_id limit 1) c
union all
select 'found', x.id::text, null, null, null, null, null, x.side, x.message_id, null
from unnest($4::uuid[], $5::text[], $6::text[]) as x(id, side, message_id)
cross join lateral (select from conversation_messages m
                    where m.conversation_id = x.id and m.side = x.side and m.message_id = x.message_id limit 1) m
"""


async def read_basis(conn: asyncpg.Connection, store: EventStore, commands: Sequence[Command]) -> Basis:
    ids = list(dict.fromkeys(c.conversation_id for c in commands))
    asked = [(c.conversation_id, side, mid) for c in commands
             for side, mid in (("visitor", c.visitor_message_id), ("operator", c.reply_id)) if mid is not None]
    asked_columns = [list(column) for column in zip(*asked)] if asked else [[], [], []]
    rows = await conn.fetch(_READ, ids, [conversation_stream(cid) for cid in ids],
                            list({c.command_id for c in commands}), *asked_columns)
    kept: dict[str, tuple[int, domain.Conversation | None]] = {}
    recorded: dict[str, dict[str, Any]] = {}
    found: set[tuple[str, str, str]] = set()
    inbox_rows: dict[str, inbox.Row] = {}
    for row in rows:
        if row["kind"] == "recorded":
            recorded[row["command_id"]] = row["result"]
        elif row["kind"] == "found":
            found.add((row["conversation_id"], row["side"], row["message_id"]))
        else:
            cid, version, state = row["conversation_id"], 0, None
            if row["inbox"] is not None:
                inbox_rows[cid] = row["inbox"]
            if row["version"] is not None and (state := domain.from_state(row["state"])) is not None:
                version = row["version"]
            if row["head"] != version:   # behind (or no row yet): fold what it lacks, once
                later = await store.load(conversation_stream(cid), after=version, conn=conn)
                state, version = domain.fold(later, state), version + len(later)
            kept[cid] = (version, state)
    return Basis(kept, recorded, frozenset(found), inbox_rows)


class CommandBatches:
    """One service's set-based command path: one batch in flight, the next one queuing."""
    MAX_BATCH = 200

    def __init__(self, store: EventStore, run_alone: Callable[[EventStore, Command], Any]):
        self.store = store
        self.run_alone = run_alone
        self.batcher: Batcher[Command] = Batcher(self._flush, max_batch=self.MAX_BATCH)
        self.batches = self.commands = self.fell_back = self.alone = 0   # what the tests and the bench read

    async def run(self, command: Command) -> Outcome:
        return await self.batcher.run(command)

    async def _flush(self, commands: Sequence[Command]) -> list[Outcome | Exception]:
        self.batches += 1
        self.commands += len(commands)
        BATCHED.inc(len(commands))
        return await self._written(commands)

    async def _written(self, commands: Sequence[Command]) -> list[Outcome | Exception]:
        try:
            outcomes = await self._transaction(commands)
            BATCHES.labels("written").inc()
            return outcomes
        except Exception as e:
            self.fell_back += 1
            BATCHES.labels("fell_back").inc()
            log.warning("command batch not written; its halves go again", extra={
                "commands": len(commands), "error": repr(e)[:300]})
        if len(commands) == 1:
            # Alone, on the single path (with its retries on a conflict or a deadlock): its
            # own outcome, which may be the error the batch met (the API knows what to do).
            self.alone += 1
            try:
                return [await self.run_alone(self.store, commands[0])]
            except Exception as e:
                return [e]
        # Nothing of the batch was written: its halves again, in order, so one bad command
        # costs a few transactions rather than one for every command of the batch.
        half = len(commands) // 2
        return [*await self._written(commands[:half]), *await self._written(commands[half:])]

    async def _transaction(self, commands: Sequence[Command]) -> list[Outcome | Exception]:
        store = self.store
        async with store.pool.acquire() as conn:
            shards = [await store.shard_for(conversation_stream(c.conversation_id), conn) for c in commands]
            async with locked_transaction(conn, shards):
                basis = await read_basis(conn, store, commands)
                planned = plan(commands, basis, store.catalog.validate)
                changes = await projection.changes(conn, planned.events, basis.inbox_rows)
                await store.append_locked(conn, planned.appends, along=[
                    *changes.together, *([projection.kept_states(planned.states)] if planned.states else [])])
                await projection.write_after(conn, changes)
                # A conversation started here gets its key now, in the same statement the relay
                # would spend on it (it finds the row), so the answer can carry it to the gateway.
                made = await subject_keys.keys_for(conn, [a.stream_id for a in planned.appends
                                                          if a.expected_version == 0], make=True)
        return [with_key(o, made) for o in planned.outcomes]


def with_key(outcome: Outcome | Exception, made: dict[str, bytes | None]) -> Outcome | Exception:
    """The outcome of a command that started its conversation, with that conversation's key."""
    if isinstance(outcome, Exception) or outcome.replayed or not outcome.events:
        return outcome
    key = made.get(outcome.events[0].stream_id) if outcome.events[0].stream_version == 1 else None
    return replace(outcome, subject_key=key) if key is not None else outcome


_BATCHES: weakref.WeakKeyDictionary[EventStore, CommandBatches] = weakref.WeakKeyDictionary()


def batches_of(store: EventStore, run_alone: Callable[[EventStore, Command], Any]) -> CommandBatches:
    """The store's command batches (one per store: one per service process)."""
    if store not in _BATCHES:
        _BATCHES[store] = CommandBatches(store, run_alone)
    return _BATCHES[store]
