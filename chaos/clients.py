"""Scripted visitors and operators that retry the way the widget and the operator app
do, and remember what was acknowledged and what they saw.

Visitor (devstack/visitor_protocol.py): numbered messages, one at a time, each resent with
the same client id until its `ack` (a `busy`/`service_unavailable`/`rate_limited` error
waits `retry_after` with jitter; no answer within ACK_WAIT resends); the socket
reconnects after any close with `after=<last seq shown>`. What it saw is every `event`
frame on every socket it had: a seq twice is a duplicate, a seq below the last one is
out of order.

Operator (web/app): REST with an Idempotency-Key per reply
(derived from the visitor message it answers, so a retried reply is absorbed), the
socket for pushes, and after every reconnect a resync of its conversations from their
transcripts. Its view is what the app shows: events by seq (a push of a seq already
shown is dropped, as store.js does - counted as a redelivery, not as a duplicate seen);
a duplicate seen is one message id shown at two seqs.

Every HTTP answer of 500 or more is recorded with its time (checks.py sorts them into
kill windows); connection failures are counted apart (a killed gateway refuses, it does
not answer)."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType

from devstack.visitor_protocol import RETRYABLE, VisitorView, message_frame, open_socket

ACK_WAIT = 10.0          # a message with no answer by then is resent (same id)
GIVE_UP = 240.0          # a message not acknowledged by then is reported as never acknowledged


@dataclass
class ServerError:
    at: float
    who: str
    what: str            # "POST /api/conversations/{id}/messages", "ws /ws/visitor" ...
    status: int
    code: str | None


@dataclass
class Traffic:
    """What every client shares: the 5xx answers and the connection failures."""
    errors_5xx: list[ServerError] = field(default_factory=list)
    connection_failures: int = 0
    requests: int = 0


def _jitter(seconds: float) -> float:
    return seconds * (0.75 + random.random() * 0.5)


async def call(http: aiohttp.ClientSession, traffic: Traffic, who: str, method: str, url: str, route: str, *,
               json=None, headers=None) -> tuple[int | None, dict | None]:
    """(status, JSON body) of one call, or (None, None) when the connection failed."""
    traffic.requests += 1
    try:
        async with http.request(method, url, json=json, headers=headers) as r:
            try:
                body = await r.json(content_type=None)
            except Exception:
                body = None
            if r.status >= 500:
                code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                traffic.errors_5xx.append(ServerError(time.time(), who, f"{method} {route}", r.status, code))
            return r.status, body
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        traffic.connection_failures += 1
        return None, None


def visitor_text(visitor: int, k: int) -> str:
    return f"v{visitor} #{k}"


def reply_text(visitor_message_text: str) -> str:
    return f"re: {visitor_message_text}"


@dataclass(eq=False)
class Visitor:
    number: int
    gateway: str
    http: aiohttp.ClientSession
    traffic: Traffic
    token: str | None = None
    view: VisitorView = field(default_factory=VisitorView)    # what its widget was shown, every socket
    acked: dict[str, int] = field(default_factory=dict)       # text -> seq
    never_acked: list[str] = field(default_factory=list)
    final_errors: list[dict] = field(default_factory=list)
    connections: int = 0
    sent_frames: int = 0
    done_writing: bool = False
    retried: Counter = field(default_factory=Counter)         # resends by cause: error code, or "no answer"
    _ws: aiohttp.ClientWebSocketResponse | None = None

    @property
    def name(self) -> str:
        return f"visitor {self.number}"

    @property
    def conversation_id(self) -> str | None:
        return self.view.conversation_id

    @property
    def headers(self) -> dict:
        # Behind one trusted proxy hop: each visitor its own address, as on the real web.
        return {"X-Forwarded-For": f"10.77.{self.number // 250}.{self.number % 250 + 1}"}

    def operator_texts(self) -> list[str]:
        return [e["text"] for _, e in sorted(self.view.seen.items()) if e.get("kind") == "operator_message"]

    def own_texts(self) -> list[str]:
        return [e["text"] for _, e in sorted(self.view.seen.items()) if e.get("kind") == "visitor_message"]

    async def open_session(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            status, body = await call(self.http, self.traffic, self.name, "POST", f"{self.gateway}/api/visitor/session",
                                      "/api/visitor/session", json={"project": "demo", "visitor_token": self.token},
                                      headers=self.headers)
            if status == 201:
                self.token = body["visitor_token"]
                return
            await asyncio.sleep(_jitter(0.5))

    async def keep_connected(self, stop: asyncio.Event) -> None:
        """The widget's socket: reconnect after any close, resuming after the last seq shown."""
        pause = 0.2
        while not stop.is_set():
            try:
                ws = await open_socket(self.http, f"{self.gateway}/ws/visitor", self.token, after=self.view.last_seq,
                                       headers=self.headers, heartbeat=10)
            except aiohttp.WSServerHandshakeError as e:
                if e.status >= 500:
                    self.traffic.errors_5xx.append(ServerError(time.time(), self.name, "ws /ws/visitor", e.status, None))
                else:
                    self.traffic.connection_failures += 1
                await asyncio.sleep(_jitter(pause))
                pause = min(pause * 2, 2.0)
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                self.traffic.connection_failures += 1
                await asyncio.sleep(_jitter(pause))
                pause = min(pause * 2, 2.0)
                continue
            self._ws, self.connections, pause = ws, self.connections + 1, 0.2
            try:
                async for msg in ws:
                    if msg.type == WSMsgType.TEXT:
                        self.receive(msg.json())
            except Exception:
                pass
            finally:
                self._ws = None
                await ws.close()
            if not stop.is_set():
                await asyncio.sleep(_jitter(0.3))

    def receive(self, frame: dict) -> None:
        before = len(self.view.conversations)
        self.view.receive(frame)
        if before and len(self.view.conversations) > before:
            # a new conversation (the old one was closed): the run never closes one, so say so
            self.final_errors.append({"code": "conversation_changed", "from": self.view.conversations[-2],
                                      "to": self.view.conversations[-1]})

    async def send(self, text: str) -> None:
        """Until acknowledged (or a final error, or GIVE_UP): what the widget's outbox does."""
        message_id = str(uuid.uuid4())
        deadline = time.monotonic() + GIVE_UP
        answers = self.view.answers
        while time.monotonic() < deadline:
            ws = self._ws
            if ws is None or ws.closed:
                await asyncio.sleep(0.1)
                continue
            answers.pop(message_id, None)
            try:
                await ws.send_str(message_frame(message_id, text, "https://shop.example/chaos"))
                self.sent_frames += 1
            except Exception:
                await asyncio.sleep(0.1)
                continue
            answered = time.monotonic() + ACK_WAIT
            while time.monotonic() < answered and message_id not in answers and self._ws is ws:
                await asyncio.sleep(0.02)
            answer = answers.get(message_id)
            if answer is None:
                self.retried["no answer"] += 1
                continue  # no answer (the socket went, or the gateway is slow): resend, same id
            if answer["type"] == "ack":
                self.acked[text] = answer["seq"]
                return
            if answer.get("code") in RETRYABLE:
                self.retried[answer["code"]] += 1
                await asyncio.sleep(_jitter(max(float(answer.get("retry_after") or 1), 0.2)))
                continue
            self.final_errors.append({"text": text, **answer})
            return
        self.never_acked.append(text)

    async def chat(self, messages: int, pause: float, stop: asyncio.Event) -> None:
        for k in range(1, messages + 1):
            if stop.is_set():
                return
            await self.send(visitor_text(self.number, k))
            await asyncio.sleep(_jitter(pause))


@dataclass(eq=False)
class Operator:
    name: str
    email: str
    password: str
    gateway: str
    http: aiohttp.ClientSession
    traffic: Traffic
    token: str | None = None
    view: dict[str, dict[int, dict]] = field(default_factory=dict)   # conversation -> seq -> event
    mine: set[str] = field(default_factory=set)
    replied: dict[str, str] = field(default_factory=dict)            # visitor message text -> reply text, acked
    final_errors: list[dict] = field(default_factory=list)
    redeliveries: int = 0          # an event of a seq already shown (dropped, as the app does)
    conflicts: int = 0             # a seq shown with different content: never allowed
    connections: int = 0
    resyncs: int = 0
    _stale: set[str] = field(default_factory=set)                    # conversations to fetch whole

    def _call(self, method: str, path: str, route: str, **kw):
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return call(self.http, self.traffic, self.name, method, f"{self.gateway}{path}", route, headers=headers, **kw)

    async def login(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            status, body = await call(self.http, self.traffic, self.name, "POST", f"{self.gateway}/api/session",
                                      "/api/session", json={"project": "demo", "email": self.email,
                                                            "password": self.password})
            if status == 201:
                self.token = body["token"]
                return
            if status is not None and status < 500:
                raise RuntimeError(f"{self.name} cannot log in: {status} {body}")
            await asyncio.sleep(_jitter(0.5))

    def show(self, event: dict) -> None:
        """A push or a command's answer, into the view the app would show."""
        cid, seq = event["conversation_id"], event["seq"]
        shown = self.view.setdefault(cid, {})
        if seq in shown:
            self.redeliveries += 1
            if (shown[seq]["event"], shown[seq]["data"]) != (event["event"], event["data"]):
                self.conflicts += 1
            return
        if shown and seq > max(shown) + 1:
            self._stale.add(cid)  # a gap: the app fetches the conversation whole
        shown[seq] = event

    def duplicates_seen(self) -> int:
        """Message ids shown at more than one seq, over every conversation in view."""
        dups = 0
        for shown in self.view.values():
            ids = [e["data"].get("message_id") for e in shown.values()
                   if e["event"] in ("chat.visitor_message_posted", "chat.operator_replied")]
            dups += len(ids) - len(set(ids))
        return dups

    def visitor_texts(self, cid: str) -> list[str]:
        return [e["data"]["text"] for _, e in sorted(self.view.get(cid, {}).items())
                if e["event"] == "chat.visitor_message_posted"]

    async def keep_connected(self, stop: asyncio.Event) -> None:
        pause = 0.5
        while not stop.is_set():
            try:
                ws = await self.http.ws_connect(f"{self.gateway}/ws/operator", heartbeat=10, max_msg_size=0,
                                                headers={"Authorization": f"Bearer {self.token}"})
            except aiohttp.WSServerHandshakeError as e:
                if e.status >= 500:
                    self.traffic.errors_5xx.append(ServerError(time.time(), self.name, "ws /ws/operator", e.status, None))
                else:
                    self.traffic.connection_failures += 1
                await asyncio.sleep(_jitter(pause))
                pause = min(pause * 2, 4.0)
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                self.traffic.connection_failures += 1
                await asyncio.sleep(_jitter(pause))
                pause = min(pause * 2, 4.0)
                continue
            self.connections += 1
            pause = 0.5
            try:
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        continue
                    frame = msg.json()
                    if frame.get("type") == "hello" and self.connections > 1:
                        # after a reconnect the app re-fetches what it may have missed
                        self._stale |= set(self.view)
                        self.resyncs += 1
                    elif frame.get("type") == "conversation_event":
                        self.show(frame)
                    elif frame.get("type") == "session_rotated":
                        self.token = frame["token"]
            except Exception:
                pass
            finally:
                await ws.close()

    async def _fetch(self, cid: str) -> None:
        status, body = await self._call("GET", f"/api/conversations/{cid}", "/api/conversations/{id}")
        if status == 200:
            self._stale.discard(cid)
            for event in body["events"]:
                self.show(event)

    async def _take_new(self) -> None:
        status, body = await self._call("GET", "/api/inbox?view=new", "/api/inbox")
        if status != 200:
            return
        for row in body["conversations"]:
            cid = row["id"]
            status, answer = await self._call("POST", f"/api/conversations/{cid}/take", "/api/conversations/{id}/take",
                                              json={}, headers={"Idempotency-Key": f"take-{cid}"})
            if status == 200:
                self.mine.add(cid)
                for event in answer["events"]:
                    self.show(event)
                await self._fetch(cid)

    async def _pick_up_mine(self) -> None:
        status, body = await self._call("GET", "/api/inbox?view=mine", "/api/inbox")
        if status == 200:
            for row in body["conversations"]:
                if row["id"] not in self.mine:
                    self.mine.add(row["id"])
                    self._stale.add(row["id"])

    async def _reply(self, cid: str) -> None:
        """Answer every visitor message of the conversation shown without an answer, in order;
        each reply's key is its question's, so a retry is absorbed by the service."""
        for event in [e for _, e in sorted(self.view.get(cid, {}).items())]:
            if event["event"] != "chat.visitor_message_posted":
                continue
            text = event["data"]["text"]
            if text in self.replied:
                continue
            status, body = await self._call(
                "POST", f"/api/conversations/{cid}/messages", "/api/conversations/{id}/messages",
                json={"text": reply_text(text)}, headers={"Idempotency-Key": f"reply-{event['data']['message_id']}"})
            if status == 200:
                self.replied[text] = reply_text(text)
                for e in body["events"]:
                    self.show(e)
            elif status is not None and status < 500 and status != 429:
                self.final_errors.append({"text": text, "status": status, "body": body})
                self.replied[text] = ""  # final: not retried
            else:
                return  # try again on the next turn, in order

    async def work(self, stop: asyncio.Event) -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            await self._take_new()
            if turn % 5 == 0:
                await self._pick_up_mine()
            for cid in list(self._stale):
                await self._fetch(cid)
            for cid in list(self.mine):
                await self._reply(cid)
            await asyncio.sleep(0.3)
