"""Issue 24, item 5: transcripts by email, end to end on real Kafka, PostgreSQL and a real
SMTP server (aiosmtpd). The visitor asks from the widget's socket; crm-bridge sends the
conversation - both sides' messages, never the notes - once, across an SMTP outage and a
sender that dies mid-attempt (its lease lapses and another attempt sends it); the
delivery log says what happened; a closed conversation's transcript goes by itself when
the project wants it and the visitor left an email. The sink: tests/mail_sink.py."""
from __future__ import annotations

import asyncio

from parley.service import POOL

from crm_bridge import email_deliveries
from crm_bridge.deliveries import TUNING
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually
from tests.visitor import ScriptedVisitor

NOTE = "Internal: this client owes us 300 EUR"


def settings(sink, **extra) -> dict:
    return {"host": "127.0.0.1", "port": sink.port, "security": "none", "from_address": "chat@shop.example",
            "from_name": "Shop Example", "language": "en", "on_close": False, **extra}


async def conversation_with_a_note(stack, owner: str) -> tuple[ScriptedVisitor, str]:
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Is the blue sofa in stock?")
    cid = visitor.conversation_id
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner, json={})).status == 200
    r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": "Yes, two left."})
    assert r.status == 200, await r.text()
    r = await stack.call("POST", f"/api/conversations/{cid}/notes", owner, json={"text": NOTE})
    assert r.status == 200, await r.text()
    await visitor.wait_for(lambda: "Yes, two left." in visitor.texts("operator_message"), "the reply")
    return visitor, cid


async def ask(visitor: ScriptedVisitor, email: str, frame_id: str) -> dict:
    await visitor.ws.send_json({"type": "email_transcript", "id": frame_id, "email": email})
    await visitor.wait_for(lambda: any(f.get("id") == frame_id for f in visitor.frames), "the answer")
    return next(f for f in visitor.frames if f.get("id") == frame_id)


async def deliveries(stack, owner: str) -> list[dict]:
    r = await stack.call("GET", "/api/project/email/deliveries", owner)
    assert r.status == 200, await r.text()
    return (await r.json())["deliveries"]


async def test_settings_are_for_admins_the_password_is_write_only_and_test_sends(crm_stack, sink):
    owner = await crm_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await crm_stack.call("GET", "/api/project/email", owner)
    assert (await r.json()) == {"configured": False}
    r = await crm_stack.call("PUT", "/api/project/email", owner, json=settings(sink, user="shop", password="s3cret"))
    assert r.status == 200, await r.text()
    shown = await r.json()
    assert shown["password_set"] is True and "password" not in shown and "s3cret" not in await r.text()
    r = await crm_stack.call("PUT", "/api/project/email", owner, json=settings(sink, user="shop"))   # no password: kept
    assert (await r.json())["password_set"] is True
    r = await crm_stack.call("PUT", "/api/project/email", owner, json=settings(sink))   # no user: no login asked
    for bad, code in (({"port": 0}, "port_invalid"), ({"port": "25"}, "port_invalid"), ({"host": "a b"}, "host_invalid"),
                      ({"security": "ssl"}, "security_invalid"), ({"from_address": "nobody"}, "from_address_invalid"),
                      ({"language": "de"}, "language_invalid"), ({"on_close": "yes"}, "on_close_invalid"),
                      ({"from_name": ""}, "from_name_invalid")):
        r = await crm_stack.call("PUT", "/api/project/email", owner, json=settings(sink, **bad))
        assert r.status == 422 and (await r.json())["error"]["code"] == code, bad
    _, operator, _ = await crm_stack.add_operator(owner, "Olga")
    assert (await crm_stack.call("GET", "/api/project/email", operator)).status == 403
    assert (await crm_stack.call("PUT", "/api/project/email", operator, json=settings(sink))).status == 403

    r = await crm_stack.call("POST", "/api/project/email/test", owner, json={"to": "owner@shop.example"})
    assert (await r.json()) == {"sent": True}
    assert [m["to"] for m in sink.messages] == ["owner@shop.example"] and "Shop Example" in sink.messages[0]["subject"]
    await sink.stop_smtp()
    r = await crm_stack.call("POST", "/api/project/email/test", owner, json={"to": "owner@shop.example"})
    answer = await r.json()
    assert r.status == 200 and answer["sent"] is False and "Could not reach" in answer["error"]
    r = await crm_stack.call("POST", "/api/project/email/test", owner, json={"to": "not an email"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "to_invalid"


async def test_the_transcript_arrives_once_without_notes_across_an_outage_and_a_dead_sender(crm_stack, sink):
    owner = await crm_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    assert (await crm_stack.call("PUT", "/api/project/email", owner, json=settings(sink))).status == 200
    visitor, cid = await conversation_with_a_note(crm_stack, owner)

    # Refused at once: not an address; nothing is queued.
    answer = await ask(visitor, "nobody", "t0")
    assert answer["type"] == "error" and answer["code"] == "email_invalid"

    # 1. The plain case: one email, both sides, no note.
    assert (await ask(visitor, " anna@client.example ", "t1"))["type"] == "transcript_requested"
    await eventually(lambda: len(sink.messages) == 1, timeout=30, what="the transcript in the sink")
    mail = sink.messages[0]
    assert mail["rcpt_to"] == ["anna@client.example"] and mail["subject"] == "Your conversation with Shop Example"
    assert "Is the blue sofa in stock?" in mail["text"] and "Yes, two left." in mail["text"]
    assert "Is the blue sofa in stock?" in mail["html"]
    assert NOTE not in mail["text"] and NOTE not in mail["html"] and "300 EUR" not in mail["html"]
    [sent] = await deliveries(crm_stack, owner)
    assert sent["status"] == "sent" and sent["reason"] == "requested" and sent["conversation_id"] == cid
    assert mail["message_id"] == f"<{sent['id']}@shop.example>"

    # 2. The SMTP server is down: the attempt fails and is tried again; up again, it arrives once.
    await sink.stop_smtp()
    assert (await ask(visitor, "anna@client.example", "t2"))["type"] == "transcript_requested"

    async def failed_once():
        rows = await deliveries(crm_stack, owner)
        return rows[0]["status"] == "pending" and rows[0]["attempts"] >= 1 and "Could not reach" in (
            rows[0]["last_error"] or "")
    await eventually(failed_once, timeout=30, what="a failed attempt logged")
    await sink.start_smtp("127.0.0.1", sink.port)
    await eventually(lambda: len(sink.messages) == 2, timeout=60, what="the transcript after the outage")

    # 3. The sender dies mid-attempt (it claimed the row, then nothing): its lease lapses and
    # another attempt sends it - once.
    crm_stack.bridge.app[TUNING].lease = 1.5
    real_send, hung = email_deliveries.smtp_send, asyncio.Event()

    async def dies(settings_, message):
        email_deliveries.smtp_send = real_send   # the next attempt is a healthy process's
        hung.set()
        await asyncio.Event().wait()              # never returns, never records: as if killed
    email_deliveries.smtp_send = dies
    try:
        assert (await ask(visitor, "anna@client.example", "t3"))["type"] == "transcript_requested"
        await eventually(hung.is_set, timeout=30, what="the attempt that dies")
        await eventually(lambda: len(sink.messages) == 3, timeout=30, what="the transcript after the lease lapsed")
    finally:
        email_deliveries.smtp_send = real_send
    await asyncio.sleep(2)   # a late second copy would be here by now
    ids = [m["message_id"] for m in sink.messages]
    assert len(ids) == 3 and len(set(ids)) == 3, ids
    rows = await deliveries(crm_stack, owner)
    assert [r["status"] for r in rows] == ["sent", "sent", "sent"] and rows[0]["attempts"] == 2
    await visitor.drop()


async def test_on_close_it_goes_by_itself_to_the_email_the_visitor_left(crm_stack, sink):
    owner = await crm_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    assert (await crm_stack.call("PUT", "/api/project/email", owner,
                                 json=settings(sink, on_close=True, language="ru"))).status == 200
    visitor, cid = await conversation_with_a_note(crm_stack, owner)
    await visitor.ws.send_json({"type": "contacts", "id": "c1", "email": "boris@client.example"})
    await visitor.wait_for(lambda: any(f.get("type") == "contacts_saved" for f in visitor.frames), "contacts")
    r = await crm_stack.call("POST", f"/api/conversations/{cid}/status", owner, json={"status": "closed"})
    assert r.status == 200, await r.text()
    await eventually(lambda: len(sink.messages) == 1, timeout=30, what="the transcript on close")
    assert sink.messages[0]["rcpt_to"] == ["boris@client.example"]
    assert sink.messages[0]["subject"] == "Ваш диалог с Shop Example" and NOTE not in sink.messages[0]["text"]

    # Closed without an email: skipped, and the log says why.
    other = ScriptedVisitor(crm_stack.gateway)
    await other.start()
    await other.send_and_wait("Just looking")
    r = await crm_stack.call("POST", f"/api/conversations/{other.conversation_id}/status", owner,
                             json={"status": "closed"})
    assert r.status == 200

    async def skipped():
        rows = await deliveries(crm_stack, owner)
        return any(r["status"] == "skipped" and r["last_error"] == "The visitor left no email." for r in rows)
    await eventually(skipped, timeout=30, what="the close without an email skipped")
    assert len(sink.messages) == 1
    rows = await crm_stack.bridge.app[POOL].fetch("select * from email_deliveries")
    assert all("@" not in str(dict(r)) for r in rows)   # no address is kept in crm-bridge
    for v in (visitor, other):
        await v.drop()
