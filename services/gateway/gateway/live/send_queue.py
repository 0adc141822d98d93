"""Each WebSocket's bounded send queue, drained by a task of its own while it holds
frames: fan-out never waits on the slowest reader.

Two ways in:
- `push(frame)`: a live push (a conversation event, a notification, availability). It
  is queued without waiting; if the queue is full - the client has stopped reading and
  the network's buffers are full too - the socket is closed with `CLOSE_TOO_SLOW`
  (4408) and what was queued is dropped. The client reconnects and resyncs: the widget
  with `after=<last seq>`, the operator app by re-reading its views.
- `await send(frame)`: a frame of the socket's own exchange with its client (hello, the
  history after `after=`, an ack, an error). It waits for room instead: a client that
  does not read slows only its own requests.

Frames leave in the order they were queued, whichever way they came in. A frame may be
a dict (serialized here) or a str already serialized (one push to many sockets is
serialized once). A socket closed by overflow gets its close frame after what the
network already holds; a peer that still does not read is cut off `CLOSE_GRACE_SECONDS`
later, so a dead client holds no memory for long.

The kernel's send buffer of each socket is capped (KERNEL_SEND_BUFFER): left alone, on a
fast network it grows to net.ipv4.tcp_wmem's maximum (4 MB on loopback), and a client
that stopped reading would only be noticed after some 5 MB - at a chat's few KB a
minute, never - while holding that much kernel memory. Chat frames are small; 128 KB in
flight per socket is ample for any client that reads."""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque

import orjson
from aiohttp import web

from gateway.live import socket_metrics

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4408
TOO_SLOW_REASON = "too slow: send queue full; reconnect and resync"
MAX_QUEUED_FRAMES = 1000
MAX_QUEUED_BYTES = 1024 * 1024
CLOSE_GRACE_SECONDS = 10.0
KERNEL_SEND_BUFFER = 128 * 1024   # SO_SNDBUF asked for; Linux doubles it for its bookkeeping

_closing_tasks: set[asyncio.Task] = set()


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


def serialize(frame: dict | str) -> str:
    return frame if isinstance(frame, str) else orjson.dumps(frame).decode()


class SendQueue:
    """An idle socket (most of a gateway's: widgets left open) holds no task, no event and
    no deque here, only the few slots below: the drain task and the deque are made when a
    frame is queued and let go when all is sent, and the futures a waiter needs only while
    someone waits. (A task waiting on an asyncio.Event per socket cost about 3 KB each.)"""
    __slots__ = ("ws", "transport", "max_frames", "max_bytes", "closed", "close_code",
                 "_frames", "_bytes", "_task", "_room", "_done", "_ended")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None = None, *,
                 max_frames: int | None = None, max_bytes: int | None = None):
        self.ws, self.transport = ws, transport
        _cap_kernel_send_buffer(transport)
        # Read here, not at import: a test may tighten the module's bounds.
        self.max_frames = max_frames or MAX_QUEUED_FRAMES
        self.max_bytes = max_bytes or MAX_QUEUED_BYTES
        self.closed = False           # no more frames are taken
        self.close_code: int | None = None
        self._frames: deque[str | _Close] | None = None   # None while nothing waits to be sent
        self._bytes = 0
        self._task: asyncio.Task | None = None      # the drain, running only while frames wait
        self._room: asyncio.Future | None = None    # send()s waiting for room
        self._done: asyncio.Future | None = None    # wait_closed()s waiting
        self._ended = False                         # the connection is over: wait_closed returns

    @property
    def open(self) -> bool:
        return not self.closed and not self.ws.closed

    def __len__(self) -> int:
        return len(self._frames) if self._frames else 0

    def push(self, frame: dict | str) -> bool:
        """Queue a live push without waiting; a full queue closes the socket (CLOSE_TOO_SLOW)."""
        if not self.open:
            return False
        text = serialize(frame)
        if self._full(len(text)):
            log.info("closing a socket that does not read", extra={"queued": len(self), "queued_bytes": self._bytes})
            self.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
            return False
        self._append(text)
        return True

    async def send(self, frame: dict | str) -> None:
        """Queue a frame of the socket's own exchange, waiting for room if the queue is full."""
        text = serialize(frame)
        while self.open and self._full(len(text)):
            if self._room is None:
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)   # one waiter cancelled must not cancel the others' wait
        if self.open:
            self._append(text)

    def finish(self, code: int, reason: str) -> None:
        """Close after what is queued now has been sent (session revoked, history unreadable)."""
        if self.open:
            self.closed = True
            self._append(_Close(code, reason))

    def close(self, code: int, reason: str) -> None:
        """Close now: what is queued is dropped, the close frame goes out, a peer that does not
        read is cut off after CLOSE_GRACE_SECONDS. Never waits."""
        if self.close_code is not None:
            return
        self.closed = True
        self.close_code = code
        self._drop_queued()
        if self._task is not None:
            self._task.cancel()   # it may be waiting on the network: the close frame goes after that frame
            self._task = None
        task = asyncio.create_task(self._close(code, reason), name="websocket close")
        _closing_tasks.add(task)
        task.add_done_callback(_closing_tasks.discard)

    def stop(self) -> None:
        """The connection has ended (the handler returns): no more sending."""
        self.closed = True
        self._drop_queued()
        if self.close_code is None:
            if self._task is not None and self._task is not asyncio.current_task():
                self._task.cancel()
            self._task = None
            self._end()

    async def wait_closed(self) -> None:
        if self._ended:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._done)

    def _full(self, size: int) -> bool:
        return bool(self._frames) and (len(self._frames) >= self.max_frames or self._bytes + size > self.max_bytes)

    def _append(self, item: str | _Close) -> None:
        if self._frames is None:
            self._frames = deque()
        self._frames.append(item)
        if isinstance(item, str):
            self._bytes += len(item)
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="websocket send queue")

    def _drop_queued(self) -> None:
        self._frames = None
        self._bytes = 0
        self._wake(self._room)
        self._room = None

    def _end(self) -> None:
        self._ended = True
        self._wake(self._done)

    @staticmethod
    def _wake(waiters: asyncio.Future | None) -> None:
        if waiters is not None and not waiters.done():
            waiters.set_result(None)

    async def _drain(self) -> None:
        try:
            while True:
                frames = self._frames
                if not frames:   # all sent: the task ends; the next frame starts another
                    self._frames = self._task = None
                    return
                item = frames.popleft()
                if isinstance(item, _Close):
                    self._frames = None
                    await self._close(item.code, item.reason)
                    self._task = None
                    return
                self._bytes -= len(item)
                self._wake(self._room)
                self._room = None
                await self.ws.send_str(item)
        except (ConnectionError, RuntimeError):  # the client went away: its handler ends
            self._task = None
            self.stop()

    async def _close(self, code: int, reason: str) -> None:
        self.close_code = code
        socket_metrics.closed_by_gateway(code)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_GRACE_SECONDS
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode(), drain=False),
                                   CLOSE_GRACE_SECONDS)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError) as e:
            log.debug("websocket close did not complete", extra={"error": repr(e)})
        try:
            # The close frame may still wait behind what the peer has not read: it gets the
            # rest of the grace to read it, and is then cut off (nothing held for it any more).
            while self._unsent() and loop.time() < deadline:
                await asyncio.sleep(0.25)
            if self._unsent():
                self.transport.abort()
        finally:
            self._end()

    def _unsent(self) -> int:
        if self.transport is None:
            return 0
        try:
            return self.transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):
            return 0


def _cap_kernel_send_buffer(transport: asyncio.BaseTransport | None) -> None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)
    except OSError as e:   # not a TCP socket (a test's pipe): nothing to cap
        log.debug("send buffer not capped", extra={"error": repr(e)})


async def close_all(queues: list[SendQueue], code: int, reason: str) -> None:
    """Shutdown: every socket closed at once; waits for them, at most CLOSE_GRACE_SECONDS."""
    for queue in queues:
        queue.close(code, reason)
    waits = [asyncio.create_task(queue.wait_closed()) for queue in queues]
    if waits:
        _, late = await asyncio.wait(waits, timeout=CLOSE_GRACE_SECONDS)
        for task in late:
            task.cancel()
