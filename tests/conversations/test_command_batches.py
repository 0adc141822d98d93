"""Set-based commands on real PostgreSQL (conversation.command_batch, issue 21): the
commands that queue behind a transaction go together in the next one. What a batch
writes is what the commands one at a time would have written; a batch that cannot be
written as a whole - two starts for one visitor, a database session that dies mid-batch
- leaves nothing behind and its halves go again, down to single commands; a retried
command id returns its first outcome."""
from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg

from parley.contract import conversation_stream
from parley.eventstore import Outcome
from parley.service import POOL, STORE

from conversation import commands, domain
from conversation import command_batch, current_conversations, projection
from conversation.command_batch import Command, batches_of
from tests.conversations.test_kept_state import kept_and_folded, visitor_call
from tests.conversations.test_conversation_domain import PROJECT


def message(cid: str, visitor: str, message_id: str, text: str = "hello") -> Command:
    return Command(f"visitor-message:{PROJECT}:{visitor}:{message_id}", cid,
                   lambda s: domain.decide_visitor_message(
                       s, conversation_id=cid, project_id=PROJECT, visitor_id=visitor, message_id=message_id,
                       text=text, attachment=None, page_url=None, chat_open=True),
                   visitor_message_id=message_id)


def batches(stack):
    store = stack.conversation.app[STORE]
    return batches_of(store, commands.run_alone)


async def together(stack, *cmds: Command) -> list:
    """The commands queued at once: asyncio runs each caller up to its wait before the
    batch starts, so they form one batch."""
    b = batches(stack)
    return await asyncio.gather(*(b.run(c) for c in cmds), return_exceptions=True)


async def assert_kept_state_is_the_fold(stack, cid: str) -> None:
    row, events, _ = await kept_and_folded(stack, cid)
    assert row["version"] == len(events)
    assert domain.from_state(row["state"]) == domain.kept(domain.fold(events))


async def stream(stack, cid: str):
    return await stack.conversation.app[STORE].load(conversation_stream(cid))


async def test_a_batch_writes_what_the_commands_one_at_a_time_would(stack):
    b = batches(stack)
    before = (b.batches, b.commands, b.fell_back)
    a, c = str(uuid.uuid4()), str(uuid.uuid4())
    outcomes = await together(stack, message(a, "va", "1"), message(c, "vc", "1"), message(a, "va", "2"),
                              message(a, "va", "3", text="third"), message(c, "vc", "2"))
    assert all(isinstance(o, Outcome) and not o.replayed for o in outcomes), outcomes
    # one transaction for all five, written as a whole
    assert (b.batches - before[0], b.commands - before[1], b.fell_back - before[2]) == (1, 5, 0)
    for cid, texts in ((a, ["hello", "hello", "third"]), (c, ["hello", "hello"])):
        events = await stream(stack, cid)
        assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
        assert [e.data["text"] for e in events if e.type == "chat.visitor_message_posted"] == texts
        await assert_kept_state_is_the_fold(stack, cid)
    row = await stack.conversation.app[POOL].fetchrow("select unread, version from conversations where id = $1", a)
    assert (row["unread"], row["version"]) == (3, 4)
    seqs = await stack.conversation.app[POOL].fetch(
        "select message_id, seq from conversation_messages where conversation_id = $1 order by seq", a)
    assert [(r["message_id"], r["seq"]) for r in seqs] == [("1", 2), ("2", 3), ("3", 4)]


class CountingPool:
    """The store's pool, with the statements of each connection acquired, by acquisition."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self.acquisitions: list[list[str]] = []

    def __getattr__(self, name: str):
        return getattr(self.pool, name)

    @contextlib.asynccontextmanager
    async def acquire(self):
        async with self.pool.acquire() as conn:
            mine: list[str] = []
            self.acquisitions.append(mine)

            def logged(record) -> None:
                mine.append(" ".join(record.query.split()))
            conn.add_query_logger(logged)
            try:
                yield conn
            finally:
                conn.remove_query_logger(logged)


async def test_a_lone_message_costs_four_statements_the_append_carries_the_projection(stack, monkeypatch):
    """At 100 messages/s a batch is one command. Its transaction is BEGIN with the shard
    lock, one read (kept state, inbox row, retries, resends), one write (the events, the
    command's record, the inbox row, the message id, the kept state) and COMMIT: four
    round trips, not nine - and what it wrote is what the projection would have."""
    store = stack.conversation.app[STORE]
    cid = str(uuid.uuid4())
    await together(stack, message(cid, "five", "1"))   # the start (its visitor row and key are more)
    counting = CountingPool(store.pool)
    monkeypatch.setattr(store, "pool", counting)
    [outcome] = await together(stack, message(cid, "five", "2", text="second"))
    await asyncio.sleep(0)   # the query loggers run soon after their statement
    monkeypatch.undo()
    assert isinstance(outcome, Outcome) and [e.stream_version for e in outcome.events] == [3]
    [batch] = [a for a in counting.acquisitions if any("'kept' as kind" in q for q in a)]
    assert [q.split()[0].lower() for q in batch] == ["begin;", "select", "with", "commit"], batch
    assert "pg_advisory_xact_lock" in batch[0]
    assert "insert into conversations" in batch[2] and "insert into conversation_state" in batch[2]
    row = await stack.conversation.app[POOL].fetchrow(
        "select unread, version, last_message_text from conversations where id = $1", cid)
    assert dict(row) == {"unread": 2, "version": 3, "last_message_text": "second"}
    await assert_kept_state_is_the_fold(stack, cid)


async def test_a_retried_batched_command_returns_its_first_outcome_and_appends_nothing(stack):
    cid = str(uuid.uuid4())
    first, _ = await together(stack, message(cid, "vr", "1"), message(cid, "vr", "2"))
    again = await commands.run(stack.conversation.app[STORE], f"visitor-message:{PROJECT}:vr:1", cid,
                               lambda s: (_ for _ in ()).throw(AssertionError("a retry must not decide again")))
    assert again.replayed and again.result == first.result and again.events == []
    assert len(await stream(stack, cid)) == 3


async def test_two_starts_for_one_visitor_in_a_batch_fall_back_and_one_wins(stack):
    """Two first messages of one visitor, each given a new conversation: the batch's
    visitor row conflicts, nothing of it is written, and alone the first wins while the
    second is refused as the API expects (it then runs in the winner's conversation)."""
    b = batches(stack)
    fell_back = b.fell_back
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    won, lost = await together(stack, message(first, "twice", "1"), message(second, "twice", "2"))
    assert b.fell_back > fell_back   # the pair, then the loser alone
    assert isinstance(won, Outcome) and len(won.events) == 2
    assert isinstance(lost, asyncpg.UniqueViolationError) and lost.constraint_name == "visitor_conversations_pkey"
    assert await stream(stack, second) == []
    assert [e.stream_version for e in await stream(stack, first)] == [1, 2]


async def test_one_bad_command_in_a_big_batch_costs_a_few_transactions_not_one_each(stack):
    """Of 64 commands, one starts a second conversation for a visitor the batch also starts
    one for: the others are still written in batches (halves), the bad one is refused
    alone, and nothing is written twice."""
    b = batches(stack)
    before = b.batches, b.fell_back, b.alone
    cids = [str(uuid.uuid4()) for _ in range(64)]
    commands_ = [message(cid, f"big-{n}", "1") for n, cid in enumerate(cids)]
    commands_[40] = message(cids[40], "big-7", "2")   # visitor big-7 again, with a new conversation
    outcomes = await together(stack, *commands_)
    refused = [n for n, o in enumerate(outcomes) if not isinstance(o, Outcome)]
    assert refused == [40] and isinstance(outcomes[40], asyncpg.UniqueViolationError), outcomes[40]
    assert b.batches - before[0] == 1
    assert b.alone - before[2] == 1                 # only the bad one went the single path
    assert b.fell_back - before[1] <= 7             # one path of halves down to it: log2(64) + 1
    for n, cid in enumerate(cids):
        assert [e.stream_version for e in await stream(stack, cid)] == ([] if n == 40 else [1, 2])


async def test_a_session_killed_mid_batch_leaves_nothing_half_applied(stack, monkeypatch):
    """The batch's database session dies after its append, before its commit: nothing of
    it stays, and each command, done alone, is stored exactly once."""
    store = stack.conversation.app[STORE]
    real = store.append_locked
    killed = []

    async def append_then_die(conn, appends, **along):
        await real(conn, appends, **along)
        if len(appends) > 1 and not killed:
            killed.append(True)
            await conn.execute("select pg_terminate_backend(pg_backend_pid())")
    monkeypatch.setattr(store, "append_locked", append_then_die)
    cids = [str(uuid.uuid4()) for _ in range(3)]
    outcomes = await together(stack, *(message(cid, f"k{n}", "1") for n, cid in enumerate(cids)))
    assert killed and all(isinstance(o, Outcome) and len(o.events) == 2 for o in outcomes), outcomes
    for cid in cids:
        assert [e.stream_version for e in await stream(stack, cid)] == [1, 2]
        await assert_kept_state_is_the_fold(stack, cid)


async def test_many_visitors_writing_at_once_through_the_api_are_each_stored_once_in_order(stack):
    """Through the HTTP API, 40 visitors writing 5 messages each, all at once: batches form
    as they will under load, and every visitor's conversation has their messages once,
    in the order they were sent."""
    b = batches(stack)
    before = (b.batches, b.commands)

    async def visitor(n: int) -> str:
        cid = None
        for i in range(5):
            cid = (await visitor_call(stack, "messages", f"many-{n}", message_id=f"m{i}", text=f"{n}:{i}"))[
                "conversation_id"]
        return cid

    cids = await asyncio.gather(*(visitor(n) for n in range(40)))
    assert len(set(cids)) == 40
    assert b.commands - before[1] == 200 and b.batches - before[0] < 200   # some went together
    for n, cid in enumerate(cids):
        texts = [e.data["text"] for e in await stream(stack, cid) if e.type == "chat.visitor_message_posted"]
        assert texts == [f"{n}:{i}" for i in range(5)]


def _scanned_in_full(plan: dict) -> set[str]:
    found = {plan["Relation Name"]} if plan.get("Node Type") == "Seq Scan" else set()
    for child in plan.get("Plans", ()):
        found |= _scanned_in_full(child)
    return found


async def test_a_large_batch_reads_by_key_whatever_the_tables_hold(stack):
    """A batch of 200 against 20,000 recorded commands and message ids is 600 key probes,
    not sequential scans (with `= any(...)` and a join it scanned both tables: 2 ms a
    batch at 15,000 rows, more as they grew, and under a backlog every batch is large)."""
    pool: asyncpg.Pool = stack.conversation.app[POOL]
    tag = uuid.uuid4().hex[:8]
    cid = str(uuid.uuid4())
    await pool.execute("insert into commands (command_id, stream_id, result) select $1 || n, 'x', '{}' "
                       "from generate_series(1, 20000) n", f"plan-{tag}-")
    await pool.execute("insert into conversation_messages (conversation_id, side, message_id, seq) "
                       "select $1::uuid, 'visitor', $2 || n, n from generate_series(1, 20000) n", cid, f"m-{tag}-")
    await pool.execute("analyze commands")
    await pool.execute("analyze conversation_messages")
    cmds = [message(cid, f"v-{tag}", f"m-{tag}-{n}") for n in range(1, 200, 2)] + \
           [message(str(uuid.uuid4()), f"w-{tag}", f"new-{n}") for n in range(100)]
    cmds = [Command(f"plan-{tag}-{n}" if n % 2 else c.command_id, c.conversation_id, c.decide,
                    visitor_message_id=c.visitor_message_id) for n, c in enumerate(cmds, start=1)]
    ids = list(dict.fromkeys(c.conversation_id for c in cmds))
    asked = [(c.conversation_id, "visitor", c.visitor_message_id) for c in cmds]
    args = (ids, [conversation_stream(i) for i in ids], [c.command_id for c in cmds], *map(list, zip(*asked)))
    async with pool.acquire() as conn:
        plan = await conn.fetchval("explain (format json) " + command_batch._READ, *args)
        basis = await command_batch.read_basis(conn, stack.conversation.app[STORE], cmds)
    scanned = _scanned_in_full(plan[0]["Plan"])   # the pool decodes json
    assert not scanned & {"commands", "conversation_messages", "conversation_state"}, scanned
    assert set(basis.recorded) == {f"plan-{tag}-{n}" for n in range(1, 201, 2)}
    assert basis.found == {(cid, "visitor", f"m-{tag}-{n}") for n in range(1, 200, 2)}


async def test_the_visitor_lookup_and_the_inbox_rows_read_by_key_whatever_the_tables_hold(stack):
    """The batched current-conversation lookup and the inbox projection's load, for 300
    keys against 20,000 rows: key probes, not sequential scans."""
    pool: asyncpg.Pool = stack.conversation.app[POOL]
    tag = uuid.uuid4().hex[:8]
    await pool.execute("insert into conversations (id, project_id, visitor_id, status, started_at, version) "
                       "select gen_random_uuid(), $1, 'v' || n, 'closed', now(), 1 from generate_series(1, 20000) n",
                       f"plan-{tag}")
    await pool.execute("insert into visitor_conversations (project_id, visitor_id, conversation_id) "
                       "select project_id, visitor_id, id from conversations where project_id = $1", f"plan-{tag}")
    await pool.execute("analyze visitor_conversations")
    await pool.execute("analyze conversations")
    visitors = [f"v{n}" for n in range(1, 301)]
    async with pool.acquire() as conn:
        current = await conn.fetchval("explain (format json) " + current_conversations._CURRENT,
                                      [f"plan-{tag}"] * 300, visitors)
        load = await conn.fetchval("explain (format json) " + projection._LOAD, [str(uuid.uuid4()) for _ in range(300)])
        found = await conn.fetch(current_conversations._CURRENT, [f"plan-{tag}"] * 300, visitors)
    assert not _scanned_in_full(current[0]["Plan"]) & {"visitor_conversations", "conversations"}
    assert not _scanned_in_full(load[0]["Plan"]) & {"conversations"}
    assert sorted(r["n"] for r in found) == list(range(1, 301))
    assert {r["status"] for r in found} == {"closed"}
    # the stack is shared: the made-up project goes
    await pool.execute("delete from visitor_conversations where project_id = $1", f"plan-{tag}")
    await pool.execute("delete from conversations where project_id = $1", f"plan-{tag}")
