"""A deactivated operator, or one whose password changed, or who logged out elsewhere,
loses access within 5 seconds: REST at once, open WebSockets through operator.events."""
import asyncio
import time

import aiohttp
import pytest

from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

REVOKE_WITHIN = 5.0


async def open_socket(stack, token):
    ws = await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {token}"})
    hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello"
    return ws, hello["operator"]


async def closed_within(ws, seconds: float) -> tuple[float, dict | None, int | None]:
    started = time.monotonic()
    notice = None
    while True:
        msg = await ws.receive(timeout=seconds)
        if msg.type == aiohttp.WSMsgType.TEXT:
            notice = msg.json()
            continue
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return time.monotonic() - started, notice, ws.close_code


@pytest.mark.parametrize("how", ["deactivate", "remove", "password_changed_by_admin", "logout"])
async def test_access_ends_everywhere_within_5_seconds(stack, how):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, token, _ = await stack.add_operator(owner, "Leaving Lena")
    ws, me = await open_socket(stack, token)
    assert me["id"] == operator_id
    bystander_id, bystander, _ = await stack.add_operator(owner, "Staying Stan")
    other_ws, _ = await open_socket(stack, bystander)
    await asyncio.sleep(0.5)  # let the gateway's live subscriber settle at the topic's end

    action = {
        "deactivate": ("POST", f"/api/operators/{operator_id}/deactivate", owner, {}),
        "remove": ("DELETE", f"/api/operators/{operator_id}", owner, {}),
        "password_changed_by_admin": ("PATCH", f"/api/operators/{operator_id}", owner,
                                      {"json": {"password": "brand-new-pass-1"}}),
        "logout": ("DELETE", "/api/session", token, {}),
    }[how]
    r = await stack.call(action[0], action[1], action[2], **action[3])
    assert r.status in (200, 204), await r.text()

    assert (await stack.call("GET", "/api/session", token)).status == 401  # REST: at once
    seconds, notice, code = await asyncio.wait_for(closed_within(ws, REVOKE_WITHIN), REVOKE_WITHIN)
    assert code == 4401 and notice == {"type": "session_revoked", "reason": notice["reason"]}
    assert seconds < REVOKE_WITHIN
    # the bystander's socket and session are untouched
    assert not other_ws.closed
    assert (await stack.call("GET", "/api/session", bystander)).status == 200
    await other_ws.close()
    # and a new socket with the dead token is refused before upgrading
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {token}"})
    assert refused.value.status == 401


async def test_changing_your_own_password_keeps_this_session_and_ends_the_others(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, laptop, email = await stack.add_operator(owner, "Two Devices")
    phone = await stack.login(email, "operator-pass-1")
    phone_ws, _ = await open_socket(stack, phone)
    await asyncio.sleep(0.5)
    r = await stack.call("PATCH", f"/api/operators/{operator_id}", laptop,
                         json={"password": "changed-pass-99", "current_password": "operator-pass-1"})
    assert r.status == 200
    _, _, code = await asyncio.wait_for(closed_within(phone_ws, REVOKE_WITHIN), REVOKE_WITHIN)
    assert code == 4401
    assert (await stack.call("GET", "/api/session", laptop)).status == 200
    assert (await stack.call("GET", "/api/session", phone)).status == 401
    await stack.login(email, "changed-pass-99")


async def test_a_deactivated_operator_cannot_log_in_until_reactivated(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, _, email = await stack.add_operator(owner, "Paused Pat")
    await stack.call("POST", f"/api/operators/{operator_id}/deactivate", owner)
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": email, "password": "operator-pass-1"})
    assert r.status == 401
    await stack.call("POST", f"/api/operators/{operator_id}/reactivate", owner)
    await stack.login(email, "operator-pass-1")


async def test_websocket_from_a_foreign_origin_is_refused(stack):
    token = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"})
    assert refused.value.status == 403


async def test_a_demoted_admin_stops_receiving_others_conversations_at_once(stack):
    """Issue 23, finding 2: `operator.role_changed` did not reach open sockets, so a
    demoted admin's socket went on receiving replies in other operators' conversations."""
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    admin_id, admin, _ = await stack.add_operator(owner, "Demoted Dora", admin=True)
    _, busy, _ = await stack.add_operator(owner, "Busy Boris")
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Hello")
    cid = (await (await stack.call("GET", "/api/inbox?view=new", owner)).json())["conversations"][0]["id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", busy)).status == 200
    ws, me = await open_socket(stack, admin)
    assert me["is_admin"] is True
    await asyncio.sleep(0.5)

    async def texts_until(ws, text: str, seconds: float) -> list[str]:
        seen = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = await ws.receive(timeout=deadline - time.monotonic())
            except asyncio.TimeoutError:
                return seen
            if msg.type != aiohttp.WSMsgType.TEXT:
                return seen + [f"closed {ws.close_code}"]
            frame = msg.json()
            data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
            seen.append(data.get("text") or frame["type"])
            if text in seen:
                return seen
        return seen

    r = await stack.call("POST", f"/api/conversations/{cid}/messages", busy, json={"text": "before the demotion"})
    assert r.status == 200
    assert "before the demotion" in await texts_until(ws, "before the demotion", 10)

    r = await stack.call("PATCH", f"/api/operators/{admin_id}", owner, json={"is_admin": False})
    assert r.status == 200, await r.text()
    seen = await texts_until(ws, "closed", REVOKE_WITHIN)
    assert seen[-2:] == ["role_changed", "closed 4403"], seen
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", busy, json={"text": "after the demotion"})
    assert r.status == 200
    # The app reconnects as the operator it now is: not an admin, and Boris's conversation stays his.
    ws, me = await open_socket(stack, admin)
    assert me["is_admin"] is False
    await asyncio.sleep(0.5)
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", busy, json={"text": "after the reconnect"})
    assert r.status == 200
    seen = await texts_until(ws, "after the reconnect", 3)
    assert "after the reconnect" not in seen and "after the demotion" not in seen, seen
    assert (await stack.call("GET", f"/api/conversations/{cid}", admin)).status == 404
    await ws.close()
    await visitor.drop()
