"""Issue 8, item 10 (the gateway's part): the session cookie is Secure behind https,
every answer says `nosniff`, and `/metrics` is not on the public port.

Before, the cookie never had `Secure` (so a network attacker could get it over a plain
http link to the same host), JSON answers had no `X-Content-Type-Options`, and the
gateway's metrics were public."""
from __future__ import annotations

import uuid

import pytest

from tests.edge.conftest import bearer, raw_request
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

LOGIN = {"project": "demo", "email": OWNER_EMAIL, "password": OWNER_PASSWORD}


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getall("Set-Cookie", []) if c.startswith("parley_session=")]
    assert cookies, "login set no session cookie"
    return cookies[-1]


def attributes(cookie: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]}


@pytest.mark.parametrize("public_url, hops, forwarded_proto, secure", [
    ("", "0", None, False),
    ("", "0", "https", False),                     # nobody we trust said so
    ("http://chat.example.com", "0", None, False),
    ("https://chat.example.com", "0", None, True),
    ("", "1", "https", True),                      # our ingress terminated TLS
    ("", "1", "http", False),
    ("", "1", "http, https", True),                # the nearest (trusted) proxy's word counts
])
async def test_the_session_cookie_is_secure_behind_https(stack, monkeypatch, bearer_client, public_url, hops,
                                                         forwarded_proto, secure):
    monkeypatch.setenv("PARLEY_PUBLIC_URL", public_url)
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", hops)
    headers = {"X-Forwarded-Proto": forwarded_proto} if forwarded_proto else {}
    r = await bearer_client.post("/api/session", json=LOGIN, headers=headers)
    assert r.status == 201, await r.text()
    cookie = session_cookie(r)
    assert ("secure" in attributes(cookie)) is secure, cookie
    assert {"httponly", "samesite", "path"} <= attributes(cookie)
    # Logging out clears it with the same attributes (a browser ignores a mismatched delete).
    token = (await r.json())["token"]
    r = await bearer_client.delete("/api/session", headers={**bearer(token), **headers})
    assert r.status == 204
    cleared = session_cookie(r)
    assert ("secure" in attributes(cleared)) is secure, cleared


async def test_every_answer_says_nosniff(stack, cast, bearer_client):
    port = stack.gateway.port
    token = cast.b
    answers = {
        "login": await bearer_client.post("/api/session", json=LOGIN),
        "wrong password": await bearer_client.post("/api/session", json={**LOGIN, "password": "wrong"}),
        "whoami": await bearer_client.get("/api/session", headers=bearer(token)),
        "anonymous": await bearer_client.get("/api/session"),
        "inbox": await bearer_client.get("/api/inbox", headers=bearer(token)),
        "transcript": await bearer_client.get(f"/api/conversations/{cast.cid}", headers=bearer(token)),
        "no such conversation": await bearer_client.get(f"/api/conversations/{uuid.uuid4()}", headers=bearer(token)),
        "not a uuid": await bearer_client.get("/api/conversations/x", headers=bearer(token)),
        "reply": await bearer_client.post(f"/api/conversations/{cast.cid}/messages", json={"text": "hi"},
                                          headers=bearer(token)),
        "bad json": await bearer_client.post(f"/api/conversations/{cast.cid}/messages", data=b"{nope",
                                             headers={**bearer(token), "Content-Type": "application/json"}),
        "not json": await bearer_client.post(f"/api/conversations/{cast.cid}/messages", data=b"hi",
                                             headers={**bearer(token), "Content-Type": "text/plain"}),
        "too large": await bearer_client.post(f"/api/conversations/{cast.cid}/messages", data=b"{" + b" " * 70000,
                                              headers={**bearer(token), "Content-Type": "application/json"}),
        "unknown route": await bearer_client.get("/api/nothing-here"),
        "wrong method": await bearer_client.put("/api/inbox", headers=bearer(token)),
        "openapi": await bearer_client.get("/api/openapi.json"),
        "widget config": await bearer_client.get("/api/widget/config", params={"project": "demo"}),
        "no project": await bearer_client.get("/api/widget/config", params={"project": "nope"}),
        "visitor session": await bearer_client.post("/api/visitor/session", json={"project": "demo"}),
        "healthz": await bearer_client.get("/healthz"),
        "app": await bearer_client.get("/app/"),
        "widget": await bearer_client.get("/widget.js"),
        "app module": await bearer_client.get("/app/static/api.js"),
    }
    missing = [f"{what} ({r.status})" for what, r in answers.items()
               if r.headers.get("X-Content-Type-Options") != "nosniff"]
    assert not missing, f"no nosniff on: {', '.join(missing)}"
    not_json = [f"{what} ({r.status})" for what, r in answers.items()
                if r.status >= 400 and not r.headers.get("Content-Type", "").startswith("application/json")]
    assert not not_json, f"errors without the JSON shape: {', '.join(not_json)}"
    assert answers["too large"].status == 413 and answers["wrong method"].status == 405
    # A CSRF refusal and an operator-socket refusal too.
    r = await raw_request(port, "POST", "/api/operators", headers={"Cookie": "parley_session=x",
                                                                    "Content-Type": "text/plain"}, body=b"{}")
    assert r.status in (403, 415) and r.headers.get("X-Content-Type-Options") == "nosniff", r.describe()
    r = await raw_request(port, "GET", "/ws/operator", headers={"Origin": "https://evil.example"})
    assert r.status == 403 and r.headers.get("X-Content-Type-Options") == "nosniff", r.describe()


async def test_metrics_are_not_on_the_public_port(stack, bearer_client):
    for path_ in ("/metrics", "/metrics/", "/api/metrics"):
        r = await bearer_client.get(path_)
        assert r.status == 404, path_
        assert b"parley_http_requests_total" not in await r.read()
