"""Working hours, the visitor side (docs/working-hours.md, docs/visitor-protocol.md), on
the in-process stack with the scheduler, real PostgreSQL and Kafka: the schedule is
written through the gateway's PUT /api/project/schedule as the owner.

- widget/config says open/next_open_at, and a schedule edit flips it and an open
  visitor socket (`availability` frame) within 2 s;
- closed: a new visitor's first message (and contacts) are refused with chat_closed
  and nothing is stored; the offline form starts a conversation marked left while
  closed, which the inbox shows and which can be sent to the CRM;
- closed: a conversation that is going carries on both ways; once closed by the
  operator, writing is refused and the offline form starts a new one."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone


from parley.service_client import path

from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OPEN = {"show_any_time": True, "time_zone": "UTC", "week": {}, "dates_off": [], "special_dates": {},
        "unanswered_alert_minutes": None, "idle_close_hours": None}


def closed_now() -> tuple[dict, datetime]:
    """Every day open for one hour starting two hours from now: closed now, and when it opens."""
    start = (datetime.now(timezone.utc) + timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=1)
    week = {d: [[start.strftime("%H:%M"), end.strftime("%H:%M")]] for d in DAYS}
    return {**OPEN, "show_any_time": False, "week": week}, start


def at(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


async def put_schedule(stack, token: str, body: dict) -> None:
    r = await stack.call("PUT", "/api/project/schedule", token, json=body)
    assert r.status == 200, await r.text()


async def widget_config(stack) -> dict:
    r = await stack.gateway.get("/api/widget/config?project=demo")
    assert r.status == 200, await r.text()
    return await r.json()


async def until(condition, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


async def config_open(stack, expected: bool, timeout: float) -> dict:
    async def check():
        config = await widget_config(stack)
        return config if config["open"] is expected else None
    return await until(check, f"widget/config open={expected}", timeout)


def availability(visitor: ScriptedVisitor) -> list[dict]:
    return [f for f in visitor.frames if f["type"] == "availability"]


async def frame(visitor: ScriptedVisitor, predicate, what: str, timeout: float = 15) -> dict:
    async def check():
        return next((f for f in visitor.frames if predicate(f)), None)
    return await until(check, what, timeout)


async def close_hours(stack, owner: str) -> datetime:
    """The chat closed by an edit, seen by the gateway (its live subscriber is in place)."""
    body, opens = closed_now()
    await put_schedule(stack, owner, body)
    config = await config_open(stack, False, 20)
    assert at(config["next_open_at"]) == opens
    return opens


async def test_widget_config_and_open_sockets_follow_schedule_edits_within_two_seconds(hours_stack):
    stack = hours_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    config = await widget_config(stack)
    assert config["open"] is True and config["next_open_at"] is None   # the default: show any time
    assert config["enabled"] is True and "texts" in config

    opens = await close_hours(stack, owner)   # the first edit also shows the gateway is listening
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    first = await frame(visitor, lambda f: f["type"] == "availability", "availability after hello")
    assert first["open"] is False and at(first["next_open_at"]) == opens

    started = time.monotonic()
    await put_schedule(stack, owner, OPEN)
    pushed = await frame(visitor, lambda f: f["type"] == "availability" and f["open"] is True, "open pushed", 2)
    assert pushed["next_open_at"] is None
    await config_open(stack, True, 2 - (time.monotonic() - started))

    body, opens = closed_now()
    started = time.monotonic()
    await put_schedule(stack, owner, body)
    pushed = await frame(visitor, lambda f: f["type"] == "availability" and f is not first and f["open"] is False,
                         "closed pushed", 2)
    assert at(pushed["next_open_at"]) == opens
    config = await config_open(stack, False, 2 - (time.monotonic() - started))
    assert at(config["next_open_at"]) == opens


async def test_closed_a_new_visitor_is_refused_and_the_offline_form_leaves_a_conversation(hours_stack):
    stack = hours_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    opens = await close_hours(stack, owner)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()

    message_id = await visitor.send("Hello, anyone?")
    refused = await frame(visitor, lambda f: f["type"] == "error" and f.get("id") == message_id, "chat_closed")
    assert refused["code"] == "chat_closed" and at(refused["next_open_at"]) == opens
    await visitor.ws.send_json({"type": "contacts", "id": "contacts-1", "name": "Vera", "phone": None, "email": None})
    refused = await frame(visitor, lambda f: f["type"] == "error" and f.get("id") == "contacts-1", "contacts refused")
    assert refused["code"] == "chat_closed"
    # nothing was stored
    found = await stack.conversation_client.checked("GET", path("internal", "visitor", "conversation"),
                                                    params={"project_id": "demo", "visitor_id": visitor.visitor_id})
    assert found["conversation_id"] is None
    inbox = await (await stack.call("GET", "/api/inbox?view=all", owner)).json()
    assert inbox["conversations"] == []

    # the offline form: a phone or an email is required
    await visitor.ws.send_json({"type": "offline_message", "id": "form-0", "name": "Vera", "phone": None,
                                "email": None, "text": "Call me"})
    refused = await frame(visitor, lambda f: f["type"] == "error" and f.get("id") == "form-0", "contact_required")
    assert refused["code"] == "contact_required"

    form = {"type": "offline_message", "id": str(uuid.uuid4()), "name": "Vera Offline", "phone": "8 900 123-45-67",
            "email": None, "text": "Hello, anyone?", "page_url": "https://shop.example/p/1"}
    await visitor.ws.send_json(form)
    saved = await frame(visitor, lambda f: f["type"] == "offline_saved", "offline_saved")
    assert saved["id"] == form["id"] and saved["seq"]
    await visitor.wait_for(lambda: visitor.texts("visitor_message") == ["Hello, anyone?"], "the message as an event")
    await visitor.ws.send_json(form)   # resent (a reconnect): stored once
    await frame(visitor, lambda f: f["type"] == "offline_saved" and f is not saved, "offline_saved again")
    assert [f["conversation_id"] for f in visitor.frames if f["type"] == "offline_saved"] == [saved["conversation_id"]] * 2

    cid = saved["conversation_id"]
    inbox = await (await stack.call("GET", "/api/inbox?view=new", owner)).json()
    [row] = inbox["conversations"]
    assert row["id"] == cid and row["left_while_closed"] is True and row["status"] == "new"
    assert row["visitor_name"] == "Vera Offline" and row["contacts"]["phone"] == "+79001234567"
    assert row["last_message_text"] == "Hello, anyone?"
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", owner)).json()
    assert [e["event"] for e in transcript["events"]] == ["chat.conversation_started", "chat.contacts_given",
                                                          "chat.visitor_message_posted"]
    assert transcript["events"][0]["data"]["left_while_closed"] is True
    # operators answer it like any other, and it goes to the CRM like any other
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
    r = await stack.call("POST", f"/api/conversations/{cid}/lead", owner)
    assert r.status == 200, await r.text()
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": "We'll call you at 9"})
    assert r.status == 200
    await visitor.wait_for(lambda: visitor.texts("operator_message") == ["We'll call you at 9"], "the reply")


async def test_closed_a_conversation_that_is_going_carries_on_and_a_closed_one_leads_to_the_form(hours_stack):
    stack = hours_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Hi, while you are open")
    cid = visitor.conversation_id or (await (await stack.call("GET", "/api/inbox?view=new", owner)).json())[
        "conversations"][0]["id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200

    await close_hours(stack, owner)
    await frame(visitor, lambda f: f["type"] == "availability" and f["open"] is False, "closed pushed")
    await visitor.send_and_wait("Still there after hours?")
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": "Yes, finishing up"})
    assert r.status == 200
    await visitor.wait_for(lambda: "Yes, finishing up" in visitor.texts("operator_message"), "the reply")

    # the operator closes it: writing again would start the next conversation - refused while closed
    r = await stack.call("POST", f"/api/conversations/{cid}/status", owner, json={"status": "closed"})
    assert r.status == 200
    await visitor.wait_for(lambda: "closed" in visitor.kinds(), "closed")
    message_id = await visitor.send("One more thing")
    refused = await frame(visitor, lambda f: f["type"] == "error" and f.get("id") == message_id, "chat_closed")
    assert refused["code"] == "chat_closed"

    # the offline form starts a new conversation; the closed one stays closed
    form = {"type": "offline_message", "id": str(uuid.uuid4()), "name": None, "phone": None,
            "email": "late@example.com", "text": "One more thing"}
    await visitor.ws.send_json(form)
    saved = await frame(visitor, lambda f: f["type"] == "offline_saved", "offline_saved")
    assert saved["conversation_id"] != cid
    inbox = await (await stack.call("GET", "/api/inbox?view=all", owner)).json()
    rows = {r["id"]: r for r in inbox["conversations"]}
    assert rows[cid]["status"] == "closed" and rows[cid]["left_while_closed"] is False
    assert rows[saved["conversation_id"]]["left_while_closed"] is True
    transcript = await (await stack.call("GET", f"/api/conversations/{saved['conversation_id']}", owner)).json()
    assert transcript["events"][0]["data"]["previous_conversation_id"] == cid
    # the visitor's socket follows the new conversation
    await visitor.wait_for(lambda: visitor.texts("visitor_message")[-1:] == ["One more thing"], "the new message")
    found = await stack.conversation_client.checked("GET", path("internal", "visitor", "conversation"),
                                                    params={"project_id": "demo", "visitor_id": visitor.visitor_id})
    assert found["conversation_id"] == saved["conversation_id"]


async def test_the_idle_timer_closes_once_with_its_reason(hours_stack):
    stack = hours_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Hello")
    cid = (await (await stack.call("GET", "/api/inbox?view=new", owner)).json())["conversations"][0]["id"]
    timer_id = str(uuid.uuid4())
    for _ in range(2):   # the timer fired twice: closed once
        answer = await stack.conversation_client.call(
            "POST", path("internal", "conversations", cid, "close-idle"), json={"hours": 24},
            headers={"Idempotency-Key": timer_id})
        assert answer.status == 200, answer.body
    answer = await stack.conversation_client.call(
        "POST", path("internal", "conversations", cid, "close-idle"), json={"hours": 24},
        headers={"Idempotency-Key": str(uuid.uuid4())})
    assert answer.status == 200 and answer.body["closed"] is False   # another timer, already closed: nothing
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", owner)).json()
    closes = [e["data"] for e in transcript["events"] if e["event"] == "status.changed"]
    assert closes == [{"status": "closed", "by_operator_id": None, "reason": "idle", "idle_hours": 24}]
    await visitor.wait_for(lambda: "closed" in visitor.kinds(), "closed shown to the visitor")
