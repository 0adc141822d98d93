"""Issue 8, item 4: cookie-authenticated writes come from our own pages only.

Before, any body was parsed as JSON whatever its Content-Type and no Origin was
checked: a `text/plain` form auto-submitted from another port of the same host (same
site, so the Lax cookie went along) made the owner's browser create an admin of the
attacker's choosing. Now an unsafe method authenticated by the session cookie needs
`Content-Type: application/json` (a file route: a file type, never a form type; else
415) and a same-origin `Origin` / `Sec-Fetch-Site` (else 403). Bearer calls carry no
ambient credential and are not checked."""
from __future__ import annotations

import uuid

import orjson

from parley.service import POOL
from tests.edge.conftest import bearer, cookie_login
from tests.registry.images import png
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from devstack.visitor_protocol import token_headers


def new_admin() -> dict:
    return {"name": "Mallory", "email": f"mallory.{uuid.uuid4().hex[:8]}@evil.example", "password": "mallory-pass-1",
            "is_admin": True}


async def emails(stack, owner: str) -> set[str]:
    r = await stack.call("GET", "/api/operators", owner)
    assert r.status == 200, await r.text()
    return {o.get("email") for o in (await r.json())["operators"]}


async def test_cookie_writes_need_json_and_our_origin(stack, browser_client):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    browser = await browser_client()
    await cookie_login(browser, OWNER_EMAIL, OWNER_PASSWORD)
    own_origin = f"http://127.0.0.1:{stack.gateway.port}"
    refused: list[str] = []

    async def attempt(expected: int, code: str | None, **kwargs) -> None:
        admin = new_admin()
        refused.append(admin["email"])
        r = await browser.post("/api/operators", **{"data": orjson.dumps(admin), **kwargs})
        assert r.status == expected, await r.text()
        assert r.headers["Content-Type"].startswith("application/json")
        if code:
            assert (await r.json())["error"]["code"] == code

    # What a foreign page's form can send: refused whatever its Origin.
    for form_type in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                      "multipart/form-data; boundary=x"):
        await attempt(415, "json_required", headers={"Content-Type": form_type})
        await attempt(415, "json_required", headers={"Content-Type": form_type, "Origin": own_origin})
    await attempt(415, "json_required", headers={"Content-Type": ""})
    # JSON from another origin of the same host (another port), or another site.
    for origin in ("http://localhost:9999", "http://127.0.0.1:9999", f"http://localhost:{stack.gateway.port}.evil",
                   "https://evil.example", "null"):
        await attempt(403, "cross_origin", headers={"Content-Type": "application/json", "Origin": origin})
    # No Origin, but the browser says where the request came from.
    for site in ("cross-site", "same-site"):
        await attempt(403, "cross_origin", headers={"Content-Type": "application/json", "Sec-Fetch-Site": site})
    # A form post from another port is refused for both reasons; either answer stops it.
    admin = new_admin()
    refused.append(admin["email"])
    r = await browser.post("/api/operators", data=orjson.dumps(admin),
                           headers={"Content-Type": "text/plain", "Origin": "http://localhost:9999",
                                    "Sec-Fetch-Site": "same-site"})
    assert r.status in (403, 415), await r.text()

    assert not set(refused) & await emails(stack, owner), "a refused request created an operator"

    # Our own page: JSON, same origin (with Origin, with Sec-Fetch-Site, or a client that sends neither).
    for headers in ({"Origin": own_origin}, {"Sec-Fetch-Site": "same-origin"}, {"Origin": own_origin,
                                                                                "Sec-Fetch-Site": "same-origin"}, {}):
        admin = new_admin()
        r = await browser.post("/api/operators", json=admin, headers=headers)
        assert r.status == 201, await r.text()
        assert admin["email"] in await emails(stack, owner)

    # Other unsafe methods with the cookie are checked the same way.
    victim = new_admin()
    r = await stack.call("POST", "/api/operators", owner, json=victim)
    victim_id = (await r.json())["id"]
    r = await browser.delete(f"/api/operators/{victim_id}", headers={"Origin": "http://localhost:9999",
                                                                     "Content-Type": "application/json"})
    assert r.status == 403
    r = await browser.post(f"/api/operators/{victim_id}/deactivate", headers={"Sec-Fetch-Site": "cross-site",
                                                                              "Content-Type": "application/json"})
    assert r.status == 403
    r = await browser.patch(f"/api/operators/{victim_id}", data=b'{"is_admin": false}',
                            headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = await stack.call("GET", f"/api/operators/{victim_id}", owner)
    assert (await r.json())["active"] is True and (await r.json())["is_admin"] is True
    # Reads are not writes: a cross-site GET is answered (the Lax cookie is not sent there anyway).
    r = await browser.get("/api/session", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 200


async def test_the_operator_socket_takes_our_origin_only(stack, cast, browser_client):
    """Cross-site WebSocket hijacking: a page on another port of the same host opens
    /ws/operator and the browser sends the operator's cookie along."""
    browser = await browser_client()
    await cookie_login(browser, cast.b_email, cast.password)
    for headers in ({"Origin": "http://localhost:9999"}, {"Origin": "http://127.0.0.1:9999"},
                    {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}):
        r = await browser.get("/ws/operator", headers={**headers, "Connection": "Upgrade", "Upgrade": "websocket",
                                                       "Sec-WebSocket-Version": "13",
                                                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        assert r.status == 403, (headers, r.status)
    ws = await browser.ws_connect("/ws/operator", origin=f"http://127.0.0.1:{stack.gateway.port}")
    assert (await ws.receive_json(timeout=10))["operator"]["id"] == cast.b_id
    await ws.close()


async def test_bearer_calls_are_not_checked_for_origin(stack, bearer_client):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    for headers in ({"Origin": "http://localhost:9999"}, {"Origin": "https://evil.example"},
                    {"Sec-Fetch-Site": "cross-site"}):
        admin = new_admin()
        r = await bearer_client.post("/api/operators", json=admin, headers={**bearer(owner), **headers})
        assert r.status == 201, await r.text()
        assert admin["email"] in await emails(stack, owner)


async def test_cookie_uploads_need_a_file_body(stack, cast, browser_client):
    browser = await browser_client()
    await cookie_login(browser, cast.b_email, cast.password)
    picture = png(400)
    for form_type in ("multipart/form-data; boundary=x", "text/plain", "application/x-www-form-urlencoded"):
        r = await browser.post(f"/api/conversations/{cast.cid}/attachments", data=b"%PDF-1.4 x",
                               headers={"Content-Type": form_type, "X-File-Name": "a.pdf"})
        assert r.status == 415, await r.text()
        assert (await r.json())["error"]["code"] == "file_body_required"
        r = await browser.put(f"/api/operators/{cast.b_id}/avatar", data=picture, headers={"Content-Type": form_type})
        assert r.status == 415, await r.text()
    r = await browser.post(f"/api/conversations/{cast.cid}/attachments", data=b"%PDF-1.4 x",
                           headers={"Content-Type": "application/octet-stream", "Origin": "http://localhost:9999"})
    assert r.status == 403
    r = await stack.call("GET", f"/api/operators/{cast.b_id}", cast.owner)
    assert (await r.json())["avatar_url"] is None
    assert await stack.gateway.app[POOL].fetchval(
        "select count(*) from files where uploaded_by = $1", f"operator:{cast.b_id}") == 0
    # The app's own upload: a file type, same origin.
    r = await browser.post(f"/api/conversations/{cast.cid}/attachments", data=b"%PDF-1.4 x",
                           headers={"Content-Type": "application/octet-stream", "X-File-Name": "a.pdf",
                                    "Origin": f"http://127.0.0.1:{stack.gateway.port}"})
    assert r.status == 201, await r.text()
    r = await browser.put(f"/api/operators/{cast.b_id}/avatar", data=picture,
                          headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, await r.text()


async def test_the_widget_on_our_demo_page_works_for_a_logged_in_operator(stack, browser_client):
    """The site owner tries /demo in the browser where the app is open: the cookie goes along
    with the widget's calls, which authenticate by the visitor token and are not held to the
    operator's rules (a text file's own type, JSON or not)."""
    browser = await browser_client()
    await cookie_login(browser, OWNER_EMAIL, OWNER_PASSWORD)
    r = await browser.post("/api/visitor/session", json={"project": "demo"})
    assert r.status == 201, await r.text()
    token = (await r.json())["visitor_token"]
    r = await browser.post("/api/visitor/attachments", data=b"just some notes\n",
                           headers={**token_headers(token), "Content-Type": "text/plain", "X-File-Name": "notes.txt"})
    assert r.status == 201, await r.text()


async def test_the_scheme_of_the_origin_counts(stack, browser_client, monkeypatch):
    """Issue 23: host and port were compared, the scheme was not. Behind a TLS proxy, a
    plain-http page on our own host (anyone on the path can write one) is not our app."""
    browser = await browser_client()
    await cookie_login(browser, OWNER_EMAIL, OWNER_PASSWORD)
    host = f"127.0.0.1:{stack.gateway.port}"

    async def status(origin: str, **headers) -> int:
        r = await browser.post("/api/operators", json=new_admin(), headers={"Origin": origin, **headers})
        return r.status

    # The public URL says https: only the https page is ours.
    monkeypatch.setenv("PARLEY_PUBLIC_URL", f"https://{host}")
    assert await status(f"http://{host}") == 403
    assert await status(f"https://{host}") == 201
    # A trusted proxy says the client came over https: the same.
    monkeypatch.delenv("PARLEY_PUBLIC_URL")
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", "1")
    assert await status(f"http://{host}", **{"X-Forwarded-Proto": "https"}) == 403
    assert await status(f"https://{host}", **{"X-Forwarded-Proto": "https"}) == 201
    assert await status(f"http://{host}", **{"X-Forwarded-Proto": "http"}) == 201
    assert await status(f"ftp://{host}") == 403
