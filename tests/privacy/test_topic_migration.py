"""Issue 20, item 6: `python -m parley.admin privacy migrate` on a broker filled the way the
previous version filled it.

A broker of this test's own (it deletes and makes topics) and a database of its own. The
conversation service's event store holds 2,500 events of realistic conversations
(bench/chat_histories.py); the relay publishes them with no sealer - the previous
version's relay, which put every personal field on `conversation.events` in plain text.
One conversation was erased since (its key is a tombstone); crm-bridge has a stored
position on the topic.

- With the conversation service's relay running, the command refuses and changes nothing.
- SIGKILLed while it copies, then run again, it finishes: every record is still there,
  in its partition and order, with no personal field readable; each opens with its
  conversation's key to exactly what was published before, the erased conversation's
  to its erased form; the staging topic is gone; crm-bridge's stored position points at
  the same record.
- Run a third time it does nothing ("done before")."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer

from parley import db, kafka, personal, subject_keys
from parley.config import REPO_ROOT
from parley.envelope import Event
from parley.eventstore import EventStore
from parley.migrate_services import migrate_all
from devstack.kafka_local import LocalKafka
from devstack.procs import spawn
from parley.relay import Relay
from parley.schemas import Catalog, load_topics

from bench import chat_histories
from tests.privacy import marked
from tests.support import create_database, drop_database, eventually

TOPIC = "conversation.events"
EVENTS = 2500


@pytest.fixture
async def old_installation(platform, tmp_path):
    """(database URL, bootstrap) of an installation the previous version wrote."""
    broker = LocalKafka(tmp_path)
    bootstrap = await asyncio.to_thread(broker.start)
    database_url = await create_database(platform.database_url, "topic_migration")
    try:
        await kafka.create_topics(bootstrap, load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml"))
        await migrate_all(database_url)
        yield database_url, bootstrap
    finally:
        await drop_database(platform.database_url, database_url)
        await asyncio.to_thread(broker.stop)


async def records(bootstrap: str, topic: str) -> dict[int, list]:
    """Every record of `topic`, by partition number, in order."""
    return {tp.partition: batch for tp, batch in (await marked.records(bootstrap, [topic])).items()}


def migrate_command(database_url: str, bootstrap: str, log_path) -> subprocess.Popen:
    return spawn([sys.executable, "-m", "parley.admin", "privacy", "migrate"], log_path=log_path, cwd=REPO_ROOT,
                 env={**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})


async def finished(proc: subprocess.Popen, log_path, timeout: float = 180) -> int:
    try:
        return await asyncio.to_thread(proc.wait, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the command did not finish in {timeout} s:\n{log_path.read_text()[-3000:]}") from None


@pytest.mark.slow
async def test_migrate_rewrites_a_topic_the_previous_version_wrote_and_resumes_after_a_kill(old_installation,
                                                                                             tmp_path):
    database_url, bootstrap = old_installation
    pool = await db.create_pool(database_url, "conversation")
    try:
        # The previous version: events appended by the conversation service, published plain.
        store = EventStore(pool, Catalog(REPO_ROOT / "schemas"))
        streams: dict[str, list[Event]] = defaultdict(list)
        for event in chat_histories.events(EVENTS):
            streams[event.stream_id].append(event)
        for stream, events in streams.items():
            await store.append(events, 0)
        stop = asyncio.Event()
        relay = asyncio.create_task(Relay(database_url, "conversation", bootstrap, poll_interval=0.1).run(stop))
        total = sum(len(e) for e in streams.values())

        async def published() -> bool:
            return sum(len(b) for b in (await records(bootstrap, TOPIC)).values()) == total
        await eventually(published, timeout=60, what="the old relay to publish every event")
        before = await records(bootstrap, TOPIC)
        assert any(personal.is_plain(Event.from_bytes(r.value)) for b in before.values() for r in b)

        # Refused while the relay runs (it holds the lock the command takes).
        proc = migrate_command(database_url, bootstrap, tmp_path / "refused.log")
        assert await finished(proc, tmp_path / "refused.log") == 1
        assert "stop the Parley services first" in (tmp_path / "refused.log").read_text()
        stop.set()
        await relay

        erased_stream = next(s for s, events in streams.items()
                             if any(e.type == "chat.visitor_message_posted" for e in events))
        async with pool.acquire() as conn:
            await subject_keys.erase(conn, [erased_stream])
        bridge = await db.create_pool(database_url, "crm_bridge", max_size=1)
        position = (2, len(before[2]) // 2)
        await bridge.execute("insert into consumer_offsets (consumer, topic, partition, next_offset)"
                             " values ('crm-bridge.leads', $1, $2, $3)", TOPIC, *position)

        # SIGKILLed while it copies; run again, it finishes.
        proc = migrate_command(database_url, bootstrap, tmp_path / "killed.log")

        async def copying() -> bool:
            copied = await records(bootstrap, TOPIC + ".sealing") if await pool.fetchval(
                "select stage = 'copying' from topic_sealing where topic = $1", TOPIC) else {}
            return sum(len(b) for b in copied.values()) > 0
        await eventually(copying, timeout=60, what="the command copying")
        proc.kill()
        proc.wait()
        assert await pool.fetchval("select stage from topic_sealing where topic = $1", TOPIC) == "copying"
        proc = migrate_command(database_url, bootstrap, tmp_path / "resumed.log")
        assert await finished(proc, tmp_path / "resumed.log") == 0, (tmp_path / "resumed.log").read_text()
        assert f"{TOPIC}: rewritten sealed: {total:,} records" in (tmp_path / "resumed.log").read_text()

        after = await records(bootstrap, TOPIC)
        assert {p: [r.key for r in b] for p, b in after.items()} == {p: [r.key for r in b] for p, b in before.items()}
        opened = subject_keys.LocalOpener(pool)
        for partition, batch in after.items():
            events = [Event.from_bytes(r.value) for r in batch]
            assert not [e for e in events if personal.is_plain(e)]
            originals = [Event.from_bytes(r.value) for r in before[partition]]
            assert [e.id for e in events] == [e.id for e in originals]          # every record, in order, once
            for event, original in zip(await opened.open(events), originals):
                if event.stream_id == erased_stream and personal.is_plain(original):
                    assert event.data.get("erased") is True and event.data != original.data
                else:
                    assert event.data == original.data
        assert TOPIC + ".sealing" not in await _topics(bootstrap)
        moved = await bridge.fetchval("select next_offset from consumer_offsets where consumer = 'crm-bridge.leads'")
        assert after[position[0]][moved].key == before[position[0]][position[1]].key and moved == position[1]
        await bridge.close()

        proc = migrate_command(database_url, bootstrap, tmp_path / "again.log")
        assert await finished(proc, tmp_path / "again.log") == 0
        assert f"{TOPIC}: done before" in (tmp_path / "again.log").read_text()
    finally:
        await pool.close()


async def _topics(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.topics()
    finally:
        await consumer.stop()
