"""Conversations end (issue 12): once an operator closes a conversation, the visitor's
next message starts a new one, linked to the closed one, and the widget's socket
follows it (a `conversation` frame, then the new conversation's events, seqs starting again).
A resend of a message the closed conversation already has is absorbed there. The
operator handling the new conversation reads the earlier one from the side panel,
though another operator handled it."""
from __future__ import annotations

from parley.service_client import path

from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def current_conversation(stack, visitor) -> str:
    return (await stack.conversation_client.checked("GET", path("internal", "visitor", "conversation"), params={
        "project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]


async def test_after_a_close_the_next_message_starts_a_linked_conversation(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, anna, _ = await stack.add_operator(owner, "Anna First")
    _, boris, _ = await stack.add_operator(owner, "Boris Second")
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    first_id = await visitor.send_and_wait("I need a quote")
    first = await current_conversation(stack, visitor)
    assert (await stack.call("POST", f"/api/conversations/{first}/take", anna)).status == 200
    assert (await stack.call("POST", f"/api/conversations/{first}/messages", anna, json={"text": "Sent!"})).status == 200
    assert (await stack.call("POST", f"/api/conversations/{first}/status", anna, json={"status": "closed"})).status == 200
    await visitor.wait_for(lambda: "closed" in visitor.kinds(), "the close")

    # A resend of a message the closed conversation has: absorbed there, nothing starts.
    seq = visitor.view.answers.pop(first_id)["seq"]   # forgotten, so only the resend's ack can bring it back
    await visitor.ws.send_json({"type": "message", "id": first_id, "text": "I need a quote"})
    await visitor.wait_for(lambda: visitor.acks.get(first_id) == seq, "the resend's ack, its first seq")
    assert await current_conversation(stack, visitor) == first

    # The next message starts the next conversation; the socket follows it.
    before = len(visitor.frames)
    await visitor.send_and_wait("Back again: one more license")
    second = await current_conversation(stack, visitor)
    assert second != first
    new_frames = visitor.frames[before:]
    switch = next(i for i, f in enumerate(new_frames) if f["type"] == "conversation")
    assert new_frames[switch]["conversation_id"] == second
    events_after = [f for f in new_frames[switch:] if f["type"] == "event"]
    # seqs start again (1 is the start, which visitors do not see)
    assert events_after and events_after[0]["seq"] == 2 and events_after[-1]["text"] == "Back again: one more license"

    old = await (await stack.call("GET", f"/api/conversations/{first}", owner)).json()
    new = await (await stack.call("GET", f"/api/conversations/{second}", owner)).json()
    assert old["conversation"]["status"] == "closed"                       # the closed one stays closed
    assert [e["data"]["text"] for e in old["events"] if e["event"] == "chat.visitor_message_posted"] == [
        "I need a quote"]
    assert new["events"][0]["event"] == "chat.conversation_started"
    assert new["events"][0]["data"]["previous_conversation_id"] == first
    assert new["conversation"]["status"] == "new" and new["conversation"]["assignee_id"] is None

    # Boris takes the new one; from its side panel he reads the earlier one, Anna's.
    assert (await stack.call("POST", f"/api/conversations/{second}/take", boris)).status == 200
    card = await (await stack.call("GET", f"/api/conversations/{second}/client", boris)).json()
    [earlier] = card["earlier_conversations"]
    assert earlier["id"] == first and "visitor" in earlier["matched_by"] and earlier["status"] == "closed"
    r = await stack.call("GET", f"/api/conversations/{first}", boris)
    assert r.status == 200, await r.text()
    assert any(e["data"].get("text") == "Sent!" for e in (await r.json())["events"])
    # reading, not acting: the earlier conversation is still Anna's
    r = await stack.call("POST", f"/api/conversations/{first}/messages", boris, json={"text": "hi"})
    assert r.status in (403, 404), await r.text()
    # an operator with nothing of this visitor's reads nothing of it
    _, carl, _ = await stack.add_operator(owner, "Carl Elsewhere")
    assert (await stack.call("GET", f"/api/conversations/{first}", carl)).status == 404
    await visitor.ws.close()
