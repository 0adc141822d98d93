"""`/ws/visitor`: the widget's live connection (protocol: docs/visitor-protocol.md).

The socket is registered for live pushes before the history is read, and every event
is sent under one lock and only if its `seq` is above the last one sent, so a reconnect
with `after=<seq>` gets every visible event once, in order, whatever arrives while the
history is being read. A visitor may hold a few sockets (tabs), not an unbounded number.

Every frame goes out through the socket's bounded send queue (send_queue.py), in the
order it was queued. A live event never waits: it is queued at once, or held while the
lock is taken (the history being read) and queued in seq order when it is free. A widget
that stops reading is closed with 4408 once its queue is full and resumes with `after=`.

Working hours (docs/working-hours.md): the hello is followed by an `availability` frame,
and every message, contacts and offline form carries `chat_open` as the gateway's
schedule says now; the conversation service refuses what would start or reopen a
conversation while closed (`chat_closed`), and the error frame adds `next_open_at`."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from parley.http import Rejected, error_response
from parley.loops import every
from parley.service_client import path

from gateway import audience, auth, availability, csat, files, read_receipts, socket_metrics, verified_visitors
from gateway.client_ip import client_ip
from gateway.rate_limits import limits
from gateway import send_queue
from gateway.send_queue import CLOSE_TOO_SLOW, TOO_SLOW_REASON, SendQueue
from gateway.upstreams import conversation
from gateway.visitor_tokens import VisitorToken

log = logging.getLogger(__name__)

MAX_SOCKETS_PER_VISITOR = 5
MAX_FRAME_BYTES = 64 * 1024
# Params sent before the first message wait on the socket, merged: bounded like the
# conversation's own (the service validates each name and value when they are stored).
MAX_PENDING_PARAMS = 20
MAX_PARAM_CHARS = 320


@dataclass(eq=False, slots=True)   # slots: a gateway holds thousands of idle ones
class VisitorSocket:
    ws: web.WebSocketResponse
    project_id: str
    visitor_id: str
    conversation_id: str | None
    last_seq: int
    params: dict = field(default_factory=dict)
    out: SendQueue | None = None   # every frame to the widget goes through it
    held: list = field(default_factory=list)   # (conversation id, view) that came while the lock was held
    read_upto: int = 0   # the last seq this socket passed on as read (read_receipts.py)
    token: VisitorToken | None = None   # what opened it: a verified visitor's is checked again (verified_sweep)
    _flusher: asyncio.Task | None = None
    _lock: asyncio.Lock | None = None   # made on first use: an idle widget's socket never needs one

    def __post_init__(self) -> None:
        if self.out is None:
            self.out = SendQueue(self.ws)

    @property
    def lock(self) -> asyncio.Lock:
        """Held while history is read or the socket changes conversation; live events wait in `held`."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def send(self, frame: dict) -> None:
        """A frame of this socket's own exchange (hello, ack, error): queued after what is there."""
        await self.out.send(frame)

    def deliver(self, envelope: dict) -> None:
        """A live event; never waits. Queued now, or held while the lock is taken and queued
        in seq order as soon as it is free."""
        view = audience.for_visitor(envelope)
        if view is None:
            return
        if (self._lock is None or not self._lock.locked()) and not self.held:
            self._enqueue_if_new(view)
            return
        self.held.append((self.conversation_id, view))
        if len(self.held) > self.out.max_frames:
            self.out.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
        elif self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_held())

    async def _flush_held(self) -> None:
        try:
            async with self.lock:
                held, self.held = self.held, []
                for conversation_id, view in sorted(held, key=lambda h: h[1]["seq"]):
                    if conversation_id == self.conversation_id:  # not one of a conversation left since
                        self._enqueue_if_new(view)
        finally:
            self._flusher = None

    async def _send_if_new(self, view: dict) -> None:
        if view["seq"] > self.last_seq and self.out.open:
            await self.out.send(view)
            self.last_seq = view["seq"]

    def _enqueue_if_new(self, view: dict) -> None:
        if view["seq"] > self.last_seq and self.out.push(view):
            self.last_seq = view["seq"]

    async def catch_up(self, app: web.Application, events: list | None = None) -> None:
        """Everything visible after last_seq: `events` a command's answer brought (its own
        and any before them this socket had not sent), else from the conversation's history."""
        if self.conversation_id is None:
            return
        async with self.lock:
            if events is None:  # a reconnect, or an answer that could not say
                events = (await conversation(app).checked(
                    "GET", path("internal", "conversations", self.conversation_id, "events"),
                    params={"after": str(self.last_seq)}))["events"]
            for envelope in events:
                view = audience.for_visitor(envelope)
                if view is not None:
                    await self._send_if_new(view)

    def merge_params(self, params: dict) -> None:
        merged = {**self.params, **params}
        if len(merged) > MAX_PENDING_PARAMS or any(
                not isinstance(k, str) or not isinstance(v, (str, int, float, bool)) or len(k) + len(str(v))
                > MAX_PARAM_CHARS for k, v in params.items()):
            raise Rejected(413, "params_too_many", f"At most {MAX_PENDING_PARAMS} custom params, names up to 64 "
                                                   "and values up to 256 characters.")
        self.params = merged


@dataclass
class VisitorSockets:
    by_conversation: dict[str, set[VisitorSocket]] = field(default_factory=dict)
    by_visitor: dict[str, set[VisitorSocket]] = field(default_factory=dict)

    def add(self, socket: VisitorSocket) -> None:
        self.by_visitor.setdefault(socket.visitor_id, set()).add(socket)

    def count(self, visitor_id: str) -> int:
        return len(self.by_visitor.get(visitor_id, ()))

    def bind(self, socket: VisitorSocket, conversation_id: str) -> None:
        socket.conversation_id = conversation_id
        self.by_conversation.setdefault(conversation_id, set()).add(socket)

    def discard(self, socket: VisitorSocket) -> None:
        for index, key in ((self.by_visitor, socket.visitor_id), (self.by_conversation, socket.conversation_id)):
            sockets = index.get(key or "", set())
            sockets.discard(socket)
            if not sockets:
                index.pop(key or "", None)

    def everyone(self) -> list[VisitorSocket]:
        return [s for sockets in self.by_visitor.values() for s in sockets]


VISITOR_SOCKETS = web.AppKey("visitor_sockets", VisitorSockets)
CLOSE_TOKEN_ENDED = 4401


async def visitor_socket(request: web.Request) -> web.StreamResponse:
    try:
        token, config = await auth.visitor(request)
        project_id, visitor_id = token.project_id, token.visitor_id
        if not config["enabled"]:
            raise Rejected(409, "chat_disabled", "The chat is switched off for this site.")
        try:
            after = max(0, int(request.query.get("after", "0") or 0))
        except ValueError:
            raise Rejected(400, "after_invalid", "after is the last seq the widget saw, a number.")
        sockets = request.app[VISITOR_SOCKETS]
        if sockets.count(visitor_id) >= MAX_SOCKETS_PER_VISITOR:
            raise Rejected(429, "too_many_sockets", f"At most {MAX_SOCKETS_PER_VISITOR} open chats per visitor; "
                                                    "close another tab.", headers={"Retry-After": "10"})
        body = await conversation(request.app).checked("GET", path("internal", "visitor", "conversation"),
                                                       params={"project_id": project_id, "visitor_id": visitor_id})
    except Rejected as e:
        return error_response(e.status, e.code, e.message, e.headers)
    ws = web.WebSocketResponse(heartbeat=25, max_msg_size=MAX_FRAME_BYTES, protocols=(auth.WS_PROTOCOL,))
    await ws.prepare(request)
    socket = VisitorSocket(ws, project_id, visitor_id, None, after, out=SendQueue(ws, request.transport),
                           token=token)
    sockets.add(socket)
    socket_metrics.opened("visitor")
    conversation_id = body.get("conversation_id")
    del body, config   # this frame lives as long as the socket: keep only what it needs
    if conversation_id:
        sockets.bind(socket, conversation_id)  # registered before reading history: nothing falls between
    try:
        await socket.send({"type": "hello", "visitor_id": visitor_id, "conversation_id": conversation_id})
        from gateway import presence   # (presence pushes to these sockets: imported here, not at the top)
        await socket.send(await presence.availability_frame(request.app, project_id))   # open, next_open_at, online
        await socket.catch_up(request.app)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = msg.json()
                if not isinstance(data, dict):
                    raise ValueError
            except ValueError:
                await socket.send({"type": "error", "code": "invalid_json", "message": "Send JSON objects."})
                continue
            await _on_visitor_message(request, socket, data)
    except Rejected as e:  # the history could not be read: the widget reconnects and resumes
        socket.out.finish(WSCloseCode.TRY_AGAIN_LATER, e.code)
        await socket.out.wait_closed()
    finally:
        sockets.discard(socket)
        socket.out.stop()
        socket_metrics.closed("visitor")
    return ws


async def _on_visitor_message(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    kind = data.get("type")
    client = conversation(request.app)
    message_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        if kind == "message":
            await _post_message(request, socket, data)
        elif kind == "params":
            params = data.get("params")
            if not isinstance(params, dict):
                raise Rejected(422, "params_invalid", "params must be an object of names to values.")
            if socket.conversation_id:
                await client.command(path("internal", "visitor", "params"), {
                    "project_id": socket.project_id, "visitor_id": socket.visitor_id, "params": params})
            else:  # no conversation yet: they travel with the first message
                socket.merge_params(params)
        elif kind == "contacts":
            await _post_contacts(request, socket, data)
        elif kind == "offline_message":
            await _post_offline(request, socket, data)
        elif kind == "typing":
            from gateway import typing_signals   # imports push, which imports this module
            await typing_signals.from_visitor(request.app, socket.project_id, socket.conversation_id)
        elif kind == "read":
            await read_receipts.from_visitor(request.app, socket, data)
        elif kind == "rate":
            await csat.from_visitor(request.app, socket, data)
        else:
            raise Rejected(422, "type_unknown", f"Unknown message type {str(kind)[:40]!r}.")
    except Rejected as e:
        frame = {"type": "error", "id": message_id, "code": e.code, "message": e.message}
        if e.headers.get("Retry-After", "").isdigit():  # busy, service_unavailable: when to resend
            frame["retry_after"] = int(e.headers["Retry-After"])
        if e.code == "chat_closed":
            frame["next_open_at"] = (await availability.now_open(request.app, socket.project_id))[1]
        await socket.send(frame)


async def _post_message(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    app = request.app
    if not (limits(app).messages_per_visitor.allow(socket.visitor_id)
            and limits(app).messages_per_address.allow(client_ip(request))):
        raise Rejected(429, "rate_limited", "You are sending messages too fast; wait a moment.")
    uploader = f"visitor:{socket.visitor_id}"
    attachment = await files.attachment_for(request, data.get("attachment"), socket.project_id, uploader,
                                            socket.conversation_id)
    body = await conversation(app).command(path("internal", "visitor", "messages"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "message_id": data.get("id"),
        "text": data.get("text", ""), "attachment": attachment, "page_url": data.get("page_url"),
        "custom_params": socket.params, "chat_open": (await availability.now_open(app, socket.project_id))[0],
        "after": socket.last_seq, "conversation_id": socket.conversation_id})
    await _follow(app, socket, body["conversation_id"])
    await files.link(request, attachment, body["conversation_id"])
    # our own message (and anything before it) before the ack, as the answer brought them
    await socket.catch_up(app, body.get("events") if body["conversation_id"] == socket.conversation_id else None)
    await socket.send({"type": "ack", "id": data.get("id"), "seq": body["seq"], "conversation_id": body["conversation_id"]})


async def _post_contacts(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    """The contact form: stored (starting the conversation if the visitor has not written
    yet, with the params held on the socket), then `contacts_saved` to this socket only.
    Contacts are never an `event` for visitors (audience.for_visitor)."""
    app = request.app
    if not limits(app).messages_per_visitor.allow(socket.visitor_id):
        raise Rejected(429, "rate_limited", "You are sending too fast; wait a moment.")
    body = await conversation(app).command(path("internal", "visitor", "contacts"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "page_url": data.get("page_url"),
        "custom_params": socket.params, **{k: data.get(k) for k in ("name", "phone", "email")},
        "chat_open": (await availability.now_open(app, socket.project_id))[0]})
    await _follow(app, socket, body["conversation_id"])
    await socket.send({"type": "contacts_saved", "id": data.get("id") if isinstance(data.get("id"), str)
                               else None})


async def _post_offline(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    """The offline form: contacts and a message, stored as one command (a new conversation
    marked left_while_closed while the chat is closed, else into the visitor's own),
    answered by `offline_saved` with the frame's id; the message then shows as an event."""
    app = request.app
    if not (limits(app).messages_per_visitor.allow(socket.visitor_id)
            and limits(app).messages_per_address.allow(client_ip(request))):
        raise Rejected(429, "rate_limited", "You are sending too fast; wait a moment.")
    body = await conversation(app).command(path("internal", "visitor", "offline"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "message_id": data.get("id"),
        "text": data.get("text"), "page_url": data.get("page_url"), "custom_params": socket.params,
        **{k: data.get(k) for k in ("name", "phone", "email")},
        "chat_open": (await availability.now_open(app, socket.project_id))[0],
        "after": socket.last_seq, "conversation_id": socket.conversation_id})
    await _follow(app, socket, body["conversation_id"])
    await socket.send({"type": "offline_saved", "id": data.get("id"), "conversation_id": body["conversation_id"],
                       "seq": body["seq"]})
    await socket.catch_up(app, body.get("events"))


async def _follow(app: web.Application, socket: VisitorSocket, conversation_id: str) -> None:
    """The socket follows the visitor's conversation: bound to it on the first command;
    moved to it when a command started the next one after a closed conversation
    (conversations end), telling the widget with a `conversation` frame before any of
    the new conversation's events - their seqs start again at 1."""
    if socket.conversation_id == conversation_id:
        return
    sockets = app[VISITOR_SOCKETS]
    if socket.conversation_id is None:
        sockets.bind(socket, conversation_id)
        socket.params = {}
        return
    async with socket.lock:
        sockets.discard(socket)   # off the closed conversation, onto the new one
        sockets.add(socket)
        socket.last_seq = socket.read_upto = 0
        sockets.bind(socket, conversation_id)
        socket.params = {}
        await socket.send({"type": "conversation", "conversation_id": conversation_id})


async def close_all(app: web.Application) -> None:
    await send_queue.close_all([s.out for s in app[VISITOR_SOCKETS].everyone()], WSCloseCode.GOING_AWAY,
                               "gateway restarting")


async def end_ended_verified(app: web.Application) -> int:
    """Closes (4401) every open socket of a verified visitor whose token no longer stands
    (a rotated identity secret, or its expiry); the widget then asks for a session again,
    anonymous unless the page vouches anew. Returns how many were closed."""
    closed = 0
    for socket in app[VISITOR_SOCKETS].everyone():
        if socket.token is not None and verified_visitors.is_verified(socket.visitor_id) \
                and not await verified_visitors.still_verified(app, socket.token):
            socket.out.finish(CLOSE_TOKEN_ENDED, "visitor session ended")
            closed += 1
    if closed:
        log.info("closed verified visitors' sockets whose token ended", extra={"sockets": closed})
    return closed


# A verified visitor's open socket ends with its token, not at the next reconnect: checked
# every SECRET_TTL_SECONDS, the time a rotation takes to reach a gateway anyway.
verified_sweep = every(lambda: verified_visitors.SECRET_TTL_SECONDS, end_ended_verified, at_start=False)
