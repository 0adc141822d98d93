"""Search across history (issue 24, item 1) on the real stack, real Kafka and PostgreSQL:
Russian and English word forms, phones in any formatting, contacts, params and notes;
what each operator may see; pages by cursor with nothing twice or lost; bad input gets a
final 422; an erased conversation is gone from search at once; and the entries rebuilt
from the topic equal the live ones."""
from __future__ import annotations

import asyncio
import uuid

import orjson

from parley.contract import conversation_stream
from parley.envelope import new_event
from parley.service import POOL, STORE
from parley.subject_keys import LocalOpener

import conversation.__main__ as conversation_main
from conversation import erasure, search_index, search_projection, search_views
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually, rebuilt_until
from tests.visitor import ScriptedVisitor


# Forged cursors: a time without its zone; a window of 7 days, which no search uses.
NAIVE_TIME_CURSOR = ("WzEsIjIwMjYtMDEtMDFUMDA6MDA6MDAiLCI4ZDNlNGM0ZS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEiLCJrIiwi"
                     "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMCIsbnVsbF0")
UNKNOWN_WINDOW_CURSOR = ("WzEsIjIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDAiLCI4ZDNlNGM0ZS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEiLC"
                         "JrIiwiMjAyNi0wMS0wMVQwMDowMDowMCswMDowMCIsN10")


async def search(stack, token: str, q: str, after: str | None = None):
    r = await stack.call("GET", "/api/search", token, params={"q": q, **({"after": after} if after else {})})
    return r.status, await r.json()


def found(body: dict) -> dict[str, str]:
    """conversation id -> the matched words of its first result."""
    out: dict[str, str] = {}
    for result in body["results"]:
        out.setdefault(result["conversation_id"], " ".join(p["text"] for p in result["snippet"] if p["match"]))
    return out


async def conversation_of(stack, text: str, **extra) -> tuple[ScriptedVisitor, str]:
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait(text, **extra)
    await visitor.wait_for(lambda: visitor.conversation_id is not None, "the conversation id")
    return visitor, visitor.conversation_id


async def test_search_finds_word_forms_phones_notes_and_params_as_each_operator_may_see(stack, platform):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    anna_id, anna, _ = await stack.add_operator(owner, "Anna Search")
    windows_visitor, windows = await conversation_of(stack, "Сколько стоят пластиковые окна?")   # unclaimed
    sofa_visitor, sofa = await conversation_of(stack, "I ordered a sofa last week")               # Anna's
    assert (await stack.call("POST", f"/api/conversations/{sofa}/assign", owner,
                             json={"operator_id": anna_id})).status == 200
    kitchen_visitor, kitchen = await conversation_of(stack, "Добрый день")                        # the owner's
    assert (await stack.call("POST", f"/api/conversations/{kitchen}/take", owner)).status == 200
    assert (await stack.call("POST", f"/api/conversations/{kitchen}/notes", owner,
                             json={"text": "Клиент хочет окно на кухне"})).status == 200
    r = await stack.call("PUT", f"/api/conversations/{kitchen}/contacts", owner,
                         json={"name": "Ольга Петрова", "phone": "+7 (916) 123-45-67", "email": "olga@example.com"})
    assert r.status == 200, await r.text()
    await kitchen_visitor.ws.send_str(orjson.dumps({"type": "params", "params": {"office": "Казань"}}).decode())

    async def all_indexed() -> bool:
        return {windows, kitchen} <= set(found((await search(stack, owner, "окно"))[1])) and \
            kitchen in found((await search(stack, owner, "Казань"))[1])
    await eventually(all_indexed, timeout=20, what="the conversations searchable")

    status, body = await search(stack, owner, "окно")                     # окна, окно: one word
    assert status == 200 and found(body) == {windows: "окна", kitchen: "окно"}
    assert all(set(r["conversation"]) >= {"status", "visitor_name", "assignee_name"} for r in body["results"])
    assert found((await search(stack, owner, "order"))[1]) == {sofa: "ordered"}
    assert set(found((await search(stack, owner, "8 916 123 45 67"))[1])) == {kitchen}    # the phone, reformatted
    assert set(found((await search(stack, owner, "9161234567"))[1])) == {kitchen}
    assert set(found((await search(stack, owner, "ольга"))[1])) == {kitchen}              # the contact's name
    assert set(found((await search(stack, owner, "olga@example.com"))[1])) == {kitchen}

    # Anna: her own and the unclaimed, not the owner's conversation or its note.
    assert set(found((await search(stack, anna, "окно"))[1])) == {windows}
    assert set(found((await search(stack, anna, "order"))[1])) == {sofa}
    assert found((await search(stack, anna, "Казань"))[1]) == {}
    for v in (windows_visitor, sofa_visitor, kitchen_visitor):
        await v.drop()


async def test_pages_follow_each_other_with_nothing_twice_or_lost_and_bad_input_is_refused(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    visitor, cid = await conversation_of(stack, "Когда будет доставка?")
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200
    for i in range(44):
        text = f"доставка {i}" + " доставкой" * (i % 3)   # three ranks, many ties broken by time
        r = await stack.call("POST", f"/api/conversations/{cid}/notes", owner, json={"text": text})
        assert r.status == 200, await r.text()

    async def all_there() -> bool:
        return await stack.conversation.app[POOL].fetchval(
            "select count(*) from search_entries where conversation_id = $1", uuid.UUID(cid)) == 45
    await eventually(all_there, timeout=20, what="45 entries")
    keys, after, pages = [], None, 0
    while True:
        status, body = await search(stack, owner, "доставки", after)
        assert status == 200
        pages += 1
        keys += [(r["at"], " ".join(p["text"] for p in r["snippet"])) for r in body["results"]]
        if body["next"] is None:
            break
        after = body["next"]
    assert pages == 3 and len(keys) == 45 and len(set(keys)) == 45
    assert body["capped"] is False

    # More matches than a search looks at (search_views.CANDIDATES): the best of the newest
    # are shown and the answer says so.
    await stack.conversation.app[POOL].execute(
        """insert into search_entries (conversation_id, key, project_id, kind, text, at, document)
           select $1, 'n:extra-' || i, 'demo', 'note', 'доставка ' || i, now() - make_interval(secs => i),
                  to_tsvector('russian', 'доставка ' || i)
           from generate_series(1, $2) as i""", uuid.UUID(cid), search_views.CANDIDATES)
    status, body = await search(stack, owner, "доставки")
    assert status == 200 and body["capped"] is True and len(body["results"]) == search_views.PAGE

    for params, code in [({}, "q_required"), ({"q": "   "}, "q_required"), ({"q": "x" * 201}, "q_too_long"),
                         ({"q": "a\x00b"}, "q_invalid"), ({"q": "a", "after": "garbage!"}, "cursor_invalid"),
                         ({"q": "a", "after": "WzEsIjIwMjYtMDEtMDEiLCJub3QtYS11dWlkIiwiayJd"}, "cursor_invalid"),
                         ({"q": "a", "after": NAIVE_TIME_CURSOR}, "cursor_invalid"),
                         ({"q": "a", "after": UNKNOWN_WINDOW_CURSOR}, "cursor_invalid")]:
        r = await stack.call("GET", "/api/search", owner, params=params)
        assert r.status == 422 and (await r.json())["error"]["code"] == code, (params, await r.text())
    assert (await stack.call("GET", "/api/search", None, params={"q": "a"})).status == 401
    await visitor.drop()


async def test_an_erased_conversation_is_gone_from_search_and_a_rebuild_equals_the_live_entries(stack, platform):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    mark = f"zebra{uuid.uuid4().hex[:8]}"
    kept_visitor, kept = await conversation_of(stack, f"{mark} kept, phone 8 (903) 555-12-34")
    gone_visitor, gone = await conversation_of(stack, f"{mark} to be erased")
    assert (await stack.call("POST", f"/api/conversations/{kept}/take", owner)).status == 200
    assert (await stack.call("POST", f"/api/conversations/{kept}/notes", owner, json={"text": f"{mark} note"})).status == 200

    async def both() -> bool:
        return set(found((await search(stack, owner, mark))[1])) == {kept, gone}
    await eventually(both, timeout=20, what="both conversations searchable")

    await erasure.erase_conversation(stack.conversation.app[STORE], gone, str(uuid.uuid4()))
    assert set(found((await search(stack, owner, mark))[1])) == {kept}     # at once, not when the topic catches up
    await asyncio.sleep(1.0)                                                # and the consumer does not bring it back
    assert set(found((await search(stack, owner, mark))[1])) == {kept}
    # Nor does an event of it that a key cached before the erasure opened afterwards (a
    # batch on its way to the projection): an erased conversation is not indexed again.
    late = new_event("chat.visitor_message_posted", conversation_stream(gone),
                     {"message_id": "late", "text": f"{mark} late", "attachment": None}, project_id="demo").with_version(99)
    async with stack.conversation.app[POOL].acquire() as conn:
        await search_projection.apply(conn, [late])
        assert await conn.fetchval("select count(*) from search_entries where conversation_id = $1", gone) == 0

    pool = stack.conversation.app[POOL]
    rows = """select conversation_id::text, key, kind, text, at, document::text from search_entries
              where conversation_id = any($1::uuid[]) order by 1, 2"""
    live = [tuple(r) for r in await pool.fetch(rows, [kept, gone])]
    assert live and all(r[0] == kept for r in live)
    async def rebuilt(scratch) -> bool:
        return [tuple(r) for r in await scratch.fetch(rows, [kept, gone])] == live
    await rebuilt_until(platform, conversation_main.SPEC.migrations, search_projection.apply, LocalOpener(pool).open,
                        rebuilt, types=search_index.TYPES, what="the entries rebuilt from Kafka as they are live")
    for v in (kept_visitor, gone_visitor):
        await v.drop()
