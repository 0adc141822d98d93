"""Login that remembers: through the gateway, against a real operator-registry."""
import asyncio
import dataclasses
import logging

import orjson
from aiohttp.test_utils import TestClient, TestServer

from parley.service import POOL, create_app

import operator_registry.__main__ as registry_main
from operator_registry import accounts
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, settings


async def test_owner_logs_in_and_sees_who_they_are(stack):
    token = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    me = await (await stack.call("GET", "/api/session", token)).json()
    assert (me["project"], me["email"], me["is_owner"], me["is_admin"]) == ("demo", OWNER_EMAIL, True, True)


async def test_wrong_credentials_get_one_generic_error(stack):
    _, _, email = await stack.add_operator(await stack.login(OWNER_EMAIL, OWNER_PASSWORD), "Ann")
    answers = []
    for project, login, password in [("demo", email, "wrong-password"), ("demo", "nobody@example.com", "whatever-pass"),
                                     ("no-such-project", email, "operator-pass-1")]:
        r = await stack.gateway.post("/api/session", json={"project": project, "email": login, "password": password})
        answers.append((r.status, await r.json()))
    assert all(a == (401, {"error": {"code": "invalid_credentials", "message": "Wrong project, email or password."}})
               for a in answers), answers


async def test_email_is_case_insensitive_for_login(stack):
    _, _, email = await stack.add_operator(await stack.login(OWNER_EMAIL, OWNER_PASSWORD), "Bob")
    await stack.login(email.upper(), "operator-pass-1")


async def test_repeated_failures_for_an_email_from_one_address_are_throttled(stack):
    # Through the gateway every test request comes from one address; that the rightful
    # user still logs in from another is tests/registry/test_login_throttling.py.
    _, _, email = await stack.add_operator(await stack.login(OWNER_EMAIL, OWNER_PASSWORD), "Cid")
    statuses = []
    for _ in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS + 1):
        r = await stack.gateway.post("/api/session", json={"project": "demo", "email": email, "password": "bad-password"})
        statuses.append(r.status)
    assert statuses == [401] * accounts.FAILURES_PER_EMAIL_AND_ADDRESS + [429]
    # from this address even the right password waits now, and the refusal says for how long
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": email, "password": "operator-pass-1"})
    assert r.status == 429 and r.headers["Retry-After"] == "900"
    assert (await r.json())["error"]["code"] == "too_many_attempts"


async def test_repeated_failures_are_throttled_per_address(stack):
    for i in range(accounts.FAILURES_PER_ADDRESS):
        await stack.gateway.post("/api/session", json={"project": "demo", "email": f"x{i}@example.com", "password": "bad-password"})
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    assert r.status == 429


async def test_a_session_survives_a_registry_restart_until_logout(stack, platform):
    token = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    schema = await stack.registry.app[POOL].fetchval("select current_schema()")
    port = stack.registry.port
    await stack.registry.close()
    restarted = TestClient(TestServer(create_app(dataclasses.replace(registry_main.SPEC, schema=schema),
                                                 settings(platform, "operator-registry")), port=port))
    await restarted.start_server()
    stack.registry = restarted
    assert (await stack.call("GET", "/api/session", token)).status == 200
    assert (await stack.call("DELETE", "/api/session", token)).status == 204
    r = await stack.call("GET", "/api/session", token)
    assert r.status == 401 and (await r.json())["error"]["code"] == "unauthenticated"


async def test_a_token_rotates_on_use_and_the_old_one_has_a_short_grace(stack, monkeypatch):
    token = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "0")
    await asyncio.sleep(0.01)
    r = await stack.call("GET", "/api/session", token)
    fresh = r.headers["X-Parley-Session"]
    assert r.status == 200 and fresh != token and fresh.split(".")[0] == token.split(".")[0]
    assert "Set-Cookie" not in r.headers  # a bearer client keeps its token itself; the cookie is for cookie clients
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "3600")
    assert (await stack.call("GET", "/api/session", token)).status == 200  # in flight with the old one: grace
    assert (await stack.call("GET", "/api/session", fresh)).status == 200
    await stack.registry.app[POOL].execute("update sessions set previous_until = now() - interval '1 second'")
    assert (await stack.call("GET", "/api/session", token)).status == 401
    assert (await stack.call("GET", "/api/session", fresh)).status == 200


async def test_the_cookie_logs_the_app_in(stack):
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    assert "HttpOnly" in r.headers["Set-Cookie"]
    # the test client keeps cookies, as a browser does
    assert (await stack.gateway.get("/api/session")).status == 200


async def test_secrets_never_appear_in_events_or_logs(stack, caplog):
    caplog.set_level(logging.DEBUG)
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator_token, _ = await stack.add_operator(owner, "Dee", password="secret-pass-123")
    await stack.call("PATCH", "/api/operators/" + (await (await stack.call("GET", "/api/session", operator_token)).json())["id"],
                     operator_token, json={"password": "another-secret-456", "current_password": "secret-pass-123"})
    rows = await stack.registry.app[POOL].fetch("select type, data from events")
    dumped = orjson.dumps([dict(r) for r in rows]).decode()
    for secret in ("secret-pass-123", "another-secret-456", OWNER_PASSWORD, owner, operator_token, "argon2"):
        assert secret not in dumped
        assert secret not in caplog.text
    assert {"operator.logged_in", "operator.password_changed"} <= {r["type"] for r in rows}
