"""A scripted visitor speaking the widget's protocol (docs/visitor-protocol.md)."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import aiohttp


def visitor_protocols(token: str) -> tuple[str, ...]:
    """How the widget sends its token on /ws/visitor: as a subprotocol, not in the URL."""
    return ("parley.v1", f"parley.token.{token}")


def visitor_headers(token: str) -> dict[str, str]:
    """How the widget sends its token on uploads and downloads."""
    return {"X-Parley-Visitor-Token": token}


@dataclass
class ScriptedVisitor:
    client: object                 # the gateway's aiohttp TestClient (or anything with .post/.ws_connect)
    project: str = "demo"
    token: str | None = None
    visitor_id: str | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    last_seq: int = 0
    events: list[dict] = field(default_factory=list)
    acks: dict[str, int] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    frames: list[dict] = field(default_factory=list)   # every frame received, as sent
    conversation_id: str | None = None
    _reader: asyncio.Task | None = None

    async def start(self) -> None:
        r = await self.client.post("/api/visitor/session", json={"project": self.project, "visitor_token": self.token})
        assert r.status == 201, await r.text()
        body = await r.json()
        self.token, self.visitor_id = body["visitor_token"], body["visitor_id"]
        await self.connect()

    async def connect(self) -> None:
        self.ws = await self.client.ws_connect(f"/ws/visitor?after={self.last_seq}", protocols=visitor_protocols(self.token))
        hello = await self.ws.receive_json(timeout=10)
        assert hello["type"] == "hello"
        self.conversation_id = hello["conversation_id"] or self.conversation_id
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = msg.json()
            self.frames.append(data)
            if data["type"] in ("conversation", "offline_saved") and data["conversation_id"] != self.conversation_id:
                # a new conversation (after a closed one, or the offline form's): seqs start again at 1
                self.conversation_id, self.last_seq = data["conversation_id"], 0
            if data["type"] == "event":
                assert data["seq"] > self.last_seq, f"seq {data['seq']} after {self.last_seq}: a duplicate or reorder"
                self.last_seq = data["seq"]
                self.events.append(data)
            elif data["type"] == "ack":
                self.acks[data["id"]] = data["seq"]
            elif data["type"] == "error":
                self.errors.append(data)

    async def drop(self) -> None:
        """The network goes away: no goodbye."""
        await self.ws.close()
        if self._reader:
            await self._reader

    async def send(self, text: str, message_id: str | None = None, **extra) -> str:
        message_id = message_id or str(uuid.uuid4())
        await self.ws.send_json({"type": "message", "id": message_id, "text": text, "page_url": "https://shop.example/p/1", **extra})
        return message_id

    async def send_and_wait(self, text: str, **extra) -> str:
        message_id = await self.send(text, **extra)
        await self.wait_for(lambda: message_id in self.acks, f"ack of {text!r}")
        return message_id

    async def wait_for(self, condition, what: str, timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"visitor timed out waiting for {what}; events: {self.events[-5:]}, errors: {self.errors}")
            await asyncio.sleep(0.02)

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    def texts(self, kind: str) -> list[str]:
        return [e["text"] for e in self.events if e["kind"] == kind]


RETRYABLE = {"service_unavailable", "busy"}


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
                return visitor.acks[message_id]
            fresh = [e for e in visitor.errors[errors_before:] if e.get("id") == message_id]
            if fresh:
                assert fresh[0]["code"] in RETRYABLE, fresh[0]
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} was never acknowledged")
