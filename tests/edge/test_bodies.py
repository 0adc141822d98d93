"""Issue 8, item 5: bodies are read whole.

Before, `request.content.read(N)` returned what happened to be buffered, not N bytes: a
3.4 MB attachment was stored as 0.55-0.78 MB with "201 Created", a valid 3 MB avatar
was refused as unreadable, a JSON body arriving in two packets was `invalid_json`, and
a chunked upload (no Content-Length) slipped past the 10 MiB limit. Now uploads are
read counting the real bytes (413 above the limit, nothing kept) and JSON is read to
its end however it arrives. The bytes live in PostgreSQL, so every gateway replica
serves every file."""
from __future__ import annotations

import hashlib
import io
import json
import os

import orjson
from PIL import Image

from parley.service import POOL
from tests.edge.conftest import bearer, raw_request
from devstack.visitor_protocol import token_headers

MB = 1000 * 1000
MiB = 1024 * 1024


def pdf_of(size: int) -> bytes:
    """A file the gateway accepts (a PDF by its first bytes), the rest incompressible noise."""
    head = b"%PDF-1.4\n"
    return head + os.urandom(size - len(head))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def visitor_token(stack) -> str:
    r = await stack.gateway.post("/api/visitor/session", json={"project": "demo"})
    assert r.status == 201, await r.text()
    return (await r.json())["visitor_token"]


async def kept_files(stack) -> tuple[int, int]:
    """Attachments stored: rows, and bytes (which live in the same rows)."""
    row = await stack.gateway.app[POOL].fetchrow(
        "select count(*) as n, coalesce(sum(length(content)), 0) as bytes from files")
    return row["n"], row["bytes"]


async def kept_avatars(stack) -> list[str]:
    return [r["id"] for r in await stack.gateway.app[POOL].fetch("select id from avatars order by id")]

PDF = b"%PDF-1.4\n"


def chunked(head: bytes, total: int):
    """A body of `total` bytes starting with `head`, sent without Content-Length
    (Transfer-Encoding: chunked): only the bytes that arrive can be counted."""
    async def gen():
        yield head
        sent = len(head)
        while sent < total:
            piece = os.urandom(min(256 * 1024, total - sent))
            sent += len(piece)
            yield piece
    return gen()

async def test_large_attachments_come_back_byte_for_byte(stack, cast, bearer_client):
    token = await visitor_token(stack)
    for size in (3 * MB, 9 * MB):
        # A visitor's upload, fetched back with the visitor's token.
        data = pdf_of(size)
        r = await bearer_client.post("/api/visitor/attachments", data=data, headers={**token_headers(token), "X-File-Name": "big.pdf"})
        assert r.status == 201, await r.text()
        stored = await r.json()
        assert stored["size"] == size
        r = await bearer_client.get(stored["url"], headers=token_headers(token))
        assert r.status == 200
        assert sha(await r.read()) == sha(data)

        # An operator's upload into their conversation, fetched back with their session.
        data = pdf_of(size)
        r = await bearer_client.post(f"/api/conversations/{cast.cid}/attachments", data=data,
                                     headers={**bearer(cast.b), "X-File-Name": "big.pdf"})
        assert r.status == 201, await r.text()
        stored = await r.json()
        assert stored["size"] == size
        r = await bearer_client.get(stored["url"], headers=bearer(cast.b))
        assert r.status == 200
        assert sha(await r.read()) == sha(data)


async def test_a_chunked_upload_over_the_limit_is_refused_and_nothing_is_kept(stack, cast, bearer_client):
    token = await visitor_token(stack)
    before = await kept_files(stack)

    r = await bearer_client.post("/api/visitor/attachments", data=chunked(PDF, 11 * MiB), headers=token_headers(token))
    assert r.status == 413, await r.text()
    assert (await r.json())["error"]["code"] == "file_too_large"
    r = await bearer_client.post(f"/api/conversations/{cast.cid}/attachments", data=chunked(PDF, 11 * MiB),
                                 headers=bearer(cast.b))
    assert r.status == 413, await r.text()
    assert await kept_files(stack) == before  # no row, no file, no partial file
    # A chunked upload under the limit is whole.
    r = await bearer_client.post(f"/api/conversations/{cast.cid}/attachments", data=chunked(PDF, 9 * MiB),
                                 headers=bearer(cast.b))
    assert r.status == 201, await r.text()
    assert (await r.json())["size"] == 9 * MiB


async def test_a_3_mb_avatar_is_accepted(stack, cast, bearer_client):
    out = io.BytesIO()
    Image.frombytes("RGB", (1000, 1000), os.urandom(1000 * 1000 * 3)).save(out, "PNG")  # noise: barely compresses
    picture = out.getvalue()
    assert len(picture) >= 3 * MB
    r = await bearer_client.put(f"/api/operators/{cast.b_id}/avatar", data=picture,
                                headers={**bearer(cast.b), "Content-Type": "image/png"})
    assert r.status == 200, await r.text()
    r = await bearer_client.get(f"/api/operators/{cast.b_id}", headers=bearer(cast.b))
    avatar_url = (await r.json())["avatar_url"]
    assert avatar_url
    r = await bearer_client.get(avatar_url)
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(await r.read())).size[0] > 0


async def test_an_avatar_over_the_limit_is_refused_however_it_is_sent(stack, cast, bearer_client):
    before = await kept_avatars(stack)
    for data in (chunked(b"\x89PNG\r\n\x1a\n", 11 * MiB), b"\x89PNG\r\n\x1a\n" + os.urandom(11 * MiB)):
        r = await bearer_client.put(f"/api/operators/{cast.b_id}/avatar", data=data,
                                    headers={**bearer(cast.b), "Content-Type": "image/png"})
        assert r.status == 413, await r.text()
        assert (await r.json())["error"]["code"] == "avatar_file_too_large"
    assert await kept_avatars(stack) == before
    r = await bearer_client.get(f"/api/operators/{cast.b_id}", headers=bearer(cast.b))
    assert (await r.json())["avatar_url"] is None


async def test_json_arriving_in_several_packets_is_read_whole(stack, cast):
    """6 KB of JSON in several TCP packets 50 ms apart, as a slow network delivers it."""
    port = stack.gateway.port
    # A reply: 3,000 Cyrillic characters, 6 KB of UTF-8.
    text = "Ж" * 3000
    body = orjson.dumps({"text": text})
    assert len(body) >= 6000
    for pieces, split_head in ((2, False), (6, True)):
        r = await raw_request(port, "POST", f"/api/conversations/{cast.cid}/messages", body=body, pieces=pieces,
                              pause=0.05, split_head=split_head,
                              headers={**bearer(cast.b), "Content-Type": "application/json"})
        assert r.status == 200, r.describe()
        assert r.json()["events"][0]["data"]["text"] == text
    # A template (the owner's; forwarded to operator-registry): \u-escaped, 1,000 characters in 6 KB.
    title, template_text = "Доставка", "ж" * 1000
    body = json.dumps({"title": title, "text": template_text}).encode()
    assert len(body) >= 6000
    r = await raw_request(port, "POST", "/api/templates", body=body, pieces=5, pause=0.05,
                          headers={**bearer(cast.owner), "Content-Type": "application/json"})
    assert r.status == 201, r.describe()
    assert (r.json()["title"], r.json()["text"]) == (title, template_text)
    # The same body, chunked and in pieces.
    in_chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1500]), body[i:i + 1500]) for i in range(0, len(body), 1500))
    r = await raw_request(port, "POST", "/api/templates", body=in_chunks + b"0\r\n\r\n", pieces=6, pause=0.05,
                          headers={**bearer(cast.owner), "Content-Type": "application/json",
                                   "Transfer-Encoding": "chunked"})
    assert r.status == 201, r.describe()
    assert r.json()["text"] == template_text


async def test_an_operator_uploads_only_to_a_conversation_they_may_see(stack, cast):
    """A's upload to B's conversation, or to one that does not exist, is refused and kept nowhere."""
    import uuid
    for cid in (cast.cid, str(uuid.uuid4())):
        r = await stack.call("POST", f"/api/conversations/{cid}/attachments", cast.a, data=b"%PDF-1.4 x",
                             headers={"Content-Type": "application/octet-stream"})
        assert r.status == 404, await r.text()
    assert await kept_files(stack) == (0, 0)
    r = await stack.call("POST", f"/api/conversations/{cast.cid}/attachments", cast.b, data=b"%PDF-1.4 x",
                         headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201


async def test_a_second_gateway_replica_serves_what_the_first_stored(stack, cast, bearer_client, gateway_b):
    """Two replicas behind one ingress share nothing but PostgreSQL: an attachment and an
    avatar uploaded through one are downloaded whole through the other."""
    data = pdf_of(3 * MB)
    r = await bearer_client.post(f"/api/conversations/{cast.cid}/attachments", data=data,
                                 headers={**bearer(cast.b), "X-File-Name": "contract.pdf"})
    assert r.status == 201, await r.text()
    stored = await r.json()
    # In the database itself, not on the disk of the replica that took the upload.
    assert await stack.gateway.app[POOL].fetchval(
        "select length(content) from files where id = $1", stored["file_id"]) == len(data)
    r = await gateway_b.get(stored["url"], headers=bearer(cast.b))
    assert r.status == 200 and sha(await r.read()) == sha(data)

    out = io.BytesIO()
    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(out, "PNG")
    r = await bearer_client.put(f"/api/operators/{cast.b_id}/avatar", data=out.getvalue(),
                                headers={**bearer(cast.b), "Content-Type": "image/png"})
    assert r.status == 200, await r.text()
    r = await gateway_b.get((await r.json())["avatar_url"])
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(await r.read())).size == (96, 96)
