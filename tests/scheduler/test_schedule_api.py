"""The schedule API: admins only (gateway and scheduler), 422 codes naming the field,
the normalised body, the default for a project that never saved one, and the events an
edit appends (schedule.updated + schedule.availability_changed reason edit, one
transaction; the same body again appends nothing)."""
from __future__ import annotations

import uuid

from parley.service_client import path

from tests.stack import admin_headers
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

DEFAULT = {"show_any_time": True, "time_zone": "UTC", "week": {}, "dates_off": [], "special_dates": {},
           "unanswered_alert_minutes": 5, "idle_close_hours": 24}
BODY = {"show_any_time": False, "time_zone": "Europe/Moscow",
        "week": {"tue": [["14:00", "18:00"], ["09:00", "13:00"]], "mon": [["09:00", "18:00"]],
                 "sat": [["22:00", "02:00"]], "sun": []},
        "dates_off": ["2026-12-31"], "special_dates": {"2026-12-30": [["10:00", "15:00"]]},
        "unanswered_alert_minutes": 5, "idle_close_hours": 24}


async def test_admins_read_and_write_the_schedule_through_the_gateway(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("GET", "/api/project/schedule", owner)
    assert r.status == 200, await r.text()
    assert await r.json() == DEFAULT

    r = await stack.call("PUT", "/api/project/schedule", owner, json=BODY)
    assert r.status == 200, await r.text()
    saved = await r.json()
    assert saved["week"]["tue"] == [["09:00", "13:00"], ["14:00", "18:00"]]      # normalised: sorted
    assert list(saved["week"]) == ["mon", "tue", "sat", "sun"]
    r = await stack.call("GET", "/api/project/schedule", owner)
    assert await r.json() == saved

    # The gateway's own look-up of any project's schedule (signed calls only).
    r = await scheduler.signed.call("GET", path("internal", "schedules", "demo"))
    assert r.status == 200 and r.body == saved
    r = await scheduler.signed.call("GET", path("internal", "schedules", "never-saved"))
    assert r.status == 200 and r.body == DEFAULT
    r = await scheduler.clients[0].get("/internal/schedules/demo")
    assert r.status == 401

    updated = await scheduler.events("schedule.updated")
    changed = await scheduler.events("schedule.availability_changed")
    assert [e["stream_id"] for e in updated] == ["schedule-demo"]
    assert updated[0]["data"] == {"project_id": "demo", "schedule": saved}
    assert len(changed) == 1 and changed[0]["data"]["reason"] == "edit"
    assert changed[0]["position"] > updated[0]["position"]
    assert set(changed[0]["data"]) == {"project_id", "open", "next_open_at", "reason"}
    if changed[0]["data"]["open"]:
        assert changed[0]["data"]["next_open_at"] is None
    else:
        assert changed[0]["data"]["next_open_at"] is not None

    # The same schedule again changes nothing and appends nothing.
    r = await stack.call("PUT", "/api/project/schedule", owner, json=BODY)
    assert r.status == 200 and await r.json() == saved
    assert len(await scheduler.events()) == 2

    # Back to show any time: open, and said so.
    r = await stack.call("PUT", "/api/project/schedule", owner, json={**BODY, "show_any_time": True})
    assert r.status == 200
    changed = await scheduler.events("schedule.availability_changed")
    assert changed[-1]["data"] == {"project_id": "demo", "open": True, "next_open_at": None, "reason": "edit"}


async def test_only_admins(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await stack.add_operator(owner, "Plain Operator")
    for method, kwargs in (("GET", {}), ("PUT", {"json": BODY})):
        r = await stack.call(method, "/api/project/schedule", operator, **kwargs)
        assert r.status == 403, await r.text()
        assert (await r.json())["error"]["code"] == "admin_only"
        r = await stack.call(method, "/api/project/schedule", None, **kwargs)
        assert r.status == 401
    # The scheduler checks again, whatever reaches it.
    r = await scheduler.signed.call("PUT", path("api", "project", "schedule"), json=BODY,
                                    headers=admin_headers(admin=False))
    assert r.status == 403 and r.body["error"]["code"] == "admin_only"
    r = await scheduler.signed.call("GET", path("api", "project", "schedule"))
    assert r.status == 401
    assert await scheduler.events() == []


async def test_bad_schedules_are_refused_naming_the_field(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    cases = [
        ({**BODY, "time_zone": "Mars/Base"}, "time_zone_invalid", "Mars/Base"),
        ({**BODY, "week": {"tue": [["09:00", "14:00"], ["13:30", "14:30"]]}}, "week_invalid", "week.tue"),
        ({**BODY, "week": {"mon": [["9:00", "18:00"]]}}, "week_invalid", "week.mon[0]"),
        ({**BODY, "week": {"funday": []}}, "week_invalid", "week"),
        ({**BODY, "dates_off": ["2026-02-30"]}, "dates_off_invalid", "dates_off[0]"),
        ({**BODY, "special_dates": {"2026-12-30": [["25:00", "26:00"]]}}, "special_dates_invalid", "special_dates"),
        ({**BODY, "unanswered_alert_minutes": 0}, "unanswered_alert_minutes_invalid", "unanswered_alert_minutes"),
        ({**BODY, "idle_close_hours": "24"}, "idle_close_hours_invalid", "idle_close_hours"),
        ({**BODY, "show_any_time": "yes"}, "show_any_time_invalid", "show_any_time"),
        ({**BODY, "colour": "red"}, "field_unknown", "colour"),
    ]
    for body, code, mentioned in cases:
        r = await stack.call("PUT", "/api/project/schedule", owner, json=body)
        assert r.status == 422, (code, await r.text())
        error = (await r.json())["error"]
        assert error["code"] == code and mentioned in error["message"], (code, error)
    r = await stack.call("PUT", "/api/project/schedule", owner, data=b"[1,", headers={"Content-Type": "application/json"})
    assert r.status in (400, 422)
    assert await scheduler.events() == []
    r = await stack.call("GET", "/api/project/schedule", owner)
    assert await r.json() == DEFAULT


async def test_a_retried_edit_returns_the_first_answer(scheduler):
    key = {"Idempotency-Key": f"edit-{uuid.uuid4()}"}
    headers = {**admin_headers(), **key}
    first = await scheduler.signed.call("PUT", path("api", "project", "schedule"), json=BODY, headers=headers)
    assert first.status == 200
    again = await scheduler.signed.call("PUT", path("api", "project", "schedule"),
                                        json={**BODY, "time_zone": "Europe/Berlin"}, headers=headers)
    assert again.status == 200 and again.body == first.body
    assert len(await scheduler.events()) == 2
