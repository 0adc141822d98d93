"""Event store on PostgreSQL: append with expected version, load a stream, read all
in commit order, and idempotent command execution. The events table is also the
outbox: the relay publishes from it (see relay.py)."""
from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import asyncpg
import orjson

from parley import statements
from parley.batching import Batcher
from parley.envelope import Event
from parley.schemas import Catalog
from parley.statements import Statement

log = logging.getLogger(__name__)

# The commit-order lock of one shard, held until commit (see the 002 migration).
def _shard_lock(shard: str) -> str:
    return f"pg_advisory_xact_lock(hashtext('parley_append:' || current_schema()), {shard})"


_APPEND_LOCK = f"select {_shard_lock('$1::int')}"
_APPEND_LOCKS = f"select count({_shard_lock('s')}) from unnest($1::int[]) as s"
# Every stream's version check, the events and the commands' records, for any number of
# streams, in one round trip (append_locked). Data-modifying CTEs run to completion
# whether or not the outer query reads them; nothing is written unless every stream is
# where its appender expects it.
_APPEND = """
with expected as (
    select * from unnest($1::text[], $2::int[]) as x(stream_id, version)),
current as (
    select bool_and((select coalesce(max(stream_version), 0) from events e where e.stream_id = x.stream_id)
                    = x.version) as ok
    from expected x),
appended as (
    insert into events (id, stream_id, stream_version, type, version, topic, occurred_at,
                        correlation_id, causation_id, project_id, data, shard)
    select e.id, e.stream_id, e.stream_version, e.type, e.version, e.topic, e.occurred_at::timestamptz,
           e.correlation_id, e.causation_id, e.project_id, e.data::jsonb, e.shard
    from unnest($3::uuid[], $4::text[], $5::int[], $6::text[], $7::int[], $8::text[], $9::text[], $10::text[],
                $11::text[], $12::text[], $13::text[], $14::int[]) with ordinality
         as e(id, stream_id, stream_version, type, version, topic, occurred_at, correlation_id, causation_id,
              project_id, data, shard, n)
    where (select ok from current)
    order by e.n
    returning 1),
recorded as (
    insert into commands (command_id, stream_id, result)
    select c.command_id, c.stream_id, c.result from unnest($15::text[], $16::text[], $17::jsonb[])
        as c(command_id, stream_id, result)
    where exists (select from appended))"""
_APPENDED = "select count(*) from appended"
_APPEND_PARAMS = 17
_COLUMNS = "position, id::text, stream_id, stream_version, type, version, topic, occurred_at, correlation_id, causation_id, project_id, data"


Effects = Callable[[asyncpg.Connection, list[Event]], Awaitable[None]]


class ConcurrencyConflict(Exception):
    """The stream moved on since the caller loaded it."""

    def __init__(self, stream_id: str, expected: int, actual: int):
        super().__init__(f"stream {stream_id!r} is at version {actual}, expected {expected}: "
                         "reload it and decide again")
        self.stream_id, self.expected, self.actual = stream_id, expected, actual


@dataclass(frozen=True)
class StoredEvent:
    position: int
    topic: str
    event: Event


@dataclass(frozen=True)
class Decision:
    """What a command decided: events to append, and the result to return (and to
    return again, unchanged, to a retry of the same command id)."""
    events: Sequence[Event]
    result: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    events: Sequence[Event]
    replayed: bool  # True: a retry; the result is the first attempt's and nothing was appended
    # The personal-data key made for the stream this command started (parley/subject_keys.py),
    # when its writer makes one in the append's transaction: the caller may hand it on to
    # a reader inside the trust boundary, who then needs no key call for the first push.
    subject_key: bytes | None = None


@dataclass(frozen=True)
class Append:
    """Events for one stream after `expected_version` (numbered already), and the
    commands they record, each with its result (returned again to a retry)."""
    stream_id: str
    expected_version: int
    events: Sequence[Event]
    commands: Sequence[tuple[str, dict[str, Any]]] = ()


@contextlib.asynccontextmanager
async def locked_transaction(conn: asyncpg.Connection, shards: Iterable[int]) -> AsyncIterator[None]:
    """A transaction that holds the commit-order locks of `shards` (as lock_shards) from
    its first round trip: BEGIN and the locks go as one simple query, so a command batch
    is four round trips, not five (issue 21). A simple query takes no parameters: the
    shard numbers, ints, are written in. asyncpg does not know of this transaction, so
    nothing inside may use conn.transaction() (its BEGIN would be a second one, and its
    COMMIT would end this one)."""
    locks = "".join(f" select {_shard_lock(str(shard))};" for shard in sorted({int(s) for s in shards}))
    try:
        await conn.execute("begin;" + locks)
        yield
    except BaseException:
        if not conn.is_closed():
            try:
                await conn.execute("rollback")
            except Exception:   # the connection is unusable: the pool must not get it back open
                conn.terminate()
        raise
    await conn.execute("commit")


async def lock_shards(conn: asyncpg.Connection, shards: Iterable[int]) -> None:
    """The commit-order locks of `shards`, held until the transaction ends, taken in
    ascending order: two transactions that each take several can never wait on each
    other in a cycle."""
    wanted = sorted(set(shards))
    if len(wanted) == 1:
        await conn.execute(_APPEND_LOCK, wanted[0])
    elif wanted:   # one round trip: the rows come, and their locks are taken, in the array's order
        await conn.execute(_APPEND_LOCKS, wanted)


def _row_to_stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(row["position"], row["topic"], Event(
        id=row["id"], type=row["type"], version=row["version"], stream_id=row["stream_id"],
        stream_version=row["stream_version"], occurred_at=row["occurred_at"].isoformat(),
        correlation_id=row["correlation_id"], causation_id=row["causation_id"],
        project_id=row["project_id"], data=row["data"]))


async def read_all(db: asyncpg.Pool | asyncpg.Connection, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
    """Events with position > after, by position. That is commit order within each shard
    (and per stream), not across shards: for publishing, read one shard (read_shard)."""
    query = f"select {_COLUMNS} from events where position > $1 order by position limit $2"
    return [_row_to_stored(r) for r in await db.fetch(query, after, limit)]


async def read_shard(db: asyncpg.Pool | asyncpg.Connection, shard: int, after: int = 0,
                     limit: int = 1000) -> list[StoredEvent]:
    """One shard's events in commit order with position > after: a reader that moved past
    a position never misses a later commit below it."""
    query = f"select {_COLUMNS} from events where shard = $1 and position > $2 order by position limit $3"
    return [_row_to_stored(r) for r in await db.fetch(query, shard, after, limit)]


def shard_of(stream_id: str, shards: int) -> int:
    """A stream's shard: the first 32 bits of the MD5 of its id, modulo the shard count.
    Stable across processes, versions and languages (in SQL:
    `('x' || left(md5(stream_id), 8))::bit(32)::bigint % shards`)."""
    return int.from_bytes(hashlib.md5(stream_id.encode(), usedforsecurity=False).digest()[:4], "big") % shards


async def shard_count(db: asyncpg.Pool | asyncpg.Connection) -> int:
    """The schema's shard count, written by its first migration (db.migrate)."""
    shards = await db.fetchval("select count(*) from event_shards")
    if not shards:
        raise RuntimeError("this schema has no event shards: run db.migrate on it first")
    return shards


class _GroupCommit:
    """Appends to one shard that arrive while a transaction commits share the next one.

    Commit order needs a shard's appends serialized (its advisory lock is held until
    commit), which would cap a shard at one append per disk flush. Instead, appends wait
    in a queue (parley.batching) and one transaction writes them all, each in its own
    savepoint - one append's conflict fails only that append - and commits once. A single
    append still goes at once. One per shard: shards commit in parallel."""
    MAX_BATCH = 100

    def __init__(self, pool: asyncpg.Pool, shard: int):
        self.pool = pool
        self.shard = shard
        self.batcher: Batcher[Callable[[asyncpg.Connection], Awaitable[Any]]] = Batcher(self._commit,
                                                                                        max_batch=self.MAX_BATCH)

    async def run(self, write: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        """Run `write(conn)` in a shared transaction; returns its result once committed."""
        return await self.batcher.run(write)

    async def _commit(self, batch: Sequence[Callable[[asyncpg.Connection], Awaitable[Any]]]) -> list[Any]:
        outcomes: list[Any] = []
        # A lone append needs no savepoint: if it fails, the transaction it fails is its own
        # (two round trips fewer for every append on a quiet shard).
        alone = len(batch) == 1
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_shards(conn, [self.shard])
            for write in batch:
                if alone:
                    outcomes.append(await write(conn))
                    continue
                try:
                    async with conn.transaction():  # a savepoint
                        outcomes.append(await write(conn))
                except Exception as e:
                    outcomes.append(e)
        return outcomes


class EventStore:
    def __init__(self, pool: asyncpg.Pool, catalog: Catalog, *,
                 topic_for: Callable[[str], str] | None = None):
        self.pool = pool
        self.catalog = catalog
        self.topic_for = topic_for or catalog.topic_for
        self._shards: int | None = None  # read from the schema on first use
        self._groups: dict[int, _GroupCommit] = {}

    async def shard_for(self, stream_id: str, conn: asyncpg.Connection | None = None) -> int:
        # In a caller's transaction, read with its connection: one more from the pool could
        # wait forever when such transactions hold them all (a restarted crm-bridge did).
        if self._shards is None:
            self._shards = await shard_count(conn or self.pool)
        return shard_of(stream_id, self._shards)

    async def in_shard_order(self, items: list, stream_of: Callable[[Any], str],
                             conn: asyncpg.Connection | None = None) -> list:
        """`items` sorted by the shard of their stream: a transaction appending to several
        streams appends in this order, so it takes shard locks in ascending order and two
        such transactions can never wait on each other in a cycle. `conn`: that transaction's."""
        shards = [await self.shard_for(stream_of(item), conn) for item in items]
        return [item for _, item in sorted(zip(shards, items), key=lambda pair: pair[0])]

    async def _group(self, stream_id: str) -> _GroupCommit:
        shard = await self.shard_for(stream_id)
        if shard not in self._groups:
            self._groups[shard] = _GroupCommit(self.pool, shard)
        return self._groups[shard]

    async def append(self, events: Iterable[Event], expected_version: int, *,
                     command_id: str | None = None, result: dict[str, Any] | None = None,
                     conn: asyncpg.Connection | None = None, holds_lock: bool = False) -> list[Event]:
        """Append events to one stream after `expected_version` (0: the stream must not
        exist). Raises ConcurrencyConflict if the stream is elsewhere, SchemaViolation if
        an event breaks its schema. Returns the events with their stream versions.
        `conn`: append in the caller's transaction; `holds_lock`: that transaction already
        holds the stream's shard lock (a group commit's write)."""
        events = list(events)
        if not events:
            return []
        stream_id = events[0].stream_id
        if any(e.stream_id != stream_id for e in events):
            raise ValueError("one append writes one stream")
        numbered = [e.with_version(expected_version + i + 1) for i, e in enumerate(events)]
        for e in numbered:
            self.catalog.validate(e)
        self.topic_for(stream_id)  # a stream no topic takes is refused before anything waits
        if conn is None:
            group = await self._group(stream_id)
            await group.run(lambda c: self._append_locked(c, stream_id, numbered, expected_version,
                                                          command_id, result, holds_lock=True))
        else:
            await self._append_locked(conn, stream_id, numbered, expected_version, command_id, result,
                                      holds_lock=holds_lock)
        return numbered

    async def _append_locked(self, conn, stream_id, events, expected_version, command_id, result, *,
                             holds_lock: bool = False):
        # The stream's shard lock, held until commit: within a shard, positions are handed
        # out in commit order (see the migrations). A group commit took it when it began.
        # A transaction appending to streams of several shards holds each of their locks;
        # PostgreSQL breaks a deadlock between two such transactions by failing one
        # (execute() retries it).
        shard = await self.shard_for(stream_id, conn)
        if not holds_lock:
            await lock_shards(conn, [shard])
        await self.append_locked(conn, [Append(stream_id, expected_version, events,
                                               ((command_id, result or {}),) if command_id is not None else ())])

    async def append_locked(self, conn: asyncpg.Connection, appends: Sequence[Append], *,
                            along: Sequence[Statement] = ()) -> None:
        """Several streams' appends in one statement, in the caller's transaction, which
        holds the shard locks of all of them (lock_shards): the versions are read in this
        statement's snapshot, taken after the locks, so no append to these streams can
        commit in between. Positions follow the order of `appends` and of their events.
        `along`: the caller's own writes (its projection), sent in the same statement
        (parley/statements.py) - they are written even when the versions conflict, so the
        caller's transaction must end with the ConcurrencyConflict raised then.
        Raises ConcurrencyConflict if any stream is elsewhere; no event is written."""
        events = [(a, e) for a in appends for e in a.events]
        if not events:
            if along:
                await statements.execute(conn, along)
            return
        shards = {a.stream_id: await self.shard_for(a.stream_id, conn) for a in appends}
        recorded = [(a.stream_id, command_id, result) for a in appends for command_id, result in a.commands]
        ctes, along_args = statements.as_ctes(along, after=_APPEND_PARAMS)
        appended = await conn.fetchval(
            _APPEND + (",\n" + ctes if along else "") + "\n" + _APPENDED,
            [a.stream_id for a in appends], [a.expected_version for a in appends],
            [e.id for _, e in events], [e.stream_id for _, e in events], [e.stream_version for _, e in events],
            [e.type for _, e in events], [e.version for _, e in events], [self.topic_for(e.stream_id) for _, e in events],
            [e.occurred_at for _, e in events], [e.correlation_id for _, e in events],
            [e.causation_id for _, e in events], [e.project_id for _, e in events],
            [orjson.dumps(e.data).decode() for _, e in events], [shards[e.stream_id] for _, e in events],
            [c for _, c, _ in recorded], [s for s, _, _ in recorded], [r for _, _, r in recorded], *along_args)
        if appended != len(events):
            heads = dict(await conn.fetch(
                """select x.stream_id, (select coalesce(max(stream_version), 0) from events where stream_id = x.stream_id)
                   from unnest($1::text[]) as x(stream_id)""", [a.stream_id for a in appends]))
            moved = next((a for a in appends if heads[a.stream_id] != a.expected_version), appends[0])
            raise ConcurrencyConflict(moved.stream_id, moved.expected_version, heads[moved.stream_id])

    async def load(self, stream_id: str, *, after: int = 0, conn: asyncpg.Connection | None = None) -> list[Event]:
        """The stream's events with stream_version > after, in order: one range scan of the
        unique (stream_id, stream_version) index, so reading the tail of a long stream
        costs what the tail costs."""
        query = f"select {_COLUMNS} from events where stream_id = $1 and stream_version > $2 order by stream_version"
        rows = await (conn or self.pool).fetch(query, stream_id, after)
        return [_row_to_stored(r).event for r in rows]

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        return await read_all(self.pool, after, limit)

    async def execute(self, command_id: str, stream_id: str,
                      decide: Callable[[Any], Decision | Awaitable[Decision]],
                      *, attempts: int = 5, effects: Effects | None = None,
                      basis: Callable[[str, str], Awaitable[tuple[dict[str, Any] | None, int, Any]]] | None = None
                      ) -> Outcome:
        """Run a command exactly once per command id: load the stream, decide, append.
        A concurrent writer makes it reload and decide again; a retry of a command id
        that already succeeded returns the first result and appends nothing.
        `effects(conn, events)` runs in the append's transaction: the owning service's
        own tables (and secrets, which never go into events) change atomically with it.
        `basis(stream_id, command_id) -> (the command's recorded result or None, version,
        what decide gets)` replaces loading the whole stream: a service that keeps its
        aggregate's state (written by its effects) decides on that - read together with
        the command's record in one query - and the append still expects that version."""
        for attempt in range(1, attempts + 1):
            if basis is None:
                first = await self._recorded(command_id)
                history = [] if first is not None else await self.load(stream_id)
                version, decided_on = len(history), history
            else:
                first, version, decided_on = await basis(stream_id, command_id)
            if first is not None:
                return Outcome(first, [], replayed=True)
            decision = decide(decided_on)
            if hasattr(decision, "__await__"):
                decision = await decision
            async def write(conn: asyncpg.Connection) -> list[Event]:
                appended = await self.append(decision.events, version, command_id=command_id,
                                             result=decision.result, conn=conn, holds_lock=True)
                if effects is not None:
                    await effects(conn, appended)
                return appended
            try:
                appended = await (await self._group(stream_id)).run(write)
                return Outcome(decision.result, appended, replayed=False)
            except (ConcurrencyConflict, asyncpg.DeadlockDetectedError):
                # A deadlock (effects appending to another shard's stream) rolled back the whole
                # transaction, this command included: deciding again is safe.
                if attempt == attempts:
                    raise
            except asyncpg.UniqueViolationError as e:
                if e.constraint_name != "commands_pkey":
                    raise
                # The same command id is being run concurrently and won: loop to return its result.
        raise AssertionError("unreachable")

    async def _recorded(self, command_id: str) -> dict[str, Any] | None:
        return await self.pool.fetchval("select result from commands where command_id = $1", command_id)
