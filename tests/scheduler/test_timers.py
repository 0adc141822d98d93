"""Timers against the real conversation service (in-process stack) and Kafka: the
scheduler's consumer sets them from conversation.events, the fire loop fires them once.
A timer minute is MINUTE_SECONDS here (PARLEY_SCHEDULER_MINUTE_SECONDS)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import aiohttp

from parley.service import STORE
from parley.service_client import path

from scheduler import timers
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

ANY_TIME = {"show_any_time": True, "time_zone": "UTC"}


async def visitor_writes(stack, text: str = "Hello?", visitor_id: str | None = None) -> str:
    visitor_id = visitor_id or f"v-{uuid.uuid4().hex[:12]}"
    body = await stack.conversation_client.checked("POST", path("internal", "visitor", "messages"), json={
        "project_id": "demo", "visitor_id": visitor_id, "message_id": str(uuid.uuid4()), "text": text,
        "page_url": None, "chat_open": True})
    return body["conversation_id"]


async def timer_rows(sched, cid: str) -> list[dict]:
    rows = await sched.pool.fetch("select * from timers where conversation_id = $1 order by created_at", cid)
    return [dict(r) for r in rows]


async def alerts_for(sched, cid: str) -> list[dict]:
    return [e for e in await sched.events("schedule.unanswered_alert") if e["data"]["conversation_id"] == cid]


async def test_an_unanswered_conversation_alerts_once(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    assert (await scheduler.put({**ANY_TIME, "unanswered_alert_minutes": 2, "idle_close_hours": None})).status == 200
    cid = await visitor_writes(stack)
    await eventually(lambda: alerts_for(scheduler, cid), timeout=30, what="the unanswered alert")
    await asyncio.sleep(1.0)
    [alert] = await alerts_for(scheduler, cid)
    [unanswered] = [t for t in await timer_rows(scheduler, cid) if t["kind"] == "unanswered"]
    assert alert["id"] == str(unanswered["id"]) == timers.timer_id(cid, "unanswered", 1)
    assert alert["stream_id"] == f"schedule-timer-{alert['id']}"
    assert alert["data"] == {"project_id": "demo", "conversation_id": cid, "minutes": 2}
    assert unanswered["status"] == "fired" and unanswered["outcome"] == {"outcome": "alerted"}
    # The idle timer is switched off: the current one (moved by the message) waits without a due time.
    idle = [t for t in await timer_rows(scheduler, cid) if t["kind"] == "idle"]
    [current] = [t for t in idle if t["status"] == "pending"]
    assert current["due_at"] is None and current["generation"] == max(t["generation"] for t in idle)
    assert all(t["status"] == "cancelled" for t in idle if t is not current)


async def test_a_taken_conversation_does_not_alert(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    assert (await scheduler.put({**ANY_TIME, "unanswered_alert_minutes": 8, "idle_close_hours": None})).status == 200
    cid = await visitor_writes(stack)

    async def pending():
        return [t for t in await timer_rows(scheduler, cid) if t["kind"] == "unanswered" and t["status"] == "pending"]
    await eventually(pending, timeout=20, what="the unanswered timer")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("POST", f"/api/conversations/{cid}/take", owner)
    assert r.status == 200, await r.text()

    async def cancelled():
        rows = [t for t in await timer_rows(scheduler, cid) if t["kind"] == "unanswered"]
        return rows and all(t["status"] == "cancelled" for t in rows)
    await eventually(cancelled, timeout=20, what="the unanswered timer cancelled")
    await asyncio.sleep(8 * 0.5 + 1)
    assert await alerts_for(scheduler, cid) == []


async def test_timers_follow_a_schedule_edit(sched_stack):
    """Working time only: while the chat is never open the timer has no due time; the
    edit that opens it recomputes the pending timer, which then fires."""
    stack, scheduler = sched_stack, sched_stack.scheduler
    closed = {"show_any_time": False, "time_zone": "Europe/Moscow", "week": {},
              "unanswered_alert_minutes": 2, "idle_close_hours": None}
    assert (await scheduler.put(closed)).status == 200
    cid = await visitor_writes(stack)

    async def dormant():
        rows = [t for t in await timer_rows(scheduler, cid) if t["kind"] == "unanswered"]
        return rows and rows[0]["status"] == "pending" and rows[0]["due_at"] is None
    await eventually(dormant, timeout=20, what="a pending unanswered timer with no due time")
    await asyncio.sleep(1.5)
    assert await alerts_for(scheduler, cid) == []
    assert (await scheduler.put({**closed, "show_any_time": True})).status == 200
    await eventually(lambda: alerts_for(scheduler, cid), timeout=20, what="the alert after the edit")
    assert len(await alerts_for(scheduler, cid)) == 1


async def idle_after_an_hour_of_3_s(scheduler, monkeypatch) -> None:
    monkeypatch.setenv("PARLEY_SCHEDULER_MINUTE_SECONDS", "0.05")   # an hour is 3 s
    scheduler.app[timers.TUNING].minute = 0.05
    assert (await scheduler.put({**ANY_TIME, "unanswered_alert_minutes": None, "idle_close_hours": 1})).status == 200


async def idle_closes(stack, cid: str) -> list:
    events = await stack.conversation.app[STORE].load(f"conversation-{cid}")
    return [e for e in events if e.type == "status.changed" and e.data.get("status") == "closed"]


async def test_an_idle_conversation_is_closed_once(sched_stack, monkeypatch):
    stack, scheduler = sched_stack, sched_stack.scheduler
    await idle_after_an_hour_of_3_s(scheduler, monkeypatch)
    cid = await visitor_writes(stack)
    await asyncio.sleep(1.5)
    await eventually(lambda: idle_closes(stack, cid), timeout=30, what="the idle close")
    await asyncio.sleep(2.0)
    [close] = await idle_closes(stack, cid)
    assert close.data["reason"] == "idle" and close.data["idle_hours"] == 1 and close.data["by_operator_id"] is None
    fired = [t for t in await timer_rows(scheduler, cid) if t["kind"] == "idle" and t["status"] == "fired"]
    assert len(fired) == 1 and fired[0]["outcome"] == {"outcome": "closed"}
    assert not [t for t in await timer_rows(scheduler, cid) if t["status"] == "pending"]


async def test_an_idle_timer_that_finds_a_later_message_is_set_again_from_it(sched_stack, monkeypatch):
    """Messages do not move the idle timer (issue 21): when it fires, the conversation
    service answers that a message came after the event that set it, and the timer is
    set again from that message; the close comes an idle period after the last message."""
    stack, scheduler = sched_stack, sched_stack.scheduler
    await idle_after_an_hour_of_3_s(scheduler, monkeypatch)
    visitor_id = f"v-{uuid.uuid4().hex[:12]}"
    cid = await visitor_writes(stack, "Hello", visitor_id)
    await asyncio.sleep(1.5)
    await visitor_writes(stack, "Still here", visitor_id)     # v3, half an idle hour later
    await eventually(lambda: idle_closes(stack, cid), timeout=30, what="the idle close")
    await asyncio.sleep(1.0)
    events = await stack.conversation.app[STORE].load(f"conversation-{cid}")
    [close] = await idle_closes(stack, cid)
    last_message = [e for e in events if e.type == "chat.visitor_message_posted"][-1]
    assert last_message.stream_version == 3
    from_last = datetime.fromisoformat(close.occurred_at) - datetime.fromisoformat(last_message.occurred_at)
    assert from_last >= timedelta(seconds=3), "an idle hour (3 s here) after the last message, not the first"
    idle = [t for t in await timer_rows(scheduler, cid) if t["kind"] == "idle"]
    assert [(t["generation"], t["status"], t["outcome"]) for t in idle] == [
        (1, "fired", {"outcome": "active", "since_version": 3}), (3, "fired", {"outcome": "closed"})]
    assert idle[1]["id"] == uuid.UUID(timers.timer_id(cid, "idle", 3))


async def test_a_long_conversation_writes_no_timer_rows_per_message(sched_stack):
    """The timer consumer is given no messages at all: a conversation of 60 messages
    either way has the timers of its start and nothing more."""
    stack, scheduler = sched_stack, sched_stack.scheduler
    assert (await scheduler.put({**ANY_TIME, "unanswered_alert_minutes": 60, "idle_close_hours": 24})).status == 200
    visitor_id = f"v-{uuid.uuid4().hex[:12]}"
    cid = await visitor_writes(stack, "Hello", visitor_id)
    for i in range(59):
        await visitor_writes(stack, f"Message {i}", visitor_id)
    close = await stack.conversation_client.call("POST", path("internal", "conversations", cid, "close-idle"),
                                                 json={"hours": 24, "idle_since_version": 1},
                                                 headers={"Idempotency-Key": str(uuid.uuid4())})
    assert close.status == 200 and close.body["closed"] is False and close.body["active"]["version"] == 61
    for bad, code in (({"idle_since_version": "1"}, "idle_since_version_invalid"),
                      ({"idle_since_version": 1, "idle_since": "yesterday"}, "idle_since_invalid"),
                      ({"idle_since_version": 1, "idle_since": "2026-12-06T10:00:00"}, "idle_since_invalid")):
        refused = await stack.conversation_client.call("POST", path("internal", "conversations", cid, "close-idle"),
                                                       json={"hours": 24, **bad},
                                                       headers={"Idempotency-Key": str(uuid.uuid4())})
        assert (refused.status, refused.body["error"]["code"]) == (422, code)

    async def both_set():
        return {t["kind"] for t in await timer_rows(scheduler, cid)} == {"unanswered", "idle"}
    await eventually(both_set, timeout=20, what="the start's timers")
    consumed = await scheduler.pool.fetchval(
        "select stream_version from consumer_streams where stream_id = $1",   # the scheduler's schema: its one consumer
        f"conversation-{cid}")
    await asyncio.sleep(1.0)   # a consumer that still took the messages would have moved on by now
    assert [(t["kind"], t["generation"], t["status"]) for t in await timer_rows(scheduler, cid)] == [
        ("unanswered", 1, "pending"), ("idle", 1, "pending")]
    assert consumed == 1


async def operator_socket(stack, token: str):
    """An operator's live socket (the token in the query, as a client without headers
    would send it), read until `hello`; returns (socket, frames received after it)."""
    stack.gateway.session.cookie_jar.clear()
    ws = await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {token}"})
    frames: list[dict] = []
    while (await ws.receive_json(timeout=10))["type"] != "hello":
        pass

    async def read():
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frames.append(msg.json())
    task = asyncio.create_task(read())
    return ws, frames, task


async def test_the_admins_are_told_and_other_operators_are_not(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await stack.add_operator(owner, "Plain Operator")
    _, admin, _ = await stack.add_operator(owner, "Second Admin", admin=True)
    sockets = {name: await operator_socket(stack, token)
               for name, token in (("owner", owner), ("operator", operator), ("admin", admin))}
    try:
        assert (await scheduler.put({**ANY_TIME, "unanswered_alert_minutes": 2, "idle_close_hours": None})).status == 200
        cid = await visitor_writes(stack)

        def told(name: str) -> list[dict]:
            return [f for f in sockets[name][1] if f.get("kind") == "unanswered"]
        await eventually(lambda: told("owner") and told("admin"), timeout=30, what="the admins' unanswered alerts")
        assert told("owner") == told("admin") == [{"type": "notification", "kind": "unanswered",
                                                   "conversation_id": cid, "minutes": 2}]
        await asyncio.sleep(1.0)
        assert told("operator") == []
        # The plain operator did see the conversation arrive: the socket was live all along.
        assert any(f.get("conversation_id") == cid for f in sockets["operator"][1])
    finally:
        for ws, _, task in sockets.values():
            await ws.close()
            task.cancel()
