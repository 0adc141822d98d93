"""A boundary of the working hours publishes schedule.availability_changed (reason
boundary) exactly once, with two scheduler replicas on one database both watching it:
the row is claimed FOR UPDATE SKIP LOCKED and moved on in the transaction that appends,
and the event id comes from (project, boundary instant). Intervals are whole minutes, so
the boundary is a whole minute, 3 s ahead on the scheduler's clock."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from parley import kafka
from parley.envelope import Event

from scheduler import schedules
from scheduler.schedules import boundary_id
from tests.support import eventually

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(at: datetime) -> str:
    return at.strftime("%H:%M")


async def test_a_boundary_is_published_once_by_two_replicas(scheduler_pair, platform, monkeypatch):
    sched = scheduler_pair
    # The scheduler's clock (schedules.now, in-process for both replicas) is set so that a
    # whole minute is 3 s ahead: waiting for the real next minute took 5-65 s.
    real = datetime.now(timezone.utc)
    end = real.replace(second=0, microsecond=0) + timedelta(minutes=1)
    shift = end - timedelta(seconds=3) - real
    monkeypatch.setattr(schedules, "now", lambda: datetime.now(timezone.utc) + shift)
    now = schedules.now()
    start = end - timedelta(minutes=3)          # open now, closing at `end`
    body = {"show_any_time": False, "time_zone": "UTC",
            "week": {DAYS[start.weekday()]: [[_hhmm(start), _hhmm(end)]]}, "unanswered_alert_minutes": None,
            "idle_close_hours": None}
    r = await sched.put(body, project="boundary-test")
    assert r.status == 200, r.body
    [edit] = await sched.events("schedule.availability_changed")
    assert edit["data"] == {"project_id": "boundary-test", "open": True, "next_open_at": None, "reason": "edit"}
    row = await sched.pool.fetchrow("select next_boundary from schedules where project_id = 'boundary-test'")
    assert row["next_boundary"] == end

    async def published():
        return [e for e in await sched.events("schedule.availability_changed") if e["data"]["reason"] == "boundary"]
    await eventually(published, timeout=(end - now).total_seconds() + 30, what="the boundary event")
    await asyncio.sleep(1.5)                     # both replicas polled several times since
    [boundary] = await published()
    next_open = (start + timedelta(days=7)).replace(second=0, microsecond=0)
    assert boundary["id"] == boundary_id("boundary-test", end)
    assert boundary["data"]["open"] is False
    assert boundary["data"]["next_open_at"] == next_open.isoformat().replace("+00:00", "Z")
    row = await sched.pool.fetchrow("select next_boundary from schedules where project_id = 'boundary-test'")
    assert row["next_boundary"] == next_open

    # On the wire: schedule.events carries it, keyed by the project's stream.
    consumer = kafka.consumer(platform.bootstrap, None, "schedule.events")
    await consumer.start()
    seen: set[str] = set()
    try:
        async def on_the_wire():
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                for m in messages:
                    event = Event.from_bytes(m.value)
                    if event.id == boundary["id"]:
                        assert m.key == b"schedule-boundary-test"
                        seen.add(event.id)
            return seen
        await eventually(on_the_wire, timeout=30, what="the boundary event on schedule.events")
    finally:
        await consumer.stop()
