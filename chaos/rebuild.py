"""Does every projection equal a rebuild from the event streams?

The conversation service's read model (`conversations`, `visitor_conversations`,
`conversation_messages`) and its kept state (`conversation_state`) are written in the
transaction that appends each event (conversation/projection.py). Here they are rebuilt
from the topic, `conversation.events` read from the beginning by the ConsumerRunner
(which absorbs what a relay republished after a crash, by stream version), into a
scratch schema, with the same projection code; then each table is compared row for row
with the live one. A row missing, extra or different is a projection that drifted, or
an event that never reached Kafka (the relay skipped it), or one that reached it twice
and was applied twice.

The registry's tables (operators, projects, templates) are rebuilt the same way from
`operator.events` and `project.events`, less the password columns: hashes are never in
events (operator_registry/projection.py); its audit log from `audit.events`."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from parley import db, kafka
from parley.consumer import ConsumerRunner
from parley.contract import id_of
from parley.envelope import Event
from parley.subject_keys import LocalOpener

# table -> (key columns, columns left out of the comparison, and why)
CONVERSATION_TABLES = {
    "conversations": ("id", ()),
    "visitor_conversations": ("project_id, visitor_id", ()),
    "conversation_messages": ("conversation_id, side, message_id", ()),
    "conversation_state": ("conversation_id", ()),
}
# Password hashes come with the command, not the event; sessions are not a projection.
REGISTRY_TABLES = {
    "projects": ("id", ("owner_password",)),
    "operators": ("id", ("password",)),
    "templates": ("id", ()),
    "audit_log": ("id", ("seq",)),   # seq: the order entries arrived in, a read cursor
}


@dataclass
class TableCheck:
    schema: str
    table: str
    live_rows: int
    rebuilt_rows: int
    missing: int      # live rows the rebuild does not have
    extra: int        # rebuilt rows the live table does not have
    different: int    # same key, other values

    @property
    def equal(self) -> bool:
        return self.missing == self.extra == self.different == 0


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = kafka.consumer(bootstrap, None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def _consume(pool: asyncpg.Pool, bootstrap: str, name: str, topics: list[str], handlers: dict, reset,
                   deadline: float) -> None:
    """A ConsumerRunner over `topics` (`handlers`: its handle= or handle_batch=) until
    every partition is read to the end offset it had when this began."""
    ends = await _end_offsets(bootstrap, topics)
    runner = ConsumerRunner(pool, bootstrap, name=name, topics=topics, reset=reset, **handlers)
    await runner.rebuild()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        while True:
            rows = await pool.fetch("select topic, partition, next_offset from consumer_offsets where consumer = $1",
                                    runner.name)
            read = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            if all(read.get(tp, 0) >= end for tp, end in ends.items()):
                return
            if task.done():
                task.result()
                raise RuntimeError("the rebuild's consumer stopped")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the rebuild of {topics} did not reach the end offsets in time")
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def _rebuild(database_url: str, bootstrap: str, migrations, stages: list[list[str]], handlers: dict, reset,
                   timeout: float) -> tuple[asyncpg.Pool, str]:
    """A scratch schema migrated like the service's, filled from each stage's topics in
    turn (a stage reads its topics to the end before the next begins: the registry's
    operators refer to projects, which are on another topic, and Kafka orders nothing
    across topics)."""
    schema = f"chaos_rebuild_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(database_url, schema, max_size=4)
    try:
        await db.migrate(pool, schema, migrations)
        deadline = time.monotonic() + timeout
        for i, topics in enumerate(stages):
            await _consume(pool, bootstrap, f"chaos-{schema}-{i}", topics, handlers, reset if i == 0 else None,
                           deadline)
    except BaseException:
        await pool.execute(f'drop schema "{schema}" cascade')
        await pool.close()
        raise
    return pool, schema


async def _compare(database_url: str, live_schema: str, scratch: str, tables: dict) -> list[TableCheck]:
    conn = await asyncpg.connect(database_url)
    try:
        checks = []
        for table, (key, left_out) in tables.items():
            columns = [r["column_name"] for r in await conn.fetch(
                """select column_name from information_schema.columns where table_schema = $1 and table_name = $2
                   order by ordinal_position""", live_schema, table) if r["column_name"] not in left_out]
            cols = ", ".join(f'"{c}"' for c in columns)

            async def rows(schema: str) -> dict:
                found = await conn.fetch(f'select ({key}) as k, row({cols})::text as r from "{schema}"."{table}"')
                return {str(r["k"]): r["r"] for r in found}

            live, rebuilt = await rows(live_schema), await rows(scratch)
            checks.append(TableCheck(live_schema, table, len(live), len(rebuilt),
                                     missing=len(live.keys() - rebuilt.keys()),
                                     extra=len(rebuilt.keys() - live.keys()),
                                     different=sum(1 for k in live.keys() & rebuilt.keys() if live[k] != rebuilt[k])))
        return checks
    finally:
        await conn.close()


async def _conversation(database_url: str, bootstrap: str, timeout: float) -> list[TableCheck]:
    from conversation import domain, projection
    import conversation.__main__ as service

    async def replay(conn: asyncpg.Connection, events: list[Event]) -> None:
        # As a rebuild replays: a partition batch at once, where a returning visitor's new
        # conversation may come before the closed one it replaced (projection.replay).
        await projection.replay(conn, events)
        for cid, of_one in _by_conversation(events).items():
            row = await conn.fetchval("select state from conversation_state where conversation_id = $1", cid)
            await projection.keep_state(conn, domain.from_state(row) if row else None, of_one)

    async def reset(conn: asyncpg.Connection) -> None:
        await conn.execute("truncate conversations, visitor_conversations, conversation_messages, conversation_state")

    # The topic's personal fields are sealed: opened with the live service's keys, as the
    # service itself would in a rebuild (parley/subject_keys.py, LocalOpener).
    keys = await db.create_pool(database_url, service.SPEC.schema, max_size=2)
    try:
        pool, scratch = await _rebuild(database_url, bootstrap, service.SPEC.migrations, [["conversation.events"]],
                                       {"handle_batch": replay, "opener": LocalOpener(keys).open}, reset, timeout)
    finally:
        await keys.close()
    try:
        return await _compare(database_url, service.SPEC.schema, scratch, CONVERSATION_TABLES)
    finally:
        await pool.execute(f'drop schema "{scratch}" cascade')
        await pool.close()


def _by_conversation(events: list[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        grouped.setdefault(id_of(event.stream_id), []).append(event)
    return grouped


async def _registry(database_url: str, bootstrap: str, timeout: float) -> list[TableCheck]:
    from operator_registry import audit_log, projection
    import operator_registry.__main__ as service

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        if event.type == "audit.recorded":
            await audit_log.on_audit_event(conn, event)
        else:   # the columns are required; their values are left out of the comparison
            await projection.apply(conn, event, password_hash="(not in events)")

    async def reset(conn: asyncpg.Connection) -> None:
        await conn.execute("truncate projects, operators, templates, audit_log cascade")

    pool, scratch = await _rebuild(database_url, bootstrap, service.SPEC.migrations,
                                   [["project.events"], ["operator.events"], ["audit.events"]], {"handle": handle},
                                   reset, timeout)
    try:
        return await _compare(database_url, service.SPEC.schema, scratch, REGISTRY_TABLES)
    finally:
        await pool.execute(f'drop schema "{scratch}" cascade')
        await pool.close()


async def check(database_url: str, bootstrap: str, timeout: float = 120) -> list[TableCheck]:
    return await _conversation(database_url, bootstrap, timeout) + await _registry(database_url, bootstrap, timeout)
