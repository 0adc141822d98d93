"""Helpers for the overload tests (issue 12, items 5 and 6): rate limits out of the way
(the visitors here write far faster than a person), and a WebSocket client that stops
reading with small kernel buffers, so its stall shows after a few hundred KB."""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

import orjson
import pytest

from gateway.rate_limits import LIMITS, SlidingWindow
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

SMALL_BUFFER = 4096


@pytest.fixture
def no_rate_limits(stack):
    limits = stack.gateway.app[LIMITS]
    limits.messages_per_visitor = SlidingWindow(100_000)
    limits.messages_per_address = SlidingWindow(100_000)
    limits.visitor_sessions_per_address = SlidingWindow(100_000)
    return limits


class StalledSocket:
    """A WebSocket client that stops reading right after the handshake: a socket with a
    small receive buffer and a stream that takes at most a few KB off it (aiohttp's own
    client keeps reading into memory, so it cannot stall). `read_to_the_close()` reads,
    at last, every frame the network held and the close frame's code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.port = writer.get_extra_info("sockname")[1]
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, port: int, target: str, headers: dict[str, str] | None = None,
                      protocols: tuple[str, ...] = ()) -> "StalledSocket":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # before connecting: a small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=SMALL_BUFFER)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = dict(headers or {}, **({"Sec-WebSocket-Protocol": ", ".join(protocols)} if protocols else {}))
        writer.write((f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      + "".join(f"{k}: {v}\r\n" for k, v in extra.items()) + "\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        return cls(reader, writer)

    async def read_to_the_close(self) -> list[dict]:
        frames = []
        while True:
            b0, b1 = await self.reader.readexactly(2)
            size = b1 & 0x7F
            if size == 126:
                size = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(size)
            opcode = b0 & 0x0F
            if opcode == 0x1:
                frames.append(orjson.loads(payload))
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.writer.close()
                return frames

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def stalled_sockets(stack):
    """`await stalled_sockets(target)`: a StalledSocket on the gateway, closed after the test."""
    made: list[StalledSocket] = []

    async def connect(target: str, **how) -> StalledSocket:
        made.append(await StalledSocket.connect(stack.gateway.port, target, **how))
        return made[-1]
    yield connect
    for s in made:
        s.close()


@pytest.fixture
async def owner_token(stack) -> str:
    return await stack.login(OWNER_EMAIL, OWNER_PASSWORD)


async def started_visitor(stack) -> ScriptedVisitor:
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    return visitor
