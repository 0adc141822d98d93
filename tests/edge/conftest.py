"""Helpers for the edge tests (issue 8): requests whose bytes reach the gateway exactly
as written, browser-like cookie clients, and a conversation that belongs to someone
else than the operator who attacks it."""
from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from parley.service_client import path
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, Stack


# ---- raw HTTP -------------------------------------------------------------------------

@dataclass
class RawResponse:
    status: int
    headers: CIMultiDict
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def describe(self) -> str:
        return f"{self.status} {self.headers.get('Content-Type')} {self.body[:300]!r}"


def _dechunk(data: bytes) -> bytes:
    out, rest = bytearray(), data
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


async def raw_request(port: int, method: str, target: str, *, headers: dict[str, str] | None = None,
                      body: bytes = b"", pieces: int = 1, pause: float = 0.0, split_head: bool = False,
                      host: str = "127.0.0.1") -> RawResponse:
    """One HTTP/1.1 request over a fresh TCP connection. `target` goes on the request line
    byte for byte (no client normalises or re-encodes it). The body is written in `pieces`
    separate writes with `pause` seconds between them (TCP_NODELAY, drained each time, so
    each piece leaves as its own packet); `split_head` also cuts the header block in two."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        sent = {k.lower() for k in (headers or {})}
        if body and "content-length" not in sent and "transfer-encoding" not in sent:
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        chunks = [head[:len(head) // 2], head[len(head) // 2:]] if split_head else [head]
        if body:
            step = -(-len(body) // pieces)
            chunks += [body[i:i + step] for i in range(0, len(body), step)]
        for i, chunk in enumerate(chunks):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(chunk)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.add(name.strip(), value.strip())
    if parsed.get("Transfer-Encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return RawResponse(int(status_line.split()[1]), parsed, rest)


def assert_final_json_refusal(r: RawResponse, what: str) -> dict:
    """Not a success, not a fault: a 4xx with the JSON error shape."""
    assert 400 <= r.status < 500, f"{what}: {r.describe()}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), f"{what}: {r.describe()}"
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("code"), \
        f"{what}: {r.describe()}"
    return body


# ---- clients ----------------------------------------------------------------------------

def base_url(stack: Stack) -> str:
    return str(stack.gateway.make_url("")).rstrip("/")


@pytest.fixture
async def browser_client(stack):
    """`await browser_client()`: a new client with its own cookie jar (it keeps cookies
    for 127.0.0.1, as a browser does for the app's host), closed after the test."""
    sessions: list[aiohttp.ClientSession] = []

    async def make() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(base_url=base_url(stack), cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(session)
        return session
    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def bearer_client(stack):
    """A client that keeps no cookies: every call says who it is with its bearer token."""
    async with aiohttp.ClientSession(base_url=base_url(stack), cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def cookie_login(client: aiohttp.ClientSession, email: str, password: str) -> dict:
    r = await client.post("/api/session", json={"project": "demo", "email": email, "password": password})
    assert r.status == 201, await r.text()
    return await r.json()


def cookie_of(client: aiohttp.ClientSession) -> str | None:
    for cookie in client.cookie_jar:
        if cookie.key == "parley_session":
            return cookie.value
    return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- people and a conversation ----------------------------------------------------------

@dataclass
class Cast:
    owner: str                      # the owner's bearer token
    a_id: str                       # operator A: not an admin, the attacker in these tests
    a: str
    a_email: str
    b_id: str                       # operator B: not an admin, owns `cid`
    b: str
    b_email: str
    cid: str                        # B's conversation, with a note A must never read
    visitor: ScriptedVisitor        # its visitor
    note: str = "B's private note: the customer is a VIP"
    password: str = "operator-pass-1"
    extra: dict = field(default_factory=dict)


async def take_new_conversation(stack: Stack, token: str, text: str) -> tuple[str, ScriptedVisitor]:
    """A visitor writes; the operator behind `token` takes the conversation."""
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait(text)
    cid = (await stack.conversation_client.checked(
        "GET", path("internal", "visitor", "conversation"),
        params={"project_id": "demo", "visitor_id": visitor.visitor_id}))["conversation_id"]
    r = await stack.call("POST", f"/api/conversations/{cid}/take", token)
    assert r.status == 200, await r.text()
    return cid, visitor


@pytest.fixture
async def cast(stack) -> Cast:
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    a_id, a, a_email = await stack.add_operator(owner, "Anna Attacker")
    b_id, b, b_email = await stack.add_operator(owner, "Boris Busy")
    cid, visitor = await take_new_conversation(stack, b, "Hello, I need help")
    people = Cast(owner, a_id, a, a_email, b_id, b, b_email, cid, visitor)
    r = await stack.call("POST", f"/api/conversations/{cid}/notes", b, json={"text": people.note})
    assert r.status == 200, await r.text()
    yield people
    await visitor.drop()


async def conversation_events(stack: Stack, cid: str) -> list[dict]:
    """Every stored event of a conversation, read behind the gateway (a signed call)."""
    return (await stack.conversation_client.checked("GET", path("internal", "conversations", cid, "events")))["events"]


def new_id() -> str:
    return str(uuid.uuid4())
