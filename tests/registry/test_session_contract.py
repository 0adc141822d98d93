"""The session contract between the registry and the gateway: the registry never sets or
deletes a cookie (the gateway owns it); a token comes back in the body and in
X-Parley-Session; a token rotated while verifying is handed back (`rotated_token`),
never thrown away; the rotation grace is PARLEY_SESSION_ROTATION_GRACE_SECONDS."""
import pytest

from parley.contract import ROTATED_TOKEN_HEADER
from parley.service import POOL

from tests.registry.direct import Registry, code
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def verify(registry: Registry, token):
    return await registry.call("POST", "internal", "sessions", "verify", json={"token": token})


async def test_login_gives_the_token_in_the_body_and_header_and_sets_no_cookie(stack):
    registry = Registry(stack)
    r = await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD)
    assert r.status == 201
    token = r.body["token"]
    assert r.headers[ROTATED_TOKEN_HEADER] == token
    assert r.body["operator"]["email"] == OWNER_EMAIL and r.body["operator"]["is_owner"] is True
    assert "Set-Cookie" not in r.headers


async def test_verify_answers_who_holds_the_token_and_no_rotation_when_not_due(stack):
    registry = Registry(stack)
    token = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await verify(registry, token)
    assert r.status == 200
    assert r.body["rotated_token"] is None
    assert (r.body["email"], r.body["project"], r.body["is_owner"]) == (OWNER_EMAIL, "demo", True)
    assert {"id", "name", "is_admin", "session_id", "avatar_url"} <= set(r.body)


async def test_a_token_rotated_while_verifying_is_handed_back_and_both_work_within_the_grace(stack, monkeypatch):
    registry = Registry(stack)
    token = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "0")
    monkeypatch.setenv("PARLEY_SESSION_ROTATION_GRACE_SECONDS", "3600")
    await stack.registry.app[POOL].execute("update sessions set rotated_at = now() - interval '1 second'")
    r = await verify(registry, token)
    fresh = r.body["rotated_token"]
    assert r.status == 200 and fresh and fresh != token and fresh.split(".")[0] == token.split(".")[0]
    assert "Set-Cookie" not in r.headers
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "86400")
    # a request already in flight with the old token still passes, and does not rotate again
    old = await verify(registry, token)
    assert old.status == 200 and old.body["rotated_token"] is None
    assert (await verify(registry, fresh)).status == 200
    assert (await registry.call("GET", "api", "session", token=fresh)).status == 200
    # once the grace is over, only the new token stands
    await stack.registry.app[POOL].execute("update sessions set previous_until = now() - interval '1 second'")
    assert (await verify(registry, token)).status == 401
    assert (await verify(registry, fresh)).status == 200


@pytest.mark.parametrize("grace, old_token_status", [("0", 401), ("3600", 200)])
async def test_the_rotation_grace_is_configurable(stack, monkeypatch, grace, old_token_status):
    registry = Registry(stack)
    token = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "0")
    monkeypatch.setenv("PARLEY_SESSION_ROTATION_GRACE_SECONDS", grace)
    await stack.registry.app[POOL].execute("update sessions set rotated_at = now() - interval '1 second'")
    fresh = (await verify(registry, token)).body["rotated_token"]
    assert fresh
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "86400")
    assert (await verify(registry, token)).status == old_token_status
    assert (await verify(registry, fresh)).status == 200


async def test_a_rest_call_hands_a_rotated_token_back_in_the_header_only_even_when_refused(stack, monkeypatch):
    registry = Registry(stack)
    token = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "0")
    await stack.registry.app[POOL].execute("update sessions set rotated_at = now() - interval '1 second'")
    r = await registry.call("GET", "api", "session", token=token)
    fresh = r.headers[ROTATED_TOKEN_HEADER]
    assert r.status == 200 and fresh != token and "Set-Cookie" not in r.headers
    # a refused request that rotated the token still hands the new one back
    await stack.registry.app[POOL].execute("update sessions set rotated_at = now() - interval '1 second'")
    r = await registry.call("POST", "api", "templates", token=fresh, json={"title": "", "text": "x"})
    assert (r.status, code(r)) == (422, "title_required")
    newer = r.headers[ROTATED_TOKEN_HEADER]
    assert newer not in (token, fresh)
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", "86400")
    r = await registry.call("GET", "api", "session", token=newer)
    assert r.status == 200 and ROTATED_TOKEN_HEADER not in r.headers


async def test_logout_revokes_and_touches_no_cookie(stack):
    registry = Registry(stack)
    token = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await registry.call("DELETE", "api", "session", token=token)
    assert r.status == 204 and "Set-Cookie" not in r.headers
    r = await verify(registry, token)
    assert (r.status, code(r)) == (401, "unauthenticated")


async def test_the_session_cookie_forwarded_by_the_gateway_still_authenticates(stack):
    registry = Registry(stack)
    token = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await registry.call("GET", "api", "session", headers={"Cookie": f"parley_session={token}"})
    assert r.status == 200 and r.body["email"] == OWNER_EMAIL


@pytest.mark.parametrize("token", [None, 5, [], {}, True, "", "x", "urn:uuid:6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a.s",
                                   "{6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a}.secret", "6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a.",
                                   "6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a\n.secret",
                                   "x" * 5000])
async def test_verify_refuses_anything_that_is_not_a_live_token_with_401(stack, token):
    r = await verify(Registry(stack), token)
    assert (r.status, code(r)) == (401, "unauthenticated")
