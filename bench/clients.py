"""The load generator's clients: visitors on /ws/visitor (each with its own address
behind one trusted proxy hop, so per-visitor and per-address limits apply), operators on
/ws/operator, and a Tracker that times every message from send to ack and to the
operator's screen."""
from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import WSMsgType

from parley.config import env

from bench.common import Ticker, percentile, progress
from devstack.visitor_protocol import message_frame, open_socket

OPEN_CONCURRENCY = 64


def address(i: int) -> str:
    """A distinct client address per visitor, as an ingress would put in X-Forwarded-For."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def http_session() -> aiohttp.ClientSession:
    # No connection limit: every WebSocket holds its connection for as long as it is open.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60))


@dataclass
class Tracker:
    """Send, ack, error and delivery times by message id (the id is also the text)."""
    sent: dict[str, float] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)
    errors: dict[str, tuple[str, float]] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    # The ids that were a visitor's first message (each starts a conversation, which costs
    # more than a message in one): the summary times them apart from the rest.
    firsts: set[str] = field(default_factory=set)

    def settled(self, ids) -> bool:
        return all((i in self.acked or i in self.errors) and (i in self.delivered or i in self.errors) for i in ids)

    def summary(self, ids: list[str], started: float) -> dict:
        """Latencies over every message sent (one never acked or never delivered counts as
        infinitely late, so an overloaded step's p99 says so), goodput and error counts."""
        ack = [self.acked[i] - self.sent[i] if i in self.acked else math.inf for i in ids if i not in self.errors]
        e2e = [self.delivered[i] - self.sent[i] if i in self.delivered else math.inf
               for i in ids if i not in self.errors]
        answered = [i for i in ids if i not in self.errors]
        e2e_first = [t for i, t in zip(answered, e2e) if i in self.firsts]
        e2e_later = [t for i, t in zip(answered, e2e) if i not in self.firsts]
        ack_first = [t for i, t in zip(answered, ack) if i in self.firsts]
        ack_later = [t for i, t in zip(answered, ack) if i not in self.firsts]
        codes: dict[str, int] = {}
        for i in ids:
            if i in self.errors:
                codes[self.errors[i][0]] = codes.get(self.errors[i][0], 0) + 1
        error_latency = [self.errors[i][1] - self.sent[i] for i in ids if i in self.errors]
        delivered = [self.delivered[i] for i in ids if i in self.delivered]
        span = (max(delivered) - started) if delivered else math.inf
        return {"sent": len(ids), "acked": sum(1 for i in ids if i in self.acked),
                "delivered": len(delivered), "errors": codes,
                "not_delivered": sum(1 for i in ids if i not in self.delivered and i not in self.errors),
                "achieved_per_s": round(len(delivered) / span, 1) if delivered and span > 0 else 0.0,
                "e2e_p50": percentile(e2e, 50), "e2e_p99": percentile(e2e, 99),
                "first_messages": len(e2e_first),
                "e2e_p99_first": percentile(e2e_first, 99) if e2e_first else None,
                "e2e_p99_later": percentile(e2e_later, 99) if e2e_later else None,
                "ack_p50": percentile(ack, 50), "ack_p99": percentile(ack, 99),
                "ack_p99_first": percentile(ack_first, 99) if ack_first else None,
                "ack_p99_later": percentile(ack_later, 99) if ack_later else None,
                "error_p50": percentile(error_latency, 50) if error_latency else None}


@dataclass(eq=False)
class Visitor:
    index: int
    ws: aiohttp.ClientWebSocketResponse
    tracker: Tracker  # where this visitor's acks and errors are recorded
    reader: asyncio.Task | None = None
    has_written: bool = False

    async def send(self, message_id: str, text: str | None = None) -> None:
        if not self.has_written:
            self.tracker.firsts.add(message_id)
            self.has_written = True
        self.tracker.sent[message_id] = time.perf_counter()
        await self.ws.send_str(message_frame(message_id, text or message_id))


async def _visitor_reader(visitor: Visitor, tracker: Tracker) -> None:
    async for msg in visitor.ws:
        if msg.type != WSMsgType.TEXT:
            continue
        now = time.perf_counter()
        frame = orjson.loads(msg.data)
        kind = frame.get("type")
        if kind == "ack":
            tracker.acked.setdefault(frame.get("id"), now)
        elif kind == "error" and frame.get("id"):
            tracker.errors.setdefault(frame["id"], (frame.get("code", "?"), now))


def visitor_token(project: str = "demo") -> str:
    """Minted with the gateway's key, as POST /api/visitor/session would answer (that call
    is limited to 20 new visitors a minute per address; minting here saves 10,000 calls)."""
    from gateway import visitor_tokens
    return visitor_tokens.issue(project)[0]


async def open_visitors(http: aiohttp.ClientSession, gateway: str, n: int, tracker: Tracker, *,
                        first_index: int = 0, label: str = "visitor sockets") -> list[Visitor]:
    """n idle visitor sockets, each past its hello and availability frames."""
    visitors: list[Visitor | None] = [None] * n
    done = 0
    tick = Ticker()
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(k: int) -> None:
        nonlocal done
        i = first_index + k
        async with gate:
            for attempt in range(5):
                try:
                    ws = await open_socket(http, f"{gateway}/ws/visitor", visitor_token(),
                                           headers={"X-Forwarded-For": address(i)}, autoping=True)
                    break
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))
            hello = await ws.receive_json(timeout=60)
            assert hello.get("type") == "hello", hello
            await ws.receive_json(timeout=60)  # availability
        visitor = Visitor(i, ws, tracker)
        visitor.reader = asyncio.create_task(_visitor_reader(visitor, tracker))
        visitors[k] = visitor
        done += 1
        tick(lambda: f"{label}: {done}/{n} open")

    await asyncio.gather(*(one(k) for k in range(n)))
    progress(f"{label}: {n}/{n} open")
    return visitors  # type: ignore[return-value]


async def close_visitors(visitors: list[Visitor]) -> None:
    gate = asyncio.Semaphore(256)

    async def one(v: Visitor) -> None:
        async with gate:
            await v.ws.close()
            if v.reader:
                await asyncio.gather(v.reader, return_exceptions=True)
    await asyncio.gather(*(one(v) for v in visitors))


async def session_token(http: aiohttp.ClientSession, gateway: str, email: str, password: str) -> str:
    """An operator of the demo project, signed in."""
    r = await http.post(f"{gateway}/api/session", json={"project": "demo", "email": email, "password": password},
                        headers={"X-Forwarded-For": "192.168.0.1"})
    assert r.status == 201, await r.text()
    return (await r.json())["token"]


async def owner_token(http: aiohttp.ClientSession, gateway: str) -> str:
    return await session_token(http, gateway, env("PARLEY_OWNER_EMAIL"), env("PARLEY_OWNER_PASSWORD"))


async def plain_operator_token(http: aiohttp.ClientSession, gateway: str, owner: str) -> str:
    """A new operator who is not an admin (added by the owner), signed in."""
    email, password = f"plain-{uuid.uuid4().hex[:8]}@bench.local", "bench-operator-1"
    headers = {"Authorization": f"Bearer {owner}", "X-Forwarded-For": "192.168.0.1"}
    r = await http.post(f"{gateway}/api/operators", headers=headers,
                        json={"name": "Bench Operator", "email": email, "password": password, "is_admin": False})
    assert r.status == 201, await r.text()
    return await session_token(http, gateway, email, password)


@dataclass(eq=False)
class Operator:
    """An operator socket that records when each visitor message (by text) reaches it."""
    ws: aiohttp.ClientWebSocketResponse
    delivered: dict[str, float]
    prefix: str = ""
    reader: asyncio.Task | None = None

    def start(self) -> "Operator":
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            if '"chat.visitor_message_posted"' not in msg.data:
                continue
            text = orjson.loads(msg.data)["data"].get("text", "")
            if text.startswith(self.prefix):
                self.delivered.setdefault(text, now)

    async def close(self) -> None:
        await self.ws.close()
        if self.reader:
            await asyncio.gather(self.reader, return_exceptions=True)


async def open_operator(http: aiohttp.ClientSession, gateway: str, token: str, delivered: dict[str, float],
                        prefix: str = "") -> Operator:
    for attempt in range(20):   # a storm of connects is refused `busy` (503) past a bound: again, as the app does
        try:
            ws = await http.ws_connect(f"{gateway}/ws/operator", headers={"Authorization": f"Bearer {token}"},
                                       autoping=True, max_msg_size=0)
            break
        except aiohttp.WSServerHandshakeError as e:
            if e.status != 503 or attempt == 19:
                raise
            await asyncio.sleep(0.2 + random.random() * 0.3)
    hello = await ws.receive_json(timeout=60)
    assert hello.get("type") == "hello", hello
    return Operator(ws, delivered, prefix).start()


def stalled_operator(gateway: str, token: str) -> socket.socket:
    """A /ws/operator client that completes the upgrade and then never reads again, with
    the smallest receive buffer the kernel allows: the reader a slow phone on a bad
    network looks like to the gateway."""
    url = urlsplit(gateway)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.settimeout(30)
    sock.connect((url.hostname, url.port))
    key = os.urandom(16).hex()[:22] + "=="
    sock.sendall((f"GET /ws/operator HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nAuthorization: Bearer {token}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("the gateway closed the stalled socket during the upgrade")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(f"upgrade refused: {head[:200]!r}")
    return sock
