"""Issue 13, item 5 through the stack: a verified visitor keeps their conversation across
devices, a forged or missing hash joins nothing, and the secret is the admins'."""
from __future__ import annotations

from gateway import verified_visitors
from tests.conversations.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def _session(stack, identity=None, token=None) -> dict:
    body = {"project": "demo", **({"identity": identity} if identity is not None else {}),
            **({"visitor_token": token} if token else {})}
    r = await stack.gateway.post("/api/visitor/session", json=body)
    assert r.status == 201, await r.text()
    return await r.json()


async def _device(stack, session: dict) -> ScriptedVisitor:
    visitor = ScriptedVisitor(stack.gateway, token=session["visitor_token"])
    await visitor.start()
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
