"""A new conversation's key travels with the answer that started it (issue 21: a first
message's push waited on a key call to the conversation service). The conversation
service makes the key in the command's transaction and answers the gateway with it; the
gateway opens the first pushes with it and makes no key call; the widget never sees it,
and it is the key the store keeps (the relay seals under the same one)."""
from __future__ import annotations

from prometheus_client import REGISTRY

from parley.contract import conversation_stream
from parley.service import POOL
from parley.subject_keys import keys_for

from gateway.live.conversation_keys import KEYS
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import AppSocket, eventually
from tests.visitor import ScriptedVisitor


def key_calls() -> float:
    return REGISTRY.get_sample_value("parley_http_requests_total",
                                     {"route": "/internal/subject-keys", "status": "200"}) or 0.0


async def test_a_new_conversation_reaches_the_operator_without_a_key_call(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    app = await AppSocket.open(stack.gateway, owner)
    before = key_calls()
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("first words, in a new conversation")
    await visitor.send_and_wait("and a second message")

    def pushed(text: str) -> bool:
        return any(f.get("event") == "chat.visitor_message_posted" and f["data"].get("text") == text
                   for f in app.frames)
    await eventually(lambda: pushed("first words, in a new conversation") and pushed("and a second message"),
                     timeout=15)
    assert key_calls() == before          # opened with the key the answer brought, not fetched

    stream = conversation_stream(visitor.conversation_id)
    stored = (await keys_for(stack.conversation.app[POOL], [stream]))[stream]
    assert stored is not None and stack.gateway.app[KEYS].cache[stream][1] == stored
    assert all("subject_key" not in f for f in visitor.frames)   # the key stays inside the trust boundary
    await app.close()
