"""The visitor sockets this gateway holds, and what is pushed to them.

`VisitorSocket` is one widget connection: every event is sent under one lock and only if
its `seq` is above the last one sent, so a reconnect with `after=<seq>` gets every visible
event once, in order, whatever arrives while the history is being read. Every frame goes
out through the socket's bounded send queue (send_queue.py), in the order it was queued;
a live event never waits.

`VisitorSockets` (app[VISITOR_SOCKETS]) finds them by visitor and by conversation. It
lives apart from the `/ws/visitor` handler (visitor_socket.py) because the live paths
(push, typing, availability) write to these sockets and must not depend on the handler."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, web

from parley.http import Rejected
from parley.loops import every
from parley.service_client import path

from gateway import verified_visitors
from gateway.live import audience, send_queue
from gateway.live.send_queue import CLOSE_TOO_SLOW, TOO_SLOW_REASON, SendQueue
from gateway.upstreams import conversation
from gateway.visitor_tokens import VisitorToken

log = logging.getLogger(__name__)

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


def push_to_project(app: web.Application, project_id: str, frame: bytes) -> None:
    """An encoded frame to every visitor socket of the project; never waits on a socket
    (one going away drops it and asks again on reconnect)."""
    for socket in app[VISITOR_SOCKETS].everyone():
        if socket.project_id == project_id:
            socket.out.push(frame)


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
