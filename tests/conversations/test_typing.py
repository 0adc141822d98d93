"""Issue 13, item 3: typing indicators cross gateways and never enter the event store.

The visitor is on gateway A, the operator's socket on gateway B (the same schemas, as
in test_scale_out.py): each side's typing reaches the other through the typing.signals
topic, and the conversation's stream holds no trace of it."""
from __future__ import annotations

import time

from parley.service_client import path

from gateway.live import typing_signals
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import AppSocket, eventually


async def _until_seen(signal, seen, what: str, attempts: int = 6) -> float:
    """Signal (throttled to one per 2 s) until the other side has seen it: a gateway's live
    subscriber starts from the end of the topic, and a signal sent before it has its
    position is (rightly) never delivered. Returns the seconds the last attempt took."""
    for _ in range(attempts):
        started = time.monotonic()
        await signal()
        try:
            await eventually(seen, timeout=typing_signals.THROTTLE_SECONDS + 0.2, what=what)
            return time.monotonic() - started
        except AssertionError:
            continue
    raise AssertionError(f"never saw {what}")


async def test_typing_crosses_gateways_both_ways_and_is_never_stored(stack, gateway_b):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    app = await AppSocket.open(gateway_b, owner)                       # the operator on gateway B
    visitor = ScriptedVisitor(stack.gateway)                           # the visitor on gateway A
    await visitor.start()
    await visitor.send_and_wait("Is the red one in stock?")
    cid = (await stack.conversation_client.checked("GET", path("internal", "visitor", "conversation"), params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]
    events = path("internal", "conversations", cid, "events")
    before = (await stack.conversation_client.checked("GET", events))["events"]

    # The visitor types on A; the operator's socket on B shows it.
    def operator_saw():
        return app.of_type("typing")
    visitor_to_operator = await _until_seen(lambda: visitor.ws.send_json({"type": "typing"}), operator_saw,
                                            "the visitor typing, on the operator's socket")
    assert operator_saw()[0]["conversation_id"] == cid and operator_saw()[0]["side"] == "visitor"

    # An operator who has not taken it may not type to the visitor; once taken, through B, they may.
    r = await gateway_b.post(f"/api/conversations/{cid}/typing", headers={"Authorization": "Bearer " + owner})
    assert r.status == 204   # the owner is an admin: admins may write into any conversation
    other_id, other, _ = await stack.add_operator(owner, "Olga")
    gateway_b.session.cookie_jar.clear()
    r = await gateway_b.post(f"/api/conversations/{cid}/typing", headers={"Authorization": "Bearer " + other})
    assert r.status == 409 and (await r.json())["error"]["code"] == "not_taken"
    r = await stack.call("POST", f"/api/conversations/{cid}/take", other, json={})
    assert r.status == 200, await r.text()

    def visitor_saw():
        return [f for f in visitor.frames if f.get("type") == "typing"]

    async def operator_types():
        gateway_b.session.cookie_jar.clear()
        answer = await gateway_b.post(f"/api/conversations/{cid}/typing", headers={"Authorization": "Bearer " + other})
        assert answer.status == 204, await answer.text()
    operator_to_visitor = await _until_seen(
        operator_types, lambda: any(f["operator"]["name"] == "Olga" for f in visitor_saw()),
        "the operator typing, on the visitor's socket")

    # Nothing of it was stored: the stream has what it had, plus the take.
    after = (await stack.conversation_client.checked("GET", events))["events"]
    assert [e["type"] for e in after[len(before):]] == ["assignment.taken", "status.changed"]
    assert not [e for e in after if "typ" in e["type"]]
    # A stranger's conversation id: 404, whoever asks.
    r = await stack.call("POST", "/api/conversations/00000000-0000-4000-8000-000000000000/typing", owner, json={})
    assert r.status == 404
    print(f"typing latency across gateways: visitor->operator {visitor_to_operator * 1000:.0f} ms, "
          f"operator->visitor {operator_to_visitor * 1000:.0f} ms")
    await app.close()
    await visitor.drop()


def test_the_gateway_passes_one_signal_per_two_seconds_per_side():
    app = {typing_signals.LAST_SENT: __import__("collections").OrderedDict()}
    assert not typing_signals.throttled(app, "c1", "visitor", now=100.0)
    assert typing_signals.throttled(app, "c1", "visitor", now=101.9)        # too soon: dropped
    assert not typing_signals.throttled(app, "c1", "operator:o1", now=101.0)  # the other side has its own
    assert not typing_signals.throttled(app, "c2", "visitor", now=101.0)      # and every conversation
    assert not typing_signals.throttled(app, "c1", "visitor", now=102.0)


def test_a_signal_matches_its_schema(catalog):
    import orjson
    from jsonschema import Draft202012Validator, FormatChecker
    from parley.config import REPO_ROOT
    schema = orjson.loads((REPO_ROOT / "schemas/signals/typing.v1.schema.json").read_bytes())
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    validator.validate(typing_signals.signal("3f0c4a52-9a55-4a2a-8a61-0d0b5a1a7e10", "demo", "visitor"))
    validator.validate(typing_signals.signal("3f0c4a52-9a55-4a2a-8a61-0d0b5a1a7e10", "demo", "operator", "A" * 200))
    assert typing_signals.decode(orjson.dumps({"type": "typing", "side": "nobody"})) is None
