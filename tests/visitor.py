"""A scripted visitor speaking the widget's protocol (devstack/visitor_protocol.py) to a
gateway: one step at a time, as a test tells it. `send_reliably` is the widget's
outbox: the same id again until acknowledged."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import aiohttp

from devstack.visitor_protocol import RETRYABLE, VisitorView, message_frame, open_socket, start_session


@dataclass
class ScriptedVisitor:
    client: object                 # the gateway's aiohttp TestClient (or a session with a base_url)
    project: str = "demo"
    token: str | None = None
    visitor_id: str | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    view: VisitorView = field(default_factory=VisitorView)
    _reader: asyncio.Task | None = None

    # What the widget shows and knows, from the frames it was sent (VisitorView).
    @property
    def conversation_id(self) -> str | None:
        return self.view.conversation_id

    @property
    def last_seq(self) -> int:
        return self.view.last_seq

    @property
    def events(self) -> list[dict]:
        return self.view.events

    @property
    def frames(self) -> list[dict]:
        return self.view.frames

    @property
    def errors(self) -> list[dict]:
        return self.view.errors

    @property
    def acks(self) -> dict[str, int]:
        return self.view.acks

    async def start(self) -> None:
        status, body = await start_session(self.client, "/api/visitor/session", self.project, self.token)
        assert status == 201, body
        self.token, self.visitor_id = body["visitor_token"], body["visitor_id"]
        await self.connect()

    async def connect(self) -> None:
        self.ws = await open_socket(self.client, "/ws/visitor", self.token, after=self.last_seq)
        hello = await self.ws.receive_json(timeout=10)
        assert hello["type"] == "hello", hello
        self.view.receive(hello)
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.view.receive(msg.json())

    async def drop(self) -> None:
        """The network goes away: no goodbye."""
        await self.ws.close()
        if self._reader:
            await self._reader

    async def send(self, text: str, message_id: str | None = None, **extra) -> str:
        message_id = message_id or str(uuid.uuid4())
        await self.ws.send_str(message_frame(message_id, text, **{"page_url": "https://shop.example/p/1", **extra}))
        return message_id

    async def send_and_wait(self, text: str, **extra) -> str:
        message_id = await self.send(text, **extra)
        await self.wait_for(lambda: message_id in self.acks, f"ack of {text!r}")
        return message_id

    async def wait_for(self, condition, what: str, timeout: float = 15) -> None:
        """Until `condition()`; fails at once if the visitor was shown a seq twice or out of order."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            self.assert_in_order()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"visitor timed out waiting for {what}; events: {self.events[-5:]}, "
                                     f"errors: {self.errors}")
            await asyncio.sleep(0.02)
        self.assert_in_order()

    def assert_in_order(self) -> None:
        assert (self.view.duplicates, self.view.out_of_order) == (0, 0), \
            f"{self.view.duplicates} duplicates, {self.view.out_of_order} out of order: {self.events[-5:]}"

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    def texts(self, kind: str) -> list[str]:
        return [e["text"] for e in self.events if e["kind"] == kind]


async def send_reliably(visitor: ScriptedVisitor, text: str, message_id: str, *, timeout: float = 60) -> int:
    """What the widget does: resend with the same id until acknowledged, reconnecting when the
    socket is gone. Returns the ack's seq."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if visitor.ws is None or visitor.ws.closed:
            try:
                await visitor.connect()
            except Exception:
                await asyncio.sleep(0.2)
                continue
        errors_before = len(visitor.errors)
        try:
            await visitor.send(text, message_id=message_id)
        except Exception:
            await asyncio.sleep(0.2)
            continue
        for _ in range(100):
            if message_id in visitor.acks:
                visitor.assert_in_order()
                return visitor.acks[message_id]
            fresh = [e for e in visitor.errors[errors_before:] if e.get("id") == message_id]
            if fresh:
                assert fresh[0]["code"] in RETRYABLE, fresh[0]
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} was never acknowledged")
