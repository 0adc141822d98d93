"""Issue 8, item 6: rotated session tokens reach the client on every path.

Before, `/internal/sessions/verify` rotated a token that was due and the gateway threw
the new one away: the inbox, the conversation routes and `/ws/operator` all verified
that way, so the operator kept the old token and lost the session when its grace ran
out - a day after logging in. Here tokens rotate every 60 s with a 90 s grace: a cookie
client, a bearer client and the operator socket each stay logged in across several
rotations, and every rotation comes back (Set-Cookie and X-Parley-Session on REST; the
cookie on the socket's upgrade response and a `session_rotated` message on it).

Time passes by `Stack.elapse_sessions`, which moves the registry's session clocks back
instead of sleeping: the rules under test compare those columns with now(), and the
suite stays fast."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.edge.conftest import bearer, cookie_login, cookie_of
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

ROTATE_SECONDS, GRACE_SECONDS = 60, 90
DUE = ROTATE_SECONDS + 0.6       # a wait after which the token is certainly due for rotation
PAST_GRACE = GRACE_SECONDS + 0.8  # a wait after which a rotated-out token is certainly dead


@pytest.fixture
def fast_rotation(monkeypatch):
    """Call it once the test's people exist: from then on tokens rotate every minute.
    (operator_registry.accounts reads both settings on every use.)"""
    def start() -> None:
        monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", str(ROTATE_SECONDS))
        monkeypatch.setenv("PARLEY_SESSION_ROTATION_GRACE_SECONDS", str(GRACE_SECONDS))
    return start


def set_cookie_tokens(response) -> list[str]:
    return [c.split(";", 1)[0].split("=", 1)[1] for c in response.headers.getall("Set-Cookie", [])
            if c.startswith("parley_session=")]


async def dead(stack, token: str) -> bool:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(stack.gateway.make_url("/api/session"), headers=bearer(token)) as r:
            return r.status == 401


async def test_a_cookie_session_stays_valid_across_rotations(stack, cast, fast_rotation, browser_client):
    upload = await stack.call("POST", f"/api/conversations/{cast.cid}/attachments", cast.b, data=b"%PDF-1.4 x")
    file_url = (await upload.json())["url"]
    fast_rotation()
    browser = await browser_client()
    await cookie_login(browser, cast.b_email, cast.password)
    tokens = [cookie_of(browser)]
    requests = [
        lambda: browser.get("/api/inbox", params={"view": "mine"}),
        lambda: browser.get(f"/api/conversations/{cast.cid}"),
        lambda: browser.post(f"/api/conversations/{cast.cid}/messages", json={"text": "still here"}),
        lambda: browser.get("/api/session"),
        lambda: browser.get(file_url),
        lambda: browser.post(f"/api/conversations/{cast.cid}/attachments", data=b"%PDF-1.4 y",
                             headers={"Content-Type": "application/octet-stream"}),
        lambda: browser.get("/api/templates"),
    ]
    for i, request in enumerate(requests):
        await stack.elapse_sessions(PAST_GRACE if i % 2 else DUE)
        r = await request()
        assert r.status in (200, 201), f"request {i}: {r.status} {await r.text()}"
        # The token was due: the response rotated it, and carried the new one back.
        fresh = set_cookie_tokens(r)
        assert fresh and fresh[-1] != tokens[-1], f"request {i} ({r.url.path}) did not set the rotated cookie"
        assert r.headers["X-Parley-Session"] == fresh[-1]
        assert cookie_of(browser) == fresh[-1]
        assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Lax" in r.headers["Set-Cookie"]
        tokens.append(fresh[-1])
        # A second request right away works with the new cookie.
        r = await browser.get("/api/session")
        assert r.status == 200 and (await r.json())["id"] == cast.b_id
        if set_cookie_tokens(r):
            tokens.append(cookie_of(browser))
    assert len(set(tokens)) >= len(requests) + 1
    # The rotation is real: a token rotated out more than the grace ago no longer works.
    assert await dead(stack, tokens[0])


async def test_a_bearer_client_follows_x_parley_session(stack, cast, fast_rotation, bearer_client):
    fast_rotation()
    r = await bearer_client.post("/api/session", json={"project": "demo", "email": cast.b_email,
                                                       "password": cast.password})
    token = first = (await r.json())["token"]
    seen = [token]
    paths = ["/api/inbox", f"/api/conversations/{cast.cid}", "/api/session", "/api/inbox?view=mine", "/api/templates"]
    for i, path_ in enumerate(paths):
        await stack.elapse_sessions(PAST_GRACE if i % 2 else DUE)
        r = await bearer_client.get(path_, headers=bearer(token))
        assert r.status == 200, f"{path_}: {r.status} {await r.text()}"
        assert "Set-Cookie" not in r.headers  # a bearer client gets no cookie
        assert r.headers.get("X-Parley-Session") not in (None, token), f"{path_}: no rotated token"
        token = r.headers["X-Parley-Session"]
        seen.append(token)
    r = await bearer_client.post(f"/api/conversations/{cast.cid}/messages", json={"text": "bearer still here"},
                                 headers=bearer(token))
    assert r.status == 200, await r.text()
    assert len(set(seen)) == len(paths) + 1
    assert await dead(stack, first)


async def test_the_operator_socket_hands_the_rotated_token_back(stack, cast, fast_rotation, browser_client):
    fast_rotation()
    browser = await browser_client()
    await cookie_login(browser, cast.b_email, cast.password)
    first = cookie_of(browser)
    for round_ in range(3):
        before = cookie_of(browser)
        await stack.elapse_sessions(DUE)
        ws = await browser.ws_connect("/ws/operator")
        try:
            rotated = set_cookie_tokens(ws._response)  # the upgrade response itself
            assert rotated and rotated[-1] != before, f"round {round_}: the upgrade did not set the rotated cookie"
            assert cookie_of(browser) == rotated[-1]
            messages = [await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)]
            assert messages[0]["type"] == "hello" and messages[0]["operator"]["id"] == cast.b_id
            assert messages[1] == {"type": "session_rotated", "token": rotated[-1]}
            # Past the grace of the token the socket was opened with, REST still works with the cookie.
            await stack.elapse_sessions(PAST_GRACE)
            r = await browser.get("/api/inbox", params={"view": "mine"})
            assert r.status == 200, await r.text()
            assert not ws.closed
        finally:
            await ws.close()
    assert await dead(stack, first)


async def test_a_socket_client_with_a_token_follows_session_rotated(stack, cast, fast_rotation, bearer_client):
    """Clients without the cookie send their token in the Authorization header (never the
    URL, which proxies log); the new one comes as a message."""
    fast_rotation()
    r = await bearer_client.post("/api/session", json={"project": "demo", "email": cast.b_email,
                                                       "password": cast.password})
    token = first = (await r.json())["token"]
    for _ in range(3):
        await stack.elapse_sessions(PAST_GRACE)
        ws = await bearer_client.ws_connect("/ws/operator", headers=bearer(token))
        try:
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            rotated = await ws.receive_json(timeout=10)
            assert rotated["type"] == "session_rotated" and rotated["token"] != token
            token = rotated["token"]
        finally:
            await ws.close()
    r = await bearer_client.get("/api/session", headers=bearer(token))
    assert r.status == 200
    assert await dead(stack, first)


async def test_a_refusal_still_carries_the_rotated_token(stack, cast, fast_rotation, browser_client):
    """The token may rotate on a request that is then refused (a conversation or a file the
    operator may not see): the refusal must carry it too, or the client is logged out."""
    upload = await stack.call("POST", f"/api/conversations/{cast.cid}/attachments", cast.b, data=b"%PDF-1.4 x")
    b_file = (await upload.json())["url"]
    fast_rotation()
    browser = await browser_client()
    await cookie_login(browser, cast.a_email, cast.password)
    first = cookie_of(browser)
    for path_ in (f"/api/conversations/{cast.cid}", b_file, f"/api/conversations/{cast.cid}/notes"):
        before = cookie_of(browser)
        await stack.elapse_sessions(PAST_GRACE)
        if path_.endswith("/notes"):
            r = await browser.post(path_, json={"text": "not mine"})
        else:
            r = await browser.get(path_)
        assert r.status in (403, 404), f"{path_}: {r.status}"
        assert r.headers["Content-Type"].startswith("application/json")
        fresh = set_cookie_tokens(r)
        assert fresh and fresh[-1] != before, f"{path_}: the refusal did not carry the rotated cookie"
        r = await browser.get("/api/session")
        assert r.status == 200 and (await r.json())["id"] == cast.a_id
    assert await dead(stack, first)


async def test_rotations_on_calls_behind_a_route_reach_the_client(stack, cast, fast_rotation, browser_client):
    """Routes that call the registry with the operator's token themselves (the avatar
    upload asks whether the caller may set it; an admin's assignment looks the assignee
    up): a token rotated on such a call reaches the client too."""
    from tests.registry.images import png
    picture = png(300)
    admin_id, _, admin_email = await stack.add_operator(cast.owner, "Ada Admin", admin=True)
    fast_rotation()
    boris, ada = await browser_client(), await browser_client()
    await cookie_login(boris, cast.b_email, cast.password)
    await cookie_login(ada, admin_email, cast.password)
    for round_ in range(2):
        for client, request in ((boris, lambda: boris.put(f"/api/operators/{cast.b_id}/avatar", data=picture,
                                                          headers={"Content-Type": "application/octet-stream"})),
                                (ada, lambda: ada.post(f"/api/conversations/{cast.cid}/assign",
                                                       json={"operator_id": cast.b_id}))):
            before = cookie_of(client)
            await stack.elapse_sessions(PAST_GRACE)
            r = await request()
            assert r.status == 200, await r.text()
            assert cookie_of(client) != before, f"{r.url.path}: the rotated token did not come back"
            await stack.elapse_sessions(PAST_GRACE)
            r = await client.get("/api/session")
            assert r.status == 200, f"{r.url.path}: logged out after a rotation ({await r.text()})"


async def test_logging_in_again_over_an_older_session_gives_the_new_one(stack, cast, fast_rotation, browser_client):
    """A browser that still holds a session (due for rotation) logs in as someone else:
    the cookie it gets is the new login's, never the old session's rotated token."""
    fast_rotation()
    browser = await browser_client()
    await cookie_login(browser, cast.a_email, cast.password)
    await stack.elapse_sessions(ROTATE_SECONDS + 0.6)
    me = (await cookie_login(browser, cast.b_email, cast.password))["operator"]
    assert me["id"] == cast.b_id
    r = await browser.get("/api/session")
    assert r.status == 200 and (await r.json())["id"] == cast.b_id


async def test_an_operator_socket_is_judged_by_its_session_not_its_first_token(stack, fast_rotation):
    """The socket keeps the token it connected with, which rotates away on REST calls;
    an access event elsewhere (another session of the same operator logging out) must not
    close it, and the end of its own session must."""
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, first, email = await stack.add_operator(owner, "Sofia Socket")
    second = await stack.login(email, "operator-pass-1")
    fast_rotation()
    stack.gateway.session.cookie_jar.clear()  # the socket is the first session's, by its token alone
    ws = await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {first}"})
    hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello" and hello["operator"]["session_id"] == first.split(".")[0]

    await stack.elapse_sessions(DUE)
    rotated = await stack.call("GET", "/api/inbox?view=mine", first)
    current = rotated.headers["X-Parley-Session"]
    await stack.elapse_sessions(PAST_GRACE)
    assert await dead(stack, first), "the socket's own token has rotated away"

    assert (await stack.call("DELETE", "/api/session", second)).status == 204  # operator.logged_out
    # Presence frames (who is online) may come and go meanwhile; nothing else may.
    deadline = asyncio.get_running_loop().time() + 4
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            unexpected = await next_frame(ws, timeout=left)
        except asyncio.TimeoutError:
            break
        raise AssertionError(f"the socket's session still stands, yet it got {unexpected}")
    assert not ws.closed

    assert (await stack.call("DELETE", "/api/session", current)).status == 204
    message = await next_frame(ws, timeout=10)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    assert message.json() == {"type": "session_revoked", "reason": "operator.logged_out"}
    assert (await ws.receive(timeout=10)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def next_frame(ws, timeout: float) -> aiohttp.WSMessage:
    """The socket's next message that is not a presence frame (issue 13: operators'
    online status reaches open apps whenever it changes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await ws.receive(timeout=max(0.01, deadline - loop.time()))
        if message.type != aiohttp.WSMsgType.TEXT or message.json().get("type") != "presence":
            return message
