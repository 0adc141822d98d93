"""A visitor's message names the conversation its socket follows (the gateway's
`conversation_id`, issue 21): when that one is the visitor's and going, the message goes
there without the lookup of the visitor's current conversation; someone else's, unknown
or closed, the lookup decides as it always did."""
from __future__ import annotations

import uuid

from conversation.current_conversations import CURRENT
from tests.conversations.test_hostile_input import ADMIN
from tests.conversations.test_kept_state import operator_call, visitor_call


async def test_a_message_in_the_followed_conversation_skips_the_lookup_unless_it_is_not_going(stack, monkeypatch):
    current = stack.conversation.app[CURRENT]
    looked_up: list[str] = []
    real = current.of

    async def counted(project_id: str, visitor_id: str):
        looked_up.append(visitor_id)
        return await real(project_id, visitor_id)
    monkeypatch.setattr(current, "of", counted)

    vera, petr = (f"v-{uuid.uuid4().hex[:12]}" for _ in range(2))
    cid = (await visitor_call(stack, "messages", vera, message_id="1", text="hello"))["conversation_id"]
    assert looked_up == [vera]                         # a first message: nothing to follow yet

    second = await visitor_call(stack, "messages", vera, message_id="2", text="again", conversation_id=cid, after=2)
    assert second["conversation_id"] == cid and second["seq"] == 3 and looked_up == [vera]
    assert [e["data"]["text"] for e in second["events"]] == ["again"]

    # Another visitor's conversation, or one that does not exist: each writes in their own.
    theirs = await visitor_call(stack, "messages", petr, message_id="1", text="mine", conversation_id=cid)
    assert theirs["conversation_id"] != cid and looked_up == [vera, petr]
    stray = await visitor_call(stack, "messages", vera, message_id="3", text="x", conversation_id=str(uuid.uuid4()))
    assert stray["conversation_id"] == cid and looked_up == [vera, petr, vera]

    # Closed: the message starts the visitor's next conversation, linked to the closed one.
    await operator_call(stack, ADMIN, cid, "take")
    await operator_call(stack, ADMIN, cid, "status", status="closed")
    after_close = await visitor_call(stack, "messages", vera, message_id="4", text="back", conversation_id=cid, after=0)
    assert after_close["conversation_id"] != cid and looked_up[-1] == vera and len(looked_up) == 4
    started = after_close["events"][0]
    assert started["type"] == "chat.conversation_started" and started["data"]["previous_conversation_id"] == cid
