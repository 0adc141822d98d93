"""Each WebSocket's bounded send queue, drained by its own task: fan-out never waits on
the slowest reader.

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
later, so a dead client holds no memory for long."""
from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4408
TOO_SLOW_REASON = "too slow: send queue full; reconnect and resync"
MAX_QUEUED_FRAMES = 1000
MAX_QUEUED_BYTES = 1024 * 1024
CLOSE_GRACE_SECONDS = 10.0

_closing_tasks: set[asyncio.Task] = set()


class _Close:
    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


def serialize(frame: dict | str) -> str:
    return frame if isinstance(frame, str) else orjson.dumps(frame).decode()


class SendQueue:
    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None = None, *,
                 max_frames: int | None = None, max_bytes: int | None = None):
        self.ws, self.transport = ws, transport
        # Read here, not at import: a test may tighten the module's bounds.
        self.max_frames = max_frames or MAX_QUEUED_FRAMES
        self.max_bytes = max_bytes or MAX_QUEUED_BYTES
        self.closed = False           # no more frames are taken
        self.close_code: int | None = None
        self._frames: deque[str | _Close] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._drain(), name="websocket send queue")

    @property
    def open(self) -> bool:
        return not self.closed and not self.ws.closed

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: dict | str) -> bool:
        """Queue a live push without waiting; a full queue closes the socket (CLOSE_TOO_SLOW)."""
        if not self.open:
            return False
        text = serialize(frame)
        if self._full(len(text)):
            log.info("closing a socket that does not read", extra={"queued": len(self._frames),
                                                                   "queued_bytes": self._bytes})
            self.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
            return False
        self._append(text)
        return True

    async def send(self, frame: dict | str) -> None:
        """Queue a frame of the socket's own exchange, waiting for room if the queue is full."""
        text = serialize(frame)
        while self.open and self._full(len(text)):
            self._room.clear()
            await self._room.wait()
        if self.open:
            self._append(text)

    def finish(self, code: int, reason: str) -> None:
        """Close after what is queued now has been sent (session revoked, history unreadable)."""
        if self.open:
            self.closed = True
            self._frames.append(_Close(code, reason))
            self._ready.set()

    def close(self, code: int, reason: str) -> None:
        """Close now: what is queued is dropped, the close frame goes out, a peer that does not
        read is cut off after CLOSE_GRACE_SECONDS. Never waits."""
        if self.close_code is not None:
            return
        self.closed = True
        self.close_code = code
        self._frames.clear()
        self._bytes = 0
        self._room.set()
        self._task.cancel()   # it may be waiting on the network: the close frame goes after that frame
        task = asyncio.create_task(self._close(code, reason), name="websocket close")
        _closing_tasks.add(task)
        task.add_done_callback(_closing_tasks.discard)

    def stop(self) -> None:
        """The connection has ended (the handler returns): no more sending."""
        self.closed = True
        self._frames.clear()
        self._bytes = 0
        self._room.set()
        if self.close_code is None:
            self._task.cancel()
            self._done.set()

    async def wait_closed(self) -> None:
        await self._done.wait()

    def _full(self, size: int) -> bool:
        return bool(self._frames) and (len(self._frames) >= self.max_frames or self._bytes + size > self.max_bytes)

    def _append(self, text: str) -> None:
        self._frames.append(text)
        self._bytes += len(text)
        self._ready.set()

    async def _drain(self) -> None:
        try:
            while True:
                while not self._frames:
                    self._ready.clear()
                    await self._ready.wait()
                item = self._frames.popleft()
                if isinstance(item, _Close):
                    await self._close(item.code, item.reason)
                    return
                self._bytes -= len(item)
                self._room.set()
                await self.ws.send_str(item)
        except (ConnectionError, RuntimeError):  # the client went away: its handler ends
            self.stop()

    async def _close(self, code: int, reason: str) -> None:
        self.close_code = code
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
            self._done.set()

    def _unsent(self) -> int:
        if self.transport is None:
            return 0
        try:
            return self.transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):
            return 0

async def close_all(queues: list[SendQueue], code: int, reason: str) -> None:
    """Shutdown: every socket closed at once; waits for them, at most CLOSE_GRACE_SECONDS."""
    for queue in queues:
        queue.close(code, reason)
    waits = [asyncio.create_task(queue.wait_closed()) for queue in queues]
    if waits:
        _, late = await asyncio.wait(waits, timeout=CLOSE_GRACE_SECONDS)
        for task in late:
            task.cancel()
