"""Issue 24, items 2 and 3: visitors on the site now, across gateways, and an operator's
invitation that a visitor answers.

The visitor's widget is on gateway A, the operator on gateway B (two replicas of one
installation, as behind a balancer): B lists the visitor with their pages, follows them
live, and its operator's invitation reaches the widget on A; the answer starts a
conversation that is the inviting operator's, with the invitation as its first message."""
from __future__ import annotations

import uuid

from parley.service_client import path

from gateway.live import site_visitors
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import AppSocket, eventually
from tests.visitor import ScriptedVisitor
from tests.visitors.conftest import REFRESH_SECONDS

SHOP = "https://shop.example"


def page(n: int, **extra) -> dict:
    return {"type": "page", "url": f"{SHOP}/p/{n}", "title": f"Chair {n}", "referrer": "https://search.example/q",
            "landing_url": f"{SHOP}/p/1?utm_source=newsletter&utm_campaign=spring", "started_at": 1, "pages_seen": n,
            "pages": [{"url": f"{SHOP}/p/{k}", "title": f"Chair {k}", "at": 1} for k in range(n, 0, -1)], **extra}


async def live_on(gateway, token: str) -> dict:
    gateway.session.cookie_jar.clear()
    r = await gateway.get("/api/visitors/live", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200, await r.text()
    return {v["visitor_id"]: v for v in (await r.json())["visitors"]}


async def invite(gateway, token: str, visitor_id: str, text) -> tuple[int, dict]:
    gateway.session.cookie_jar.clear()
    r = await gateway.post(f"/api/visitors/{visitor_id}/invite", json={"text": text},
                           headers={"Authorization": f"Bearer {token}"})
    return r.status, await r.json()


async def test_a_visitor_browsing_on_one_gateway_is_seen_invited_and_answers_through_another(stack, gateway_b):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    app = await AppSocket.open(gateway_b, owner)
    await app.ws.send_json({"type": "watch_visitors", "on": True})
    visitor = ScriptedVisitor(stack.gateway)                    # the widget, on gateway A
    await visitor.start()
    for n in (1, 2, 3):
        await visitor.ws.send_json(page(n))

    async def seen_on_b():
        return (await live_on(gateway_b, owner)).get(visitor.visitor_id, {}).get("url") == f"{SHOP}/p/3"
    await eventually(seen_on_b, timeout=15, what="the visitor's third page, listed on gateway B")
    visit = (await live_on(gateway_b, owner))[visitor.visitor_id]
    assert visit["title"] == "Chair 3" and visit["pages_seen"] == 3 and len(visit["pages"]) == 3
    assert visit["utm"] == {"utm_source": "newsletter", "utm_campaign": "spring"}
    assert visit["referrer"] == "https://search.example/q" and visit["chatting"] is False
    assert visit["started_at"] > 1   # a visit never says it started before a day ago
    await eventually(lambda: any(v["visitor_id"] == visitor.visitor_id and v["url"] == f"{SHOP}/p/3"
                                 for f in app.of_type("visitors") for v in f["seen"]),
                     timeout=10, what="the change pushed to the watching app on B")

    # The params the page sets show too, before any message.
    await visitor.ws.send_json({"type": "params", "params": {"office": "Riga", "plan": 3}})
    await eventually(lambda: site_visitors.table(gateway_b.app).known[visitor.visitor_id].visit["params"]
                     == {"office": "Riga", "plan": "3"}, timeout=10, what="params on B")

    # The invitation, sent on B, opens the widget on A ...
    status, body = await invite(gateway_b, owner, visitor.visitor_id, "  Hello! The red chair is on sale today. ")
    assert status == 202, body
    invitation_id = body["invitation"]["id"]
    await visitor.wait_for(lambda: any(f.get("type") == "invitation" for f in visitor.frames), "the invitation")
    shown = next(f for f in visitor.frames if f.get("type") == "invitation")
    assert shown["text"] == "Hello! The red chair is on sale today." and shown["operator"]["name"]
    # ... and again on the next page (a new socket), until answered.
    await visitor.drop()
    visitor.view.frames.clear()
    await visitor.connect()
    await visitor.ws.send_json({"type": "params", "params": {"office": "Riga", "plan": 3}})   # as the widget does
    await visitor.wait_for(lambda: any(f.get("type") == "invitation" and f["id"] == invitation_id
                                       for f in visitor.frames), "the invitation on the next page")

    # The answer starts a conversation that is the owner's, the invitation first.
    await visitor.send_and_wait("Is it in stock in Riga?")
    cid = visitor.conversation_id
    events = (await stack.conversation_client.checked("GET", path("internal", "conversations", cid, "events")))["events"]
    kinds = [e["type"] for e in events]
    assert kinds == ["chat.conversation_started", "chat.custom_params_set", "assignment.taken", "status.changed",
                     "chat.operator_replied", "chat.visitor_message_posted"], kinds
    reply = events[4]["data"]
    assert reply["message_id"] == invitation_id and reply["text"] == "Hello! The red chair is on sale today."
    assert events[2]["data"]["operator_id"] == reply["operator_id"]
    await visitor.wait_for(lambda: [e["kind"] for e in visitor.events][-2:] == ["operator_message", "visitor_message"],
                           "the invitation and the answer in the widget")
    assert visitor.texts("operator_message") == ["Hello! The red chair is on sale today."]
    r = await stack.call("GET", f"/api/conversations/{cid}", owner)
    conversation = await r.json()
    assert conversation["conversation"]["status"] == "in_work" and conversation["conversation"]["assignee_name"]

    # Chatting now, and no longer invited: a second invitation is refused.
    async def chatting_on_b():
        visit = (await live_on(gateway_b, owner)).get(visitor.visitor_id, {})
        return visit.get("chatting") is True and visit.get("invitation") is None and visit["conversation_id"] == cid
    await eventually(chatting_on_b, timeout=15, what="chatting, without the invitation, on B")
    status, body = await invite(gateway_b, owner, visitor.visitor_id, "Anything else?")
    assert (status, body["error"]["code"]) == (409, "visitor_chatting")

    # Closed by the operator: browsing again.
    r = await stack.call("POST", f"/api/conversations/{cid}/status", owner, json={"status": "closed"})
    assert r.status == 200, await r.text()

    async def browsing_on_b():
        return (await live_on(gateway_b, owner)).get(visitor.visitor_id, {}).get("chatting") is False
    await eventually(browsing_on_b, timeout=15, what="not chatting once closed")

    # The visitor leaves: gone from B's list within the grace, and the watching app is told.
    await visitor.drop()

    async def gone_on_b():
        return visitor.visitor_id not in await live_on(gateway_b, owner)
    await eventually(gone_on_b, timeout=REFRESH_SECONDS * 4 + 5, what="the visitor gone from B's list")
    await eventually(lambda: any(visitor.visitor_id in f["left"] for f in app.of_type("visitors")), timeout=5,
                     what="the departure pushed to the watching app")
    await app.close()


async def test_another_projects_operators_neither_see_nor_invite_and_bad_invitations_are_refused(stack, gateway_b):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    project = f"p{uuid.uuid4().hex[:10]}"
    await stack.create_project(project, f"owner-{project}@example.com", "owner-pass-123")
    stranger = await stack.login(f"owner-{project}@example.com", "owner-pass-123", project)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    # Hostile page frames: NUL bytes, a 5,000-character URL, wrong types - cleaned, never an error.
    await visitor.ws.send_json(page(1, title="Chair\x00\x01 one", url=f"{SHOP}/p/1?" + "a" * 5000))
    await visitor.ws.send_json({"type": "page", "url": 7, "pages": "all", "pages_seen": -4, "started_at": "x"})
    await visitor.ws.send_json({"type": "page", "url": f"{SHOP}/p/2", "title": "Chair 2"})

    async def listed():
        return (await live_on(gateway_b, owner)).get(visitor.visitor_id, {}).get("url") == f"{SHOP}/p/2"
    await eventually(listed, timeout=15, what="the visitor listed")
    assert visitor.errors == []
    # A flood of pages: past 60 a minute they are dropped (quietly: a page is the site's business).
    for n in range(3, 80):
        await visitor.ws.send_json({"type": "page", "url": f"{SHOP}/p/{n}"})

    async def last_allowed():   # the 60th frame of the minute, the three above counted: page 59
        return (await live_on(gateway_b, owner))[visitor.visitor_id]["url"] == f"{SHOP}/p/59"
    await eventually(last_allowed, timeout=15, what="the 60th page frame of the minute, and no later one")
    assert visitor.errors == []
    assert visitor.visitor_id not in await live_on(gateway_b, stranger)
    assert visitor.visitor_id not in await live_on(stack.gateway, stranger)

    status, body = await invite(gateway_b, stranger, visitor.visitor_id, "Hi from elsewhere")
    assert (status, body["error"]["code"]) == (404, "visitor_not_here")
    for text, code in (("", "text_required"), ("   ", "text_required"), (42, "text_required"),
                       ("x" * 1001, "text_too_long")):
        status, body = await invite(gateway_b, owner, visitor.visitor_id, text)
        assert (status, body["error"]["code"]) == (422, code), body
    for visitor_id in ("%2e%2e%2f%2e%2e%2fetc", "nobody", "x" * 300):
        status, body = await invite(gateway_b, owner, visitor_id, "Hello")
        assert (status, body["error"]["code"]) == (404, "visitor_not_here"), body
    gateway_b.session.cookie_jar.clear()
    r = await gateway_b.post(f"/api/visitors/{visitor.visitor_id}/invite", json={"text": "Hello"})
    assert r.status == 401
    r = await gateway_b.get("/api/visitors/live")
    assert r.status == 401
    assert not any(f.get("type") == "invitation" for f in visitor.frames)   # nothing refused reached the widget
    await visitor.drop()


async def test_a_silent_gateways_visitors_go_after_three_refreshes(stack, gateway_b):
    """A gateway that dies says nothing more: the others drop its visitors after three
    refresh periods without word (here B stops flushing as if killed)."""
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    live_a, live_b = site_visitors.table(stack.gateway.app), site_visitors.table(gateway_b.app)
    visitor = ScriptedVisitor(gateway_b)
    await visitor.start()
    await visitor.ws.send_json(page(1))

    async def on_a():
        return visitor.visitor_id in await live_on(stack.gateway, owner)
    await eventually(on_a, timeout=15, what="B's visitor known on A")
    assert live_a.known[visitor.visitor_id].gateway == live_b.gateway
    live_b.gateway = "silenced"   # B's signals now look like another gateway's ... and A hears none of the old one
    live_b.here.pop(visitor.visitor_id)

    async def gone_from_a():
        return visitor.visitor_id not in await live_on(stack.gateway, owner)
    await eventually(gone_from_a, timeout=REFRESH_SECONDS * 6 + 5, what="the silent gateway's visitor dropped on A")
    await visitor.drop()
