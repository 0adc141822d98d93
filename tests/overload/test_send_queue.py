"""The per-socket send queue (gateway/live/send_queue.py) against a fake WebSocket: no network.

What it must keep: frames leave in the order queued; a full queue closes a live push's
socket with 4408 and never waits; an idle socket holds no drain task (a gateway holds
thousands of idle widgets, and a task each was most of their memory beyond aiohttp's)."""
from __future__ import annotations

import asyncio
import socket

from gateway.live import send_queue
from gateway.live.send_queue import CLOSE_TOO_SLOW, SendQueue


class FakeWebSocket:
    """Records what is sent; `gate` cleared makes send_str wait, as a peer that stopped reading."""

    def __init__(self):
        self.sent: list[str] = []
        self.closed = False
        self.close_code: int | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_str(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)

    async def close(self, *, code: int, message: bytes, drain: bool) -> None:
        self.closed, self.close_code = True, code


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_leave_in_order_and_an_idle_queue_holds_no_task():
    ws = FakeWebSocket()
    queue = SendQueue(ws)
    assert queue._task is None and queue._frames is None
    await queue.send({"type": "hello"})
    assert queue.push('{"n":1}') and queue.push({"n": 2})
    await queue.send({"n": 3})
    await settle()
    assert ws.sent == ['{"type":"hello"}', '{"n":1}', '{"n":2}', '{"n":3}']
    assert queue._task is None and queue._frames is None and len(queue) == 0, "drained: nothing held"
    queue.push({"n": 4})   # the next frame starts the drain again
    await settle()
    assert ws.sent[-1] == '{"n":4}' and queue._task is None


async def test_a_full_queue_closes_on_push_without_waiting_and_send_waits_for_room():
    ws = FakeWebSocket()
    queue = SendQueue(ws, max_frames=3)
    ws.gate.clear()   # the peer stops reading: the first frame is stuck on the network
    for n in range(4):   # one on the network, three queued
        assert queue.push({"n": n})
        await settle()
    waiting = asyncio.create_task(queue.send({"own": "ack"}))   # a frame of its own exchange waits for room
    await settle()
    assert not waiting.done() and len(queue) == 3
    ws.gate.set()   # it reads again: room, and the waiting frame goes after the others
    await waiting
    await settle()
    assert [f for f in ws.sent] == ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', '{"own":"ack"}']

    ws.gate.clear()
    for n in range(4):
        assert queue.push({"m": n})
        await settle()
    assert not queue.push({"m": 4}), "full: the push is refused and the socket closed, at once"
    await settle()
    assert queue.close_code == CLOSE_TOO_SLOW and ws.close_code == CLOSE_TOO_SLOW
    assert not queue.open and len(queue) == 0, "what was queued is dropped"
    await asyncio.wait_for(queue.wait_closed(), 5)


async def test_finish_closes_after_what_is_queued_and_stop_ends_the_waits():
    ws = FakeWebSocket()
    queue = SendQueue(ws)
    queue.push({"n": 1})
    queue.finish(4401, "session revoked")
    assert not queue.push({"n": 2}), "nothing is taken after finish"
    await asyncio.wait_for(queue.wait_closed(), 5)
    assert ws.sent == ['{"n":1}'] and ws.close_code == 4401

    other = SendQueue(FakeWebSocket())
    waiter = asyncio.create_task(other.wait_closed())
    await settle()
    other.stop()   # the handler returned
    await asyncio.wait_for(waiter, 5)
    await other.wait_closed()   # and at once after


def test_the_kernel_send_buffer_is_capped_so_a_stalled_reader_shows_soon():
    class Transport:   # what SendQueue asks of aiohttp's transport: its socket
        def __init__(self, sock):
            self.sock = sock

        def get_extra_info(self, name):
            return self.sock if name == "socket" else None

    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        SendQueue(FakeWebSocket(), Transport(accepted))
        # Set (which also stops Linux growing it, to megabytes on loopback): Linux reports
        # twice what was asked (its bookkeeping), at most net.core.wmem_max.
        wmem_max = int(open("/proc/sys/net/core/wmem_max").read())
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == \
            2 * min(send_queue.KERNEL_SEND_BUFFER, wmem_max)
    finally:
        for s in (client, accepted, server):
            s.close()
