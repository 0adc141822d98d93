"""The conversation service gives every input a final answer, called as the gateway
calls it (signed, through stack.conversation_client): hostile or careless input is a
4xx with a code, never a 5xx; real-world input (long page URLs, stray control
characters) is stored; and an operator's Idempotency-Key counts for that operator
only."""
from __future__ import annotations

import uuid

import orjson
import pytest

from parley.contract import ACTOR_HEADER
from parley.eventstore import ConcurrencyConflict
from parley.service import STORE
from parley.service_client import path

PROJECT = "demo"


def operator(name: str, *, is_admin: bool = False, project: str = PROJECT) -> dict:
    return {"id": str(uuid.uuid4()), "project": project, "name": name, "is_admin": is_admin,
            "avatar_url": None, "email": None}


OLGA, PETR, ADMIN = operator("Olga"), operator("Petr"), operator("Anna Admin", is_admin=True)


def as_(actor: dict | str) -> dict[str, str]:
    return {ACTOR_HEADER: actor if isinstance(actor, str) else orjson.dumps(actor).decode()}


async def call(stack, method: str, path_: str, **kwargs):
    return await stack.conversation_client.call(method, path_, **kwargs)


async def visitor_message(stack, visitor_id: str, text: str = "Hello", **extra):
    answer = await call(stack, "POST", path("internal", "visitor", "messages"), json={
        "project_id": PROJECT, "visitor_id": visitor_id, "message_id": str(uuid.uuid4()), "text": text, **extra})
    return answer


async def new_conversation(stack, taken_by: dict | None = None) -> str:
    answer = await visitor_message(stack, f"v-{uuid.uuid4().hex[:12]}")
    assert answer.status == 200, answer.raw
    conversation_id = answer.body["conversation_id"]
    if taken_by is not None:
        taken = await call(stack, "POST", path("api", "conversations", conversation_id, "take"), headers=as_(taken_by))
        assert taken.status == 200, taken.raw
    return conversation_id


async def events_of(stack, conversation_id: str) -> list[dict]:
    answer = await call(stack, "GET", path("internal", "conversations", conversation_id, "events"))
    assert answer.status == 200, answer.raw
    return answer.body["events"]


def refused(answer, status: int, code: str) -> bool:
    return (answer.status, (answer.body or {}).get("error", {}).get("code")) == (status, code)


# ---- every route, hostile input ---------------------------------------------------------

def _visitor(**fields) -> dict:
    return {"json": {"project_id": PROJECT, "visitor_id": "v-hostile", "message_id": "m-1", "text": "hi", **fields}}


BAD_IDS = ["not-a-uuid", "\x00", "a/b", "1", "%2e%2e"]


def _spellings(cid: str) -> list[str]:
    """Other spellings uuid.UUID would take for the same conversation."""
    return [f"urn:uuid:{cid}", "{" + cid + "}", cid.replace("-", ""), " " + cid]


def hostile_calls(cid: str, unknown: str) -> list[tuple[str, str, dict, int, str]]:
    """(method, path, call kwargs, expected status, expected code) for every route.
    `cid` is a conversation Olga has taken, `unknown` a well-formed id of none."""
    calls = []
    messages = path("internal", "visitor", "messages")
    for fields, status, code in [
        ({"message_id": 5}, 422, "message_id_required"), ({"message_id": ""}, 422, "message_id_required"),
        ({"message_id": "m" * 65}, 422, "message_id_required"), ({"message_id": None}, 422, "message_id_required"),
        ({"text": []}, 422, "text_invalid"), ({"text": {}}, 422, "text_invalid"), ({"text": 5}, 422, "text_invalid"),
        ({"text": ""}, 422, "text_empty"), ({"text": "\x01\x02\x7f"}, 422, "text_empty"),
        ({"text": "x" * 4001}, 413, "text_too_long"), ({"text": "nul\x00"}, 422, "nul_character"),
        ({"attachment": "x"}, 422, "attachment_invalid"), ({"attachment": {"file_id": 1}}, 422, "attachment_invalid"),
        ({"attachment": []}, 422, "attachment_invalid"),
        ({"visitor_id": {}}, 422, "visitor_required"), ({"visitor_id": "v" * 65}, 422, "visitor_required"),
        ({"visitor_id": ""}, 422, "visitor_required"), ({"project_id": 5}, 422, "visitor_required"),
        ({"project_id": "p" * 101}, 422, "visitor_required"),
    ]:
        calls.append(("POST", messages, _visitor(**fields), status, code))
    calls += [
        ("POST", messages, {"body": b"[1, 2]", "content_type": "application/json"}, 400, "invalid_json"),
        ("POST", messages, {"body": b'{"text": "\\ud800"}', "content_type": "application/json"}, 400, "invalid_json"),
        ("POST", messages, {"body": b"{\"text\": \xff}", "content_type": "application/json"}, 400, "invalid_json"),
        ("POST", messages, {"body": b"text=hi", "content_type": "text/plain"}, 415, "json_required"),
    ]
    for route in ("params", "contacts"):
        calls.append(("POST", path("internal", "visitor", route), {"json": {"project_id": PROJECT, "visitor_id": {}}},
                      422, "visitor_required"))
    # params need a conversation; contacts start one (the offline form), so they are refused before that
    calls.append(("POST", path("internal", "visitor", "params"),
                  {"json": {"project_id": PROJECT, "visitor_id": "v-nobody", "params": {"a": "b"}}}, 409,
                  "no_conversation"))
    calls.append(("POST", path("internal", "visitor", "contacts"),
                  {"json": {"project_id": PROJECT, "visitor_id": "v-nobody", "phone": "12"}}, 422, "phone_invalid"))
    visitor = {"project_id": PROJECT, "visitor_id": "v-hostile"}  # has a conversation by then (see the test)
    for params, status, code in [([], 422, "params_invalid"), ("x", 422, "params_invalid"),
                                 ({"k": []}, 422, "params_invalid"), ({"k": {}}, 422, "params_invalid"),
                                 ({"": "v"}, 422, "params_invalid"), (None, 422, "params_invalid"),
                                 ({f"k{i}": "v" for i in range(21)}, 413, "params_too_many")]:
        calls.append(("POST", path("internal", "visitor", "params"), {"json": {**visitor, "params": params}},
                      status, code))
    for contacts, code in [({"name": 5}, "name_invalid"), ({"phone": []}, "phone_invalid"),
                           ({"email": {}}, "email_invalid"), ({"email": "e" * 201}, "email_invalid"),
                           ({"phone": "call me"}, "phone_invalid"), ({"email": "vera@"}, "email_invalid"),
                           ({}, "contacts_empty"), ({"name": " \x01 "}, "contacts_empty")]:
        calls.append(("POST", path("internal", "visitor", "contacts"), {"json": {**visitor, **contacts}}, 422, code))
    lookup = path("internal", "visitor", "conversation")
    for params in ({}, {"project_id": PROJECT}, {"visitor_id": "v"}, {"project_id": PROJECT, "visitor_id": "v" * 65},
                   {"project_id": "", "visitor_id": "v"}, {"project_id": "p" * 101, "visitor_id": "v"}):
        calls.append(("GET", lookup, {"params": params}, 422, "visitor_required"))

    for bad in BAD_IDS + _spellings(cid):
        calls += [
            ("GET", path("internal", "conversations", bad, "events"), {}, 404, "not_found"),
            ("GET", path("internal", "conversations", bad, "summary"), {}, 404, "not_found"),
            ("GET", path("api", "conversations", bad), {"headers": as_(OLGA)}, 404, "not_found"),
        ]
        for action in ("take", "messages", "notes", "status", "lead"):
            calls.append(("POST", path("api", "conversations", bad, action),
                          {"headers": as_(OLGA), "json": {"text": "hi", "status": "closed"}}, 404, "not_found"))
        calls.append(("POST", path("api", "conversations", bad, "assign"),
                      {"headers": as_(ADMIN), "json": {"operator": OLGA}}, 404, "not_found"))
    calls += [
        ("GET", path("internal", "conversations", unknown, "summary"), {}, 404, "not_found"),
        ("GET", path("api", "conversations", unknown), {"headers": as_(OLGA)}, 404, "not_found"),
        ("POST", path("api", "conversations", unknown, "take"), {"headers": as_(OLGA)}, 404, "not_found"),
    ]
    for after in ("abc", "1e3", "1.5", "0x10"):
        calls.append(("GET", path("internal", "conversations", cid, "events"), {"params": {"after": after}},
                      422, "after_invalid"))

    # who acts: only a well-formed operator, with a JSON boolean is_admin
    for actor in [None, "", "not json", "[]", "null", {**OLGA, "is_admin": "false"}, {**OLGA, "is_admin": 1},
                  {**OLGA, "is_admin": None}, {k: v for k, v in OLGA.items() if k != "is_admin"},
                  {**OLGA, "id": "olga"}, {**OLGA, "id": 5}, {**OLGA, "project": 5}, {**OLGA, "project": ""},
                  {**OLGA, "name": ["Olga"]}, {**OLGA, "avatar_url": 5}, {**OLGA, "email": {}}]:
        headers = {} if actor is None else as_(actor)
        calls += [
            ("GET", path("api", "inbox"), {"headers": headers}, 401, "unauthenticated"),
            ("GET", path("api", "conversations", cid), {"headers": headers}, 401, "unauthenticated"),
            ("POST", path("api", "conversations", cid, "messages"), {"headers": headers, "json": {"text": "hi"}},
             401, "unauthenticated"),
        ]
    calls += [
        ("GET", path("api", "inbox"), {"headers": as_(OLGA), "params": {"view": "everything"}}, 422, "view_invalid"),
        ("GET", path("api", "inbox"), {"headers": as_(OLGA), "params": {"view": "all"}}, 403, "forbidden"),
    ]

    def command(action, body, actor=OLGA, **kwargs):
        return ("POST", path("api", "conversations", cid, action), {"headers": as_(actor), "json": body, **kwargs})
    for body, status, code in [({"text": []}, 422, "text_invalid"), ({"text": 5}, 422, "text_invalid"),
                               ({}, 422, "text_empty"), ({"text": "\x1b\x07"}, 422, "text_empty"),
                               ({"text": "x" * 4001}, 413, "text_too_long"), ({"text": "\x00"}, 422, "nul_character"),
                               ({"text": "", "attachment": "x"}, 422, "attachment_invalid"),
                               ({"text": "hi", "attachment": {"file_id": "a" * 32}}, 422, "attachment_invalid"),
                               ({"text": "hi", "attachment": 5}, 422, "attachment_invalid")]:
        calls.append((*command("messages", body), status, code))
    for body, status, code in [({"text": []}, 422, "text_invalid"), ({}, 422, "text_empty"),
                               ({"text": {"a": 1}}, 422, "text_invalid")]:
        calls.append((*command("notes", body), status, code))
    for status_value in (1, None, [], {}, "open", "new", True):
        calls.append((*command("status", {"status": status_value}), 422, "status_invalid"))
    for body in ({}, {"operator": "Olga"}, {"operator": []}, {"operator": {**OLGA, "id": 5}},
                 {"operator": {**OLGA, "id": "urn:uuid:" + OLGA["id"]}}, {"operator": {**OLGA, "name": 5}},
                 {"operator": {**OLGA, "name": ""}}, {"operator": {**OLGA, "project": []}},
                 {"operator": {**OLGA, "avatar_url": 5}}):
        calls.append((*command("assign", body, ADMIN), 422, "operator_required"))
    calls += [
        (*command("assign", {"operator": OLGA}, PETR), 403, "forbidden"),
        (*command("assign", {"operator": {**OLGA, "project": "elsewhere"}}, ADMIN), 404, "not_found"),
        (*command("messages", {"text": "hi"}, PETR), 404, "not_found"),          # Olga's conversation
        (*command("take", {}, PETR), 409, "already_taken"),
        ("POST", path("api", "conversations", cid, "messages"),
         {"headers": as_(OLGA), "body": b'{"text": "hi"}', "content_type": "text/plain"}, 415, "json_required"),
        ("POST", path("api", "conversations", cid, "messages"),
         {"headers": as_(OLGA), "body": b'"hi"', "content_type": "application/json"}, 400, "invalid_json"),
    ]
    for key in ("short", "k" * 129, "has space in it"):
        for action in ("messages", "notes", "status", "lead", "take"):
            calls.append(("POST", path("api", "conversations", cid, action),
                          {"headers": {**as_(OLGA), "Idempotency-Key": key}, "json": {"text": "hi", "status": "closed"}},
                          422, "idempotency_key_invalid"))
    return calls


async def test_every_route_gives_hostile_input_a_final_answer(stack):
    cid = await new_conversation(stack, taken_by=OLGA)
    hostile = await call(stack, "POST", path("internal", "visitor", "messages"), **_visitor(message_id="first"))
    assert hostile.status == 200, hostile.raw  # v-hostile has a conversation for the params/contacts cases
    before = len(await events_of(stack, cid))

    calls = hostile_calls(cid, str(uuid.uuid4()))
    routes = {(method, _route_of(p)) for method, p, *_ in calls}
    assert len(routes) == 14, sorted(routes)  # every route of api.ROUTES is tried
    wrong = []
    for method, path_, kwargs, status, code in calls:
        answer = await call(stack, method, path_, **kwargs)
        error = (answer.body or {}).get("error", {}) if isinstance(answer.body, dict) else {}
        if (answer.status, error.get("code")) != (status, code) or not error.get("message"):
            wrong.append((method, path_, str(kwargs)[:120], (status, code), answer.status, answer.raw[:200]))
    assert not wrong, "\n".join(map(str, wrong))
    assert len(await events_of(stack, cid)) == before  # nothing refused was stored


def _route_of(path_: str) -> str:
    parts = path_.split("/")
    if parts[1] == "internal" and parts[2] == "conversations" or parts[1] == "api" and parts[2] == "conversations":
        parts[3] = "{id}"
    return "/".join(parts)


async def test_a_store_that_stays_contended_asks_to_try_again(stack, monkeypatch):
    async def contended(conn, appends, **along):   # every append, batched or alone, finds its stream moved on
        raise ConcurrencyConflict(appends[0].stream_id, 1, 2)
    monkeypatch.setattr(stack.conversation.app[STORE], "append_locked", contended)
    answer = await visitor_message(stack, "v-contended")
    assert refused(answer, 503, "busy"), answer.raw
    assert answer.headers["Retry-After"].isdigit()


# ---- real-world visitor input is stored ----------------------------------------------------

@pytest.mark.parametrize("length", [3_000, 10_000])
async def test_a_first_message_from_a_long_page_url_is_stored_with_the_url_cut(stack, length):
    url = ("https://shop.example.com/catalog/item?utm_source=newsletter&utm_medium=email"
           "&utm_campaign=" + "spring-sale-" * (length // 12))[:length]
    assert len(url) == length
    answer = await visitor_message(stack, f"v-long-{length}", "Do you ship to Kazan?", page_url=url)
    assert answer.status == 200, answer.raw
    cid = answer.body["conversation_id"]
    started, posted = await events_of(stack, cid)
    assert started["data"]["page_url"] == url[:2000]
    assert posted["data"]["text"] == "Do you ship to Kazan?" and answer.body["seq"] == posted["stream_version"]
    transcript = await call(stack, "GET", path("api", "conversations", cid), headers=as_(ADMIN))
    assert transcript.body["conversation"]["page_url"] == url[:2000]

    # the next message from another long page is stored too, with the page recorded cut
    other = url.replace("spring", "autumn")
    answer = await visitor_message(stack, f"v-long-{length}", "And to Omsk?", page_url=other)
    assert answer.status == 200, answer.raw
    visited = [e for e in await events_of(stack, cid) if e["type"] == "chat.page_visited"]
    assert [e["data"]["page_url"] for e in visited] == [other[:2000]]


@pytest.mark.parametrize("page_url", [5, [], {"href": "x"}, True, ""])
async def test_a_page_url_that_is_not_text_is_ignored(stack, page_url):
    answer = await visitor_message(stack, f"v-{uuid.uuid4().hex[:8]}", page_url=page_url)
    assert answer.status == 200, answer.raw
    assert (await events_of(stack, answer.body["conversation_id"]))[0]["data"]["page_url"] is None


async def test_control_characters_are_stripped_from_messages_and_notes(stack):
    answer = await visitor_message(stack, "v-controls", "Hello\x01 \x1b[31mworld\x7f\r\nsecond\tline\x08")
    assert answer.status == 200, answer.raw
    cid = answer.body["conversation_id"]
    await call(stack, "POST", path("api", "conversations", cid, "take"), headers=as_(OLGA))
    note = await call(stack, "POST", path("api", "conversations", cid, "notes"), headers=as_(OLGA),
                      json={"text": "\x07VIP\x1f customer"})
    assert note.status == 200, note.raw
    reply = await call(stack, "POST", path("api", "conversations", cid, "messages"), headers=as_(OLGA),
                       json={"text": "Hi\x0c there"})
    assert reply.status == 200, reply.raw
    texts = {e["type"]: e["data"]["text"] for e in await events_of(stack, cid) if "text" in e["data"]}
    assert texts == {"chat.visitor_message_posted": "Hello [31mworld\nsecond\tline",
                     "chat.note_added": "VIP customer", "chat.operator_replied": "Hi there"}
    # a NUL is refused as a whole (read_json), a final answer the widget shows, not a retry
    answer = await visitor_message(stack, "v-controls", "nul\x00byte")
    assert refused(answer, 422, "nul_character"), answer.raw


# ---- idempotency keys count per project, operator and conversation ---------------------------

async def reply(stack, actor: dict, cid: str, text: str, key: str, action: str = "messages"):
    return await call(stack, "POST", path("api", "conversations", cid, action), headers={**as_(actor),
                      "Idempotency-Key": key}, json={"text": text})


async def test_two_operators_with_the_same_idempotency_key_both_get_their_reply_stored(stack):
    key = str(uuid.uuid4())
    mine = await new_conversation(stack, taken_by=OLGA)
    petrs = await new_conversation(stack, taken_by=PETR)

    for actor, cid, text in [(OLGA, mine, "Olga here"), (ADMIN, mine, "Admin here"), (PETR, petrs, "Petr here")]:
        first = await reply(stack, actor, cid, text, key)
        assert first.status == 200, first.raw
        assert [e["data"]["text"] for e in first.body["events"]] == [text], (actor["name"], first.body)
        again = await reply(stack, actor, cid, text, key)  # a retry of the same command
        assert again.status == 200 and again.body["events"] == []

    def replies(events):
        return [(e["data"]["operator_name"], e["data"]["text"]) for e in events if e["type"] == "chat.operator_replied"]
    assert replies(await events_of(stack, mine)) == [("Olga", "Olga here"), ("Anna Admin", "Admin here")]
    assert replies(await events_of(stack, petrs)) == [("Petr", "Petr here")]

    # notes and lead requests too (a lead needs a way to reach the client; a second one, again)
    contacts = await call(stack, "POST", path("api", "conversations", mine, "contacts"), headers=as_(OLGA),
                          json={"phone": "+79001234567"})
    assert contacts.status == 200, contacts.raw
    for actor in (OLGA, ADMIN):
        assert (await reply(stack, actor, mine, f"note by {actor['name']}", key, "notes")).status == 200
        lead = await call(stack, "POST", path("api", "conversations", mine, "lead"),
                          headers={**as_(actor), "Idempotency-Key": key}, json={"again": True})
        assert lead.status == 200 and len(lead.body["events"]) == 1, lead.raw
    events = await events_of(stack, mine)
    assert [e["data"]["text"] for e in events if e["type"] == "chat.note_added"] == [
        "note by Olga", "note by Anna Admin"]
    assert [e["data"]["operator_id"] for e in events if e["type"] == "lead.requested"] == [OLGA["id"], ADMIN["id"]]


async def test_an_operator_key_equal_to_a_visitor_message_id_does_not_swallow_the_reply(stack):
    key = str(uuid.uuid4())
    answer = await call(stack, "POST", path("internal", "visitor", "messages"), json={
        "project_id": PROJECT, "visitor_id": "v-same-id", "message_id": key, "text": "Hello"})
    cid = answer.body["conversation_id"]
    await call(stack, "POST", path("api", "conversations", cid, "take"), headers=as_(OLGA))
    first = await reply(stack, OLGA, cid, "Hi!", key)
    assert first.status == 200 and len(first.body["events"]) == 1, first.raw
    # the key stays the client's: what the events carry is an id of our own
    assert first.body["events"][0]["data"]["message_id"] != key
    # and one operator's key in one conversation is still one command in another
    other = await new_conversation(stack, taken_by=OLGA)
    second = await reply(stack, OLGA, other, "Hi there!", key)
    assert second.status == 200 and len(second.body["events"]) == 1, second.raw
