"""Issue 13, item 5 through the stack: a verified visitor keeps their conversation across
devices, a forged or missing hash joins nothing, and the secret is the admins'."""
from __future__ import annotations

import time

import aiohttp
import pytest

from gateway import verified_visitors, visitor_tokens
from gateway.live import visitor_sockets
from devstack.visitor_protocol import socket_protocols
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def _session(stack, identity=None, token=None) -> dict:
    body = {"project": "demo", **({"identity": identity} if identity is not None else {}),
            **({"visitor_token": token} if token else {})}
    r = await stack.gateway.post("/api/visitor/session", json=body)
    assert r.status == 201, await r.text()
    return await r.json()


async def _device(stack, session: dict) -> ScriptedVisitor:
    """A browser holding the session's token, connected with it (as the widget does once
    its session call, which carries the page's identity, answered)."""
    visitor = ScriptedVisitor(stack.gateway, token=session["visitor_token"], visitor_id=session["visitor_id"])
    await visitor.connect()
    return visitor


async def test_a_verified_visitor_keeps_their_conversation_and_a_forged_hash_joins_nothing(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("GET", "/api/project/identity-secret", owner)
    assert r.status == 200, await r.text()
    secret = (await r.json())["secret"]
    assert (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"] == secret
    _, olga, _ = await stack.add_operator(owner, "Olga")
    assert (await stack.call("GET", "/api/project/identity-secret", olga)).status == 403

    alice = {"id": "user-42", "name": "Alice", "email": "alice@example.com",
             "hash": verified_visitors.expected_hash(secret, "user-42")}
    # Laptop: verified, writes.
    laptop_session = await _session(stack, alice)
    assert laptop_session["verified"] is True and laptop_session["visitor_id"].startswith("verified:")
    assert "user-42" not in laptop_session["visitor_id"]
    laptop = await _device(stack, laptop_session)
    await laptop.send_and_wait("My order #1001 has not arrived")
    # Phone, another browser: the same visitor, the same conversation and its history.
    phone_session = await _session(stack, {**alice, "hash": alice["hash"].upper()})
    assert phone_session["visitor_id"] == laptop_session["visitor_id"]
    phone = await _device(stack, phone_session)
    await phone.wait_for(lambda: phone.texts("visitor_message") == ["My order #1001 has not arrived"], "history")
    assert phone.conversation_id is not None   # hello named the conversation the laptop started

    # Forged, missing or malformed hashes: anonymous, a visitor of their own, nothing of Alice's.
    for claim, reason in (({**alice, "hash": "0" * 64}, "hash_invalid"),
                          ({**alice, "hash": verified_visitors.expected_hash("guessed", "user-42")}, "hash_invalid"),
                          ({"id": "user-42", "name": "Alice"}, "hash_missing"),
                          ({"id": ["user-42"], "hash": alice["hash"]}, "identity_invalid")):
        forged = await _session(stack, claim)
        assert (forged["verified"], forged["reason"]) == (False, reason)
        assert forged["visitor_id"] != laptop_session["visitor_id"]
        intruder = await _device(stack, forged)
        assert intruder.conversation_id is None and intruder.events == []
        await intruder.drop()
    # A forged claim sent with Alice's own token does not keep her verified session either.
    kept = await _session(stack, {**alice, "hash": "f" * 64}, token=laptop_session["visitor_token"])
    assert kept["verified"] is False and kept["visitor_id"] != laptop_session["visitor_id"]
    # Nor does no claim at all (issue 23): the page no longer vouches - Alice logged out of
    # the site, or it called Parley.reset() - so the next person in this browser is new.
    after_logout = await _session(stack, token=laptop_session["visitor_token"])
    assert "verified" not in after_logout and after_logout["visitor_id"] != laptop_session["visitor_id"]
    assert not after_logout["visitor_id"].startswith("verified:")
    stranger = await _device(stack, after_logout)
    assert stranger.conversation_id is None and stranger.events == []
    await stranger.drop()

    # The operator sees a verified visitor.
    r = await stack.call("GET", "/api/inbox?view=new", owner)
    [row] = [c for c in (await r.json())["conversations"] if c["last_message_text"].startswith("My order #1001")]
    assert row["visitor_id"] == laptop_session["visitor_id"]

    # Rotating the secret: the old hash stops verifying (each gateway caches the secret 30 s).
    r = await stack.call("POST", "/api/project/identity-secret/rotate", owner, json={})
    assert r.status == 200 and (await r.json())["secret"] != secret
    stack.gateway.app[verified_visitors.SECRETS].clear()
    assert (await _session(stack, alice))["reason"] == "hash_invalid"
    for device in (laptop, phone):
        await device.drop()


async def test_a_stolen_verified_token_ends_with_the_secret_it_was_verified_by(stack):
    """Issue 23, finding 1: after the identity secret was rotated, an old verified token
    still opened /ws/visitor and replayed that user's history, and an open socket kept
    receiving their conversation. Rotation now ends both; other visitors are untouched."""
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    secret = (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"]
    bob = {"id": "bob-9", "name": "Bob", "hash": verified_visitors.expected_hash(secret, "bob-9")}
    session = await _session(stack, bob)
    assert session["verified"] is True
    bob_device = await _device(stack, session)
    await bob_device.send_and_wait("My card number ends 4242")
    thief = await _device(stack, session)          # the same token, copied elsewhere
    await thief.wait_for(lambda: thief.texts("visitor_message") == ["My card number ends 4242"], "history")
    anonymous = ScriptedVisitor(stack.gateway)
    await anonymous.start()
    await anonymous.send_and_wait("Just browsing")

    r = await stack.call("POST", "/api/project/identity-secret/rotate", owner, json={})
    assert r.status == 200
    stack.gateway.app[verified_visitors.SECRETS].clear()   # each gateway re-reads it within 30 s
    assert await visitor_sockets.end_ended_verified(stack.gateway.app) == 2
    for device in (bob_device, thief):
        await device.wait_for(lambda: device.ws.closed, "closed")
        assert device.ws.close_code == 4401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(session['visitor_token']))
    assert refused.value.status == 401
    # The stolen token buys a new, empty anonymous visitor at most.
    fresh = await _session(stack, token=session["visitor_token"])
    assert fresh["visitor_id"] != session["visitor_id"]
    # Bob, vouched for by the site with the new secret, is Bob again, with his history.
    again = await _session(stack, {**bob, "hash": verified_visitors.expected_hash(
        (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"], "bob-9")})
    assert again["visitor_id"] == session["visitor_id"] and again["visitor_token"] != session["visitor_token"]
    bob_again = await _device(stack, again)
    await bob_again.wait_for(lambda: bob_again.texts("visitor_message") == ["My card number ends 4242"], "history")
    # An anonymous visitor was never affected.
    assert not anonymous.ws.closed
    await anonymous.send_and_wait("still here")
    for device in (bob_again, anonymous):
        await device.drop()


async def test_a_verified_token_expires(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    secret = (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"]
    visitor_id = verified_visitors.visitor_id_for("demo", "carol-3")
    generation = verified_visitors.generation_of(secret)
    for expires_at, opens in ((time.time() - 1, False), (time.time() + 60, True)):
        token, _ = visitor_tokens.issue("demo", visitor_id, generation=generation, expires_at=expires_at)
        if opens:
            ws = await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(token))
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            await ws.close()
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(token))
            assert refused.value.status == 401
    # A verified id in a token without a generation (as every gateway issued before) ends too.
    token, _ = visitor_tokens.issue("demo", visitor_id)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await stack.gateway.ws_connect("/ws/visitor", protocols=socket_protocols(token))
