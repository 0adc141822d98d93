"""Fan-out never waits on the slowest reader (issue 12, item 6).

One operator socket and one visitor socket stop reading while others chat. Every socket
has a bounded send queue drained by its own task, so the others get every message as it
comes; the stalled sockets are closed with 4408 once their queue is full, and the
visitor's resumes with `after=` without a gap or a duplicate. Nothing here measures time:
the check is that the others had every message while the stalled ones were stuck, and
that the stall was noticed within a bounded number of messages."""
from __future__ import annotations

import asyncio
import secrets
import socket as sockets_

import aiohttp

from gateway.live import send_queue
from gateway.live.operator_sockets import SOCKETS as OPERATOR_SOCKETS
from gateway.live.send_queue import CLOSE_TOO_SLOW, SendQueue
from gateway.live.visitor_sockets import VISITOR_SOCKETS
from devstack.visitor_protocol import VisitorView, socket_protocols
from tests.visitor import ScriptedVisitor
from tests.overload.conftest import SMALL_BUFFER, StalledSocket, started_visitor
from tests.support import eventually

# A long message that compression cannot shrink: a few KB a frame, so buffers fill in a few dozen.
TEXT = secrets.token_urlsafe(2250)
MAX_ROUNDS = 300         # the stall must be noticed well within this many messages


class Reader:
    """A reading operator socket: keeps every visitor message id it is pushed."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws, self.message_ids = ws, set()

    async def run(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frame = msg.json()
                if frame.get("type") == "conversation_event" and frame["event"] == "chat.visitor_message_posted":
                    self.message_ids.add(frame["data"]["message_id"])


def server_side(queues: list[SendQueue], client: StalledSocket) -> SendQueue:
    """The gateway's queue of this client's socket (matched by the client's port)."""
    return next(q for q in queues if q.transport.get_extra_info("peername")[1] == client.port)


def shrink_send_buffer(queue: SendQueue) -> None:
    """Loopback's send buffer grows to megabytes; a small one makes the stall show sooner."""
    queue.transport.get_extra_info("socket").setsockopt(sockets_.SOL_SOCKET, sockets_.SO_SNDBUF, SMALL_BUFFER)


async def test_stalled_sockets_are_closed_and_never_hold_up_the_others(
        stack, no_rate_limits, stalled_sockets, owner_token, monkeypatch):
    monkeypatch.setattr(send_queue, "MAX_QUEUED_FRAMES", 16)
    monkeypatch.setattr(send_queue, "MAX_QUEUED_BYTES", 64 * 1024)
    # A closed client that never reads is cut off after the grace; this one reads once it
    # sees the close on the gateway's side, however slow the machine.
    monkeypatch.setattr(send_queue, "CLOSE_GRACE_SECONDS", 120)

    # Two reading operator sockets (the owner is an admin: every conversation is pushed to them).
    readers = [Reader(await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {owner_token}"})) for _ in range(2)]
    reading = [asyncio.create_task(r.run()) for r in readers]
    # The visitor whose second socket (another tab) stalls, and two others.
    talker = await started_visitor(stack)
    others = [await started_visitor(stack) for _ in range(2)]
    await talker.send_and_wait("Hello")

    stalled_operator = await stalled_sockets("/ws/operator", headers={"Authorization": f"Bearer {owner_token}"})
    stalled_visitor = await stalled_sockets(f"/ws/visitor?after={talker.last_seq}", protocols=socket_protocols(talker.token))
    await eventually(lambda: len(stack.gateway.app[OPERATOR_SOCKETS].all()) == 3, what="the third operator socket")
    stalled_op_queue = server_side([s.out for s in stack.gateway.app[OPERATOR_SOCKETS].all()], stalled_operator)
    visitor_queues = [s.out for s in stack.gateway.app[VISITOR_SOCKETS].by_visitor[talker.visitor_id]]
    await eventually(lambda: len(stack.gateway.app[VISITOR_SOCKETS].by_visitor[talker.visitor_id]) == 2,
                     what="the stalled visitor socket")
    visitor_queues = [s.out for s in stack.gateway.app[VISITOR_SOCKETS].by_visitor[talker.visitor_id]]
    stalled_visitor_queue = server_side(visitor_queues, stalled_visitor)
    for queue in (stalled_op_queue, stalled_visitor_queue):
        shrink_send_buffer(queue)
    # From here on the test does not read stalled_operator nor stalled_visitor - until the
    # gateway has closed them: then it reads what the network held, and the close code.

    async def read_once_closed(client: StalledSocket, queue: SendQueue) -> list[dict]:
        await eventually(lambda: queue.close_code is not None, timeout=600, what="the close")
        return await client.read_to_the_close()
    reading_stalled = [asyncio.create_task(read_once_closed(stalled_operator, stalled_op_queue)),
                       asyncio.create_task(read_once_closed(stalled_visitor, stalled_visitor_queue))]

    sent: list[str] = []
    rounds = 0
    while stalled_op_queue.close_code is None or stalled_visitor_queue.close_code is None:
        rounds += 1
        for visitor in (talker, *others):
            sent.append(await visitor.send_and_wait(f"{len(sent)} {TEXT}"))
        # Everything so far reached the reading operators and visitors, stalled sockets or not.
        await eventually(lambda: all(set(sent) <= r.message_ids for r in readers), timeout=30,
                         what=f"round {rounds}'s messages at the reading operators")
        for visitor in (talker, *others):
            mine = [m for m in sent if m in visitor.acks]
            await visitor.wait_for(lambda: {e.get("id") for e in visitor.events} >= set(mine), "own messages")

    assert stalled_op_queue.close_code == CLOSE_TOO_SLOW and stalled_visitor_queue.close_code == CLOSE_TOO_SLOW
    # Others go on as before after the close.
    for visitor in (talker, *others):
        sent.append(await visitor.send_and_wait(f"after the close {len(sent)}"))
    await eventually(lambda: all(set(sent) <= r.message_ids for r in readers), timeout=30,
                     what="the last messages at the reading operators")

    # The stalled clients, reading at last, find what the network held and then the close code.
    _, seen = await asyncio.gather(*reading_stalled)
    assert stalled_operator.close_code == CLOSE_TOO_SLOW
    assert stalled_visitor.close_code == CLOSE_TOO_SLOW
    seqs = [f["seq"] for f in seen if f["type"] == "event"]
    assert seqs == sorted(set(seqs)), "in order, no duplicate, up to the close"

    # The stalled tab comes back with after= and gets the rest: no gap, no duplicate.
    resumed = ScriptedVisitor(stack.gateway, token=talker.token, visitor_id=talker.visitor_id, view=VisitorView(
        conversation_id=talker.conversation_id, last_seq=max(seqs, default=talker.acks[sent[0]] if sent else 0)))
    await resumed.connect()
    await resumed.wait_for(lambda: resumed.last_seq >= talker.last_seq, "the resumed tab to catch up", timeout=30)
    resumed_seqs = [e["seq"] for e in resumed.events]
    everything = sorted(seqs + resumed_seqs)
    first = everything[0]
    assert everything == list(range(first, talker.last_seq + 1)), "every event once, across the close"
    mine = [m for m in sent if m in talker.acks]
    assert set(mine) <= {e.get("id") for e in talker.events}

    for ws in (*[r.ws for r in readers],):
        await ws.close()
    await asyncio.gather(*reading)
    for visitor in (talker, resumed, *others):
        await visitor.drop()
