"""Issue 23, findings 5 and 6: a file is carried by a message only, only by its uploader,
only in its project and only into one conversation; unsent uploads are bounded per
address and per project, not only per (free) visitor token."""
from __future__ import annotations

import uuid

import pytest

from parley.service import POOL
from devstack.visitor_protocol import token_headers
from tests.visitor import ScriptedVisitor
from tests.edge.conftest import conversation_events

from gateway import files

PDF = b"%PDF-1.4 a visitor's private contract"
OTHER_ACTIONS = ("notes", "take", "status", "lead", "accept", "read")


async def visitor_upload(stack, visitor: ScriptedVisitor, data: bytes = PDF, address: str = "203.0.113.7") -> str:
    r = await stack.gateway.post("/api/visitor/attachments", data=data,
                                 headers={**token_headers(visitor.token), "X-File-Name": "contract.pdf", "X-Forwarded-For": address})
    assert r.status == 201, await r.text()
    return (await r.json())["file_id"]


async def file_row(stack, file_id: str):
    return await stack.gateway.app[POOL].fetchrow(
        "select project_id, conversation_id::text as conversation_id from files where id = $1", file_id)


@pytest.mark.parametrize("action", OTHER_ACTIONS)
async def test_no_command_but_a_reply_carries_a_file(stack, cast, action):
    """Before: `{"attachment": "x"}` on a note stored the note, then answered 500; any
    unsent upload's id, given to take/status/lead..., was linked to the operator's
    conversation and so became downloadable by them."""
    other = ScriptedVisitor(stack.gateway)
    await other.start()
    file_id = await visitor_upload(stack, other)
    before = len(await conversation_events(stack, cast.cid))
    for attachment in ("x", file_id, {"file_id": file_id}, 7):
        r = await stack.call("POST", f"/api/conversations/{cast.cid}/{action}", cast.b,
                             json={"text": "see file", "status": "in_work", "attachment": attachment})
        assert r.status == 422, await r.text()
        assert (await r.json())["error"]["code"] == "attachment_not_allowed"
    assert len(await conversation_events(stack, cast.cid)) == before, "nothing was stored"
    assert (await file_row(stack, file_id))["conversation_id"] is None, "the file was not claimed"
    r = await stack.call("GET", f"/files/{file_id}", cast.b)
    assert r.status == 404, "the visitor's file is not the operator's to download"
    await other.drop()


async def test_a_reply_carries_only_its_senders_unsent_file(stack, cast):
    other = ScriptedVisitor(stack.gateway)
    await other.start()
    theirs = await visitor_upload(stack, other)
    r = await stack.call("POST", f"/api/conversations/{cast.cid}/messages", cast.b,
                         json={"text": "mine now?", "attachment": theirs})
    assert r.status == 422 and (await r.json())["error"]["code"] == "attachment_unknown"

    # B's own file, sent in B's conversation, cannot be sent again into another one
    # (that would let the second conversation's visitor download it).
    r = await stack.call("POST", f"/api/conversations/{cast.cid}/attachments", cast.b, data=PDF,
                         headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, await r.text()
    mine = (await r.json())["file_id"]
    message = {"text": "the offer", "attachment": mine, "message_id": str(uuid.uuid4())}
    r = await stack.call("POST", f"/api/conversations/{cast.cid}/messages", cast.b, json=message)
    assert r.status == 200, await r.text()
    r = await stack.call("POST", f"/api/conversations/{cast.cid}/messages", cast.b, json=message)
    assert r.status == 200, "a resend into the same conversation is the same reply"
    await other.send_and_wait("hello too")
    second = await stack.conversation_client.checked(
        "GET", "/internal/visitor/conversation", params={"project_id": "demo", "visitor_id": other.visitor_id})
    r = await stack.call("POST", f"/api/conversations/{second['conversation_id']}/take", cast.b)
    assert r.status == 200, await r.text()
    r = await stack.call("POST", f"/api/conversations/{second['conversation_id']}/messages", cast.b,
                         json={"text": "same file again", "attachment": mine})
    assert r.status == 422 and (await r.json())["error"]["code"] == "attachment_unknown"
    assert (await file_row(stack, mine))["conversation_id"] == cast.cid
    await other.drop()


async def test_a_file_of_another_project_is_never_claimed(stack, cast):
    """Before: a claim rewrote the other project's file row, and its owner got 404 on their own visitor's file."""
    await stack.create_project("acme", "owner@acme.example", "acme-owner-pass-1")
    acme_owner = await stack.login("owner@acme.example", "acme-owner-pass-1", project="acme")
    stranger = ScriptedVisitor(stack.gateway, project="acme")
    await stranger.start()
    file_id = await visitor_upload(stack, stranger)
    await stranger.send_and_wait("my contract", attachment=file_id)
    for action in ("messages", "notes", "take"):
        r = await stack.call("POST", f"/api/conversations/{cast.cid}/{action}", cast.b,
                             json={"text": "claim", "attachment": file_id})
        assert r.status == 422, await r.text()
    linked = (await file_row(stack, file_id))["conversation_id"]
    assert linked is not None and linked != cast.cid
    r = await stack.call("GET", f"/files/{file_id}", acme_owner)
    assert r.status == 200 and await r.read() == PDF
    await stranger.drop()


async def test_unsent_uploads_are_bounded_per_address_whatever_the_token(stack, monkeypatch):
    """Before: once a token hit `upload_quota`, a new (free) token from the same address
    uploaded at once. Now the address has its own bound, held in PostgreSQL (so across
    replicas); another address is not affected."""
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", "1")   # the test client is the ingress
    monkeypatch.setattr(files, "UNATTACHED_PER_ADDRESS", (5, 10 * 1024 * 1024))
    monkeypatch.setattr(files, "UNATTACHED_PER_UPLOADER", 3)
    uploaded = 0
    codes = []
    for _ in range(4):   # four fresh tokens, one address
        v = ScriptedVisitor(stack.gateway)
        await v.start()
        for _ in range(3):
            r = await stack.gateway.post("/api/visitor/attachments", data=PDF,
                                         headers={**token_headers(v.token), "X-Forwarded-For": "198.51.100.9"})
            if r.status == 201:
                uploaded += 1
            else:
                assert r.status == 429 and r.headers["Retry-After"], await r.text()
                codes.append((await r.json())["error"]["code"])
        await v.drop()
    assert uploaded == 5
    assert set(codes) == {"upload_quota_address"}
    v = ScriptedVisitor(stack.gateway)
    await v.start()
    assert (await stack.gateway.post("/api/visitor/attachments", data=PDF,
                                     headers={**token_headers(v.token), "X-Forwarded-For": "198.51.100.10"})).status == 201
    await v.drop()


async def test_unsent_uploads_are_bounded_per_project(stack, cast, monkeypatch):
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", "1")
    monkeypatch.setattr(files, "UNATTACHED_PER_PROJECT", (1_000, 3 * len(PDF)))
    visitors, statuses, held = [], [], []
    for i in range(4):
        v = ScriptedVisitor(stack.gateway)
        await v.start()
        visitors.append(v)
        r = await stack.gateway.post("/api/visitor/attachments", data=PDF,
                                     headers={**token_headers(v.token), "X-Forwarded-For": f"198.51.100.{20 + i}"})
        statuses.append(r.status)
        if r.status == 201:
            held.append((v, (await r.json())["file_id"]))
        else:
            assert (await r.json())["error"]["code"] == "upload_quota_project"
    assert statuses == [201, 201, 201, 429]
    r = await stack.call("POST", f"/api/conversations/{cast.cid}/attachments", cast.b, data=PDF,
                         headers={"Content-Type": "application/octet-stream"})
    assert r.status == 429, "operators' uploads count in the project's bound too"
    # Quotas count files not yet sent: sending one frees its place.
    v, file_id = held[0]
    await v.send_and_wait("here it is", attachment=file_id)
    r = await stack.gateway.post("/api/visitor/attachments", data=PDF,
                                 headers={**token_headers(visitors[3].token), "X-Forwarded-For": "198.51.100.23"})
    assert r.status == 201, await r.text()
    for v in visitors:
        await v.drop()
