"""Visitor contacts end to end (real PostgreSQL and Kafka): the widget's `contacts` frame
before and after the first message, the operator's PUT, refusals naming the field, the
inbox projection, and contacts never reaching a visitor."""
import asyncio
import uuid

from tests.conversations.test_conversation_flow import operator_socket
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually


async def contacts(visitor: ScriptedVisitor, **fields) -> dict:
    """Send the contact form and wait for its answer: `contacts_saved` or an error (same id)."""
    frame_id = str(uuid.uuid4())
    await visitor.ws.send_json({"type": "contacts", "id": frame_id, **fields})
    answer = []

    def answered():
        answer[:] = [f for f in visitor.frames if f.get("id") == frame_id and f["type"] in ("contacts_saved", "error")]
        return bool(answer)
    await visitor.wait_for(answered, "the answer to the contact form")
    return answer[0]


async def row(stack, token, conversation_id) -> dict:
    r = await stack.call("GET", f"/api/conversations/{conversation_id}", token)
    assert r.status == 200, await r.text()
    return (await r.json())["conversation"]


async def test_contacts_before_the_first_message_start_the_conversation(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, olga, _ = await stack.add_operator(owner, "Olga Operator")
    ws, pushes, _ = await operator_socket(stack, olga)
    await asyncio.sleep(0.3)

    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    assert visitor.conversation_id is None
    await visitor.ws.send_json({"type": "params", "params": {"product": "Windows"}})
    saved = await contacts(visitor, name="Vera", phone="8 (900) 123-45-67", email="vera@example.com",
                           page_url="https://shop.example/contacts")
    assert saved["type"] == "contacts_saved", saved

    inbox = (await (await stack.call("GET", "/api/inbox?view=new", olga)).json())["conversations"]
    assert len(inbox) == 1
    conversation = inbox[0]
    assert conversation["visitor_name"] == "Vera"
    assert conversation["contacts"] == {"name": "Vera", "phone": "+79001234567", "email": "vera@example.com"}
    assert conversation["custom_params"] == {"product": "Windows"}  # the params the socket held went along
    assert conversation["page_url"] == "https://shop.example/contacts"
    await eventually(lambda: any(p.get("event") == "chat.contacts_given" and p["data"]["phone"] == "+79001234567"
                                 for p in pushes), what="the live push of the contacts", timeout=15)

    # the first message goes into the same conversation
    await visitor.send_and_wait("Hello")
    again = (await (await stack.call("GET", "/api/inbox?view=new", olga)).json())["conversations"]
    assert [(c["id"], c["last_message_text"]) for c in again] == [(conversation["id"], "Hello")]
    # a reconnecting widget resumes the same conversation
    await visitor.drop()
    await visitor.connect()
    assert visitor.conversation_id == conversation["id"]
    await ws.close()


async def test_contacts_after_the_first_message_and_the_operators_correction(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, olga, _ = await stack.add_operator(owner, "Olga Operator")
    _, petr, _ = await stack.add_operator(owner, "Petr Operator")
    _, anna, _ = await stack.add_operator(owner, "Anna Admin", admin=True)

    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Hello")
    cid = (await (await stack.call("GET", "/api/inbox?view=new", olga)).json())["conversations"][0]["id"]
    assert (await contacts(visitor, name="Vera", phone="900 123 45 67", email=None))["type"] == "contacts_saved"
    assert (await contacts(visitor, email="vera@example.com"))["type"] == "contacts_saved"
    assert (await row(stack, olga, cid))["contacts"] == {"name": "Vera", "phone": "+79001234567",
                                                         "email": "vera@example.com"}

    # unclaimed: nobody but an admin may correct them yet (take it first)
    r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", olga, json={"name": "Vera P."})
    assert r.status == 409 and (await r.json())["error"]["code"] == "not_taken"
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", olga)).status == 200

    # the assignee corrects them: they replace what was known (the email left out is cleared)
    r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", olga,
                         json={"name": "Vera Petrova", "phone": "+7 900 765-43-21"},
                         headers={"Idempotency-Key": "contacts-1"})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["conversation"]["contacts"] == {"name": "Vera Petrova", "phone": "+79007654321"}
    assert body["conversation"]["visitor_name"] == "Vera Petrova"
    [event] = body["events"]
    assert event["event"] == "chat.contacts_given" and event["data"]["by_operator_id"]
    # the same key again: the first outcome, nothing new
    r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", olga,
                         json={"name": "Someone else"}, headers={"Idempotency-Key": "contacts-1"})
    assert r.status == 200 and (await r.json())["conversation"]["version"] == event["seq"]
    assert (await row(stack, olga, cid))["visitor_name"] == "Vera Petrova"

    # another (non-admin) operator does not see it; an admin may correct it
    r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", petr, json={"name": "Mallory"})
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", anna,
                         json={"name": "Vera Petrova", "phone": "+79007654321", "email": "vp@example.com"})
    assert r.status == 200, await r.text()
    assert (await row(stack, olga, cid))["contacts"] == {"name": "Vera Petrova", "phone": "+79007654321",
                                                         "email": "vp@example.com"}
    # without a session: 401
    assert (await stack.call("PUT", f"/api/conversations/{cid}/contacts", None, json={"name": "X"})).status == 401


async def test_bad_contacts_are_refused_naming_the_field(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    for fields, code in [({"phone": "call me maybe"}, "phone_invalid"), ({"phone": "12"}, "phone_invalid"),
                         ({"email": "vera@"}, "email_invalid"), ({"email": "vera@example"}, "email_invalid"),
                         ({"name": "V" * 201}, "name_invalid"), ({"name": 5}, "name_invalid"),
                         ({"name": "", "phone": None}, "contacts_empty")]:
        answer = await contacts(visitor, **fields)
        assert (answer["type"], answer["code"]) == ("error", code), (fields, answer)
    # nothing was started by the refusals
    assert (await (await stack.call("GET", "/api/inbox?view=new", owner)).json())["conversations"] == []

    await visitor.send_and_wait("Hello")
    cid = (await (await stack.call("GET", "/api/inbox?view=new", owner)).json())["conversations"][0]["id"]
    for body, code in [({"phone": "abc"}, "phone_invalid"), ({"email": "a@@b.c"}, "email_invalid"),
                       ({"name": ["Vera"]}, "name_invalid")]:
        r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", owner, json=body)
        assert r.status == 422 and (await r.json())["error"]["code"] == code, (body, await r.text())


async def test_contacts_never_reach_a_visitor(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    first, second = ScriptedVisitor(stack.gateway), ScriptedVisitor(stack.gateway)
    await first.start()
    await second.start()
    await first.send_and_wait("Hi from the first")
    await second.send_and_wait("Hi from the second")
    seen_by_first = len(first.frames)

    assert (await contacts(first, name="Vera Secret", phone="+79001234567",
                           email="vera.secret@example.com"))["type"] == "contacts_saved"
    cid = next(c["id"] for c in (await (await stack.call("GET", "/api/inbox?view=new", owner)).json())["conversations"]
               if c["visitor_name"] == "Vera Secret")
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
    r = await stack.call("PUT", f"/api/conversations/{cid}/contacts", owner,
                         json={"name": "Vera Secret-Corrected", "phone": "+79001234567"})
    assert r.status == 200
    # a message after the contacts: everything before it has been pushed to the sockets by then
    await stack.call("POST", f"/api/conversations/{cid}/messages", owner, json={"text": "Thanks, Vera"})
    await first.wait_for(lambda: "Thanks, Vera" in first.texts("operator_message"), "the reply")
    await second.send_and_wait("Still there?")
    await asyncio.sleep(0.5)

    # the first visitor's socket got the ack of the form, then only what the visitor may see
    new = first.frames[seen_by_first:]
    assert [f["type"] for f in new if f["type"] != "event"] == ["contacts_saved"]
    assert [f["kind"] for f in new if f["type"] == "event"] == ["operator_joined", "operator_message"]
    for visitor in (first, second):
        text = str(visitor.frames)
        assert "Secret" not in text and "79001234567" not in text and "vera.secret" not in text
    # a reconnect's history does not carry them either
    late = ScriptedVisitor(stack.gateway, token=first.token)
    await late.start()
    await asyncio.sleep(0.5)
    assert "Secret" not in str(late.frames) and late.kinds()[0] == "visitor_message"
