"""Reports (issue 24, item 4) on real Kafka and PostgreSQL: a week of conversations
appended to the conversation service's store with the times they happened reaches the
scheduler's report projection through the topic; `GET /api/reports` (through the
gateway) equals the hand count per day and per operator, as JSON and CSV; a replay of
every event changes no row; the projection rebuilt from the topic equals it; and the
first response is counted in working time in the project's zone."""
from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta, timezone

from parley.service import POOL, STORE

import scheduler.__main__ as scheduler_main
from scheduler import report_rows, reports
from tests.reports.seed import Planned, Week, hand_count, plan_week, seed
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually, rebuilt_until

ROWS = "select conversation_id, version, started_at, assignee_id, first_reply_at, closed_at, rating " \
       "from report_conversations order by conversation_id"


async def report(stack, token: str, **query) -> tuple[int, dict | str]:
    r = await stack.call("GET", "/api/reports?" + "&".join(f"{k}={v}" for k, v in query.items()), token)
    return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def seeded(sched_stack):
    week = plan_week(datetime.now(timezone.utc).date())
    count = await seed(sched_stack, week)
    pool = sched_stack.scheduler.app[POOL]

    async def projected():
        return await pool.fetchval("select count(*) from report_conversations where closed_at is not null") == count
    await eventually(projected, timeout=60, what="the seeded week in the report projection")
    return week


async def test_a_seeded_week_equals_the_hand_count_by_day_and_by_operator(sched_stack):
    week = await seeded(sched_stack)
    owner = await sched_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    status, body = await report(sched_stack, owner, **{"from": week.first, "to": week.last, "group": "day"})
    assert status == 200, body
    assert [r["day"] for r in body["rows"]] == [(week.first + timedelta(days=i)).isoformat() for i in range(7)]
    for row in body["rows"]:
        day = date.fromisoformat(row.pop("day"))
        assert row == hand_count([p for p in week.plan if p.day == day]), day
    assert body["total"] == hand_count(week.plan)

    status, body = await report(sched_stack, owner, **{"from": week.first, "to": week.last, "group": "operator"})
    by_name = {r["operator_name"]: r for r in body["rows"]}
    assert set(by_name) == {"Anna", "Boris", None}
    for name in ("Anna", "Boris", None):
        expected = hand_count([p for p in week.plan if p.operator == name])
        expected["offers_expired"] = sum(1 for p in week.plan if p.expired_offer_of == name) if name else 0
        assert {k: v for k, v in by_name[name].items() if k not in ("operator_id", "operator_name")} == expected, name

    # CSV: the same figures, a download.
    r = await sched_stack.call("GET", f"/api/reports?from={week.first}&to={week.last}&format=csv", owner)
    assert r.status == 200 and r.content_type == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(await r.text())))
    assert len(lines) == 8 and lines[-1]["day"] == "total"
    assert int(lines[-1]["conversations"]) == len(week.plan) and lines[-1]["csat_average"] == str(
        hand_count(week.plan)["csat_average"])

    # Outside the week: zeros, not errors.
    status, body = await report(sched_stack, owner, **{"from": week.last + timedelta(days=30),
                                                       "to": week.last + timedelta(days=31)})
    assert status == 200 and body["total"]["conversations"] == 0 and body["total"]["first_response_median_s"] is None


async def test_a_replay_of_every_event_changes_no_row(sched_stack):
    await seeded(sched_stack)
    pool = sched_stack.scheduler.app[POOL]
    before = [dict(r) for r in await pool.fetch(ROWS)]
    offers = await pool.fetchval("select count(*) from report_offers_expired")
    store = sched_stack.conversation.app[STORE]
    events = [e for stream in await sched_stack.conversation.app[POOL].fetch(
        "select distinct stream_id from events where stream_id like 'conversation-%' order by stream_id")
        for e in await store.load(stream["stream_id"])]
    async with pool.acquire() as conn, conn.transaction():
        await reports.on_conversation_events(conn, events)            # everything again, in one batch
        await reports.on_conversation_events(conn, events[::-1])      # and backwards
    assert [dict(r) for r in await pool.fetch(ROWS)] == before
    assert await pool.fetchval("select count(*) from report_offers_expired") == offers


async def test_the_projection_rebuilt_from_the_topic_equals_it(sched_stack, platform):
    await seeded(sched_stack)
    live = [dict(r) for r in await sched_stack.scheduler.app[POOL].fetch(ROWS)]
    ids = [r["conversation_id"] for r in live]   # the topic is shared with the session's other stacks
    mine = ROWS.replace(" order by", " where conversation_id = any($1::uuid[]) order by")

    async def rebuilt(scratch) -> bool:
        return [dict(r) for r in await scratch.fetch(mine, ids)] == live
    await rebuilt_until(platform, scheduler_main.SPEC.migrations, reports.on_conversation_events, None, rebuilt,
                        types=report_rows.EVENT_TYPES, what="the report rows rebuilt from Kafka as they are live")


async def test_first_response_counts_working_time_in_the_projects_zone(sched_stack):
    """Friday 17:50 in Moscow, answered Monday 09:10, with 09:00-18:00 on weekdays: 20
    working minutes, on the Friday of the project's zone (14:50 UTC)."""
    owner = await sched_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    week = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    r = await sched_stack.call("PUT", "/api/project/schedule", owner, json={
        "show_any_time": False, "time_zone": "Europe/Moscow", "week": week, "dates_off": [], "special_dates": {},
        "unanswered_alert_minutes": None, "idle_close_hours": None})
    assert r.status == 200, await r.text()
    friday = date(2026, 12, 4)
    plan = Week(friday, friday, {"Anna": str(uuid.uuid4())}, [Planned(
        friday, datetime(2026, 12, 4, 14, 50, tzinfo=timezone.utc), "Anna", 2 * 86400 + 15 * 3600 + 20 * 60,
        3 * 86400, None, None)])
    await seed(sched_stack, plan)
    pool = sched_stack.scheduler.app[POOL]

    async def projected():
        return await pool.fetchval("select count(*) from report_conversations where closed_at is not null") == 1
    await eventually(projected, timeout=60, what="the Friday conversation projected")
    status, body = await report(sched_stack, owner, **{"from": "2026-12-04", "to": "2026-12-07"})
    assert status == 200 and body["time_zone"] == "Europe/Moscow" and body["working_time"] is True
    assert body["rows"][0]["day"] == "2026-12-04" and body["rows"][0]["conversations"] == 1
    assert body["rows"][0]["first_response_median_s"] == 20 * 60
    assert body["rows"][0]["resolution_median_s"] == 3 * 86400   # resolution: plain time


async def test_reports_are_for_admins_and_bad_periods_are_refused(sched_stack):
    owner = await sched_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await sched_stack.add_operator(owner, "Olga")
    status, body = await report(sched_stack, operator, **{"from": "2026-12-01", "to": "2026-12-07"})
    assert status == 403 and body["error"]["code"] == "admin_only"
    for query, code in (({"from": "2026-12-08", "to": "2026-12-01"}, "to_invalid"),
                        ({"from": "yesterday", "to": "2026-12-01"}, "from_invalid"),
                        ({"from": "2026-12-01"}, "to_invalid"),
                        ({"from": "2024-01-01", "to": "2026-12-01"}, "period_too_long"),
                        ({"from": "2026-12-01", "to": "2026-12-02", "group": "week"}, "group_invalid"),
                        ({"from": "2026-12-01", "to": "2026-12-02", "format": "xlsx"}, "format_invalid"),
                        ({"from": "2026-12-01%00", "to": "2026-12-02"}, "from_invalid")):
        status, body = await report(sched_stack, owner, **query)
        assert (status, body["error"]["code"]) == (422, code), (query, body)
    r = await sched_stack.call("GET", "/api/reports?from=2026-12-01&to=2026-12-02")
    assert r.status == 401
