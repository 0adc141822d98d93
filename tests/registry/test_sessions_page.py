"""Issue 23: the sessions page's API through the gateway. An operator sees their sessions
(device, address, opened, last seen) and ends one or all others - their open sockets
close at once; the owner sees and ends anyone's; nobody else does."""
from __future__ import annotations

from tests.registry.test_revocation import REVOKE_WITHIN, closed_within, open_socket
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

PASSWORD = "operator-pass-1"


async def login_from(stack, email: str, device: str, address: str) -> str:
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": email, "password": PASSWORD},
                                 headers={"User-Agent": device, "X-Forwarded-For": address})
    assert r.status == 201, await r.text()
    return (await r.json())["token"]


async def test_see_and_end_my_sessions_and_the_owner_ends_anyones(stack, monkeypatch):
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", "1")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, _, email = await stack.add_operator(owner, "Many Devices")
    laptop = await login_from(stack, email, "Mozilla/5.0 (X11; Linux x86_64) Chrome/131", "203.0.113.5")
    phone = await login_from(stack, email, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari", "198.51.100.7")
    tablet = await login_from(stack, email, "Mozilla/5.0 (iPad) Safari", "198.51.100.8")

    r = await stack.call("GET", "/api/me/sessions", laptop)
    assert r.status == 200, await r.text()
    sessions = (await r.json())["sessions"]
    by_device = {s["user_agent"]: s for s in sessions}
    assert by_device["Mozilla/5.0 (X11; Linux x86_64) Chrome/131"]["current"] is True
    assert by_device["Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari"]["address"] == "198.51.100.7"
    assert all(s["created_at"] and s["last_used_at"] for s in sessions)

    # End the phone: its REST and its open socket end at once; the laptop goes on.
    phone_socket, _ = await open_socket(stack, phone)
    phone_id = by_device["Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari"]["id"]
    r = await stack.call("DELETE", f"/api/me/sessions/{phone_id}", laptop)
    assert r.status == 204, await r.text()
    assert (await stack.call("GET", "/api/session", phone)).status == 401
    seconds, _, code = await closed_within(phone_socket, REVOKE_WITHIN)
    assert code == 4401
    assert (await stack.call("GET", "/api/session", laptop)).status == 200
    r = await stack.call("DELETE", f"/api/me/sessions/{phone_id}", laptop)
    assert r.status == 404                                   # already ended

    # Another operator may neither see nor end them; the owner may.
    _, other, _ = await stack.add_operator(owner, "Nosy Neighbour")
    r = await stack.call("GET", f"/api/operators/{operator_id}/sessions", other)
    assert r.status == 403
    r = await stack.call("DELETE", f"/api/me/sessions/{by_device['Mozilla/5.0 (iPad) Safari']['id']}", other)
    assert r.status == 404                                   # not one of theirs
    r = await stack.call("GET", f"/api/operators/{operator_id}/sessions", owner)
    devices = {s["user_agent"] for s in (await r.json())["sessions"]}
    assert {"Mozilla/5.0 (X11; Linux x86_64) Chrome/131", "Mozilla/5.0 (iPad) Safari"} <= devices
    assert "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari" not in devices
    tablet_id = by_device["Mozilla/5.0 (iPad) Safari"]["id"]
    r = await stack.call("DELETE", f"/api/operators/{operator_id}/sessions/{tablet_id}", owner)
    assert r.status == 204
    assert (await stack.call("GET", "/api/session", tablet)).status == 401

    # All others: only this one stays.
    again = await login_from(stack, email, "Firefox", "203.0.113.9")
    r = await stack.call("POST", "/api/me/sessions/end-others", again, json={})
    assert r.status == 200 and (await r.json())["ended"] == 2   # the laptop, and add_operator's own login
    assert (await stack.call("GET", "/api/session", laptop)).status == 401
    mine = (await (await stack.call("GET", "/api/me/sessions", again)).json())["sessions"]
    assert [(s["user_agent"], s["current"]) for s in mine] == [("Firefox", True)]


async def test_session_ids_are_checked_before_anything_is_sent(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    for path in ("/api/me/sessions/..%2F..%2Foperators", "/api/me/sessions/not-a-uuid"):
        r = await stack.call("DELETE", path, owner)
        assert r.status == 404, path
