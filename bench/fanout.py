"""Fan-out: visitor messages pushed to N operator sockets (all the project's admin), once
with every socket reading and once with one socket that stopped reading (a raw TCP
client with the smallest receive buffer, bench/clients.stalled_operator). The others'
p99 in the stalled run should stay within 1.2x of the unstalled run.

Both runs first push FILL large messages (about 4 KB each) to a probe socket and (in
the stalled run) the stalled one, before the N-1 measured sockets connect: enough (6 MB by default) to fill a
stalled reader's kernel buffers - on loopback the gateway's send buffer grows to
net.ipv4.tcp_wmem's maximum, 4 MB - and the gateway's own write buffer, so that a
fan-out that waits on its slowest reader shows it. Each message comes from a visitor of
its own, under every limit. The measurement starts once the probe has seen the whole
fill, or after a deadline (a fan-out stuck behind the stalled socket never lets it through)."""
from __future__ import annotations

import asyncio
import math
import socket
import time
import uuid

import aiohttp

from bench.clients import Operator, Tracker, Visitor, open_operator, owner_token, stalled_operator
from bench.common import Stack, Ticker, percentile, progress

BIG_TEXT = 3800


class VisitorCursor:
    """Hands out visitors from the end of the pool, each once: one message each."""

    def __init__(self, visitors: list[Visitor]):
        self.visitors = visitors
        self.next = len(visitors) - 1

    def take(self) -> Visitor:
        if self.next < 0:
            self.next = len(self.visitors) - 1
        v = self.visitors[self.next]
        self.next -= 1
        return v


async def _send_at(rate: float, texts: list[str], cursor: VisitorCursor, tracker: Tracker, label: str) -> None:
    started = time.perf_counter()
    tick = Ticker()
    i = 0
    while i < len(texts):
        due = min(len(texts), int((time.perf_counter() - started) * rate) + 1)
        while i < due:
            message_id = texts[i].split(" ", 1)[0]
            await cursor.take().send(message_id, texts[i])
            i += 1
        tick(lambda: f"{label}: sent {i}/{len(texts)}")
        await asyncio.sleep(0.005)


async def one_run(stack: Stack, http: aiohttp.ClientSession, cursor: VisitorCursor, *, sockets: int, fill: int,
                  fill_rate: float, messages: int, rate: float, wait: float, stalled: bool) -> dict:
    label = "fan-out, one socket stalled" if stalled else "fan-out, all reading"
    tracker = cursor.visitors[0].tracker
    token = await owner_token(http, stack.gateway)
    tag = f"F{uuid.uuid4().hex[:6]}"
    stuck: socket.socket | None = None
    extra: Operator | None = None
    readers: list[Operator] = []
    try:
        # The probe reads every push, fill included: the measurement starts once the fill is
        # through (or could not get through: a fan-out stuck behind the stalled socket).
        fill_seen: dict[str, float] = {}
        extra = await open_operator(http, stack.gateway, token, fill_seen, prefix=f"{tag}-fill")
        if stalled:
            stuck = await asyncio.to_thread(stalled_operator, stack.gateway, token)
        progress(f"{label}: {fill} messages of {BIG_TEXT} characters to the {'stalled' if stalled else 'probe'} socket first")
        fills = [f"{tag}-fill-{j} " + "x" * BIG_TEXT for j in range(fill)]
        await _send_at(fill_rate, fills, cursor, tracker, f"{label}, filling")
        fill_ids = {t.split(" ", 1)[0] for t in fills}
        deadline = time.perf_counter() + max(wait, 2 * fill / fill_rate)


        def fill_through() -> int:
            return len({t.split(" ", 1)[0] for t in fill_seen} & fill_ids)
        while time.perf_counter() < deadline and fill_through() + sum(1 for i in fill_ids if i in tracker.errors) < fill:
            await asyncio.sleep(0.2)
        gate = asyncio.Semaphore(64)
        tick = Ticker()

        async def connect() -> None:
            async with gate:
                readers.append(await open_operator(http, stack.gateway, token, {}, prefix=f"{tag}-m"))
                tick(lambda: f"{label}: {len(readers)}/{sockets - 1} operator sockets open")
        await asyncio.gather(*(connect() for _ in range(sockets - 1)))
        progress(f"{label}: {len(readers)} operator sockets reading; {messages} messages at {rate:.0f}/s")
        texts = [f"{tag}-m{j}" for j in range(messages)]
        started = time.perf_counter()
        await _send_at(rate, texts, cursor, tracker, label)
        deadline = time.perf_counter() + wait
        while time.perf_counter() < deadline and not all(len(r.delivered) >= messages for r in readers):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        latencies = [r.delivered[t] - tracker.sent[t] if t in r.delivered else math.inf
                     for r in readers for t in texts if t in tracker.sent and t not in tracker.errors]
        delivered = sum(1 for x in latencies if not math.isinf(x))
        closed_by_gateway = None
        if stuck is not None:
            closed_by_gateway = await asyncio.to_thread(_closed_by_peer, stuck)
        result = {"stalled": stalled, "sockets_measured": len(readers), "messages": messages, "rate_per_s": rate,
                  "fill_messages": fill, "fill_seen_by_probe": fill_through(), "pushes_expected": len(latencies), "pushes_delivered": delivered,
                  "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "elapsed_s": round(elapsed, 2),
                  "errors": _codes(tracker, tag),
                  "stalled_socket_closed_by_gateway": closed_by_gateway}
        progress(f"{label}: p50 {_ms(result['p50'])}, p99 {_ms(result['p99'])}, "
                 f"{delivered}/{len(latencies)} pushes arrived within {wait:.0f} s")
        return result
    finally:
        if stuck is not None:
            stuck.close()
        closers = readers + ([extra] if extra else [])  # the probe
        await asyncio.gather(*(r.close() for r in closers), return_exceptions=True)


def _codes(tracker: Tracker, tag: str) -> dict[str, int]:
    """Refusals of this run's messages (fill and measured), by code."""
    codes: dict[str, int] = {}
    for message_id, (code, _) in tracker.errors.items():
        if message_id.startswith(tag):
            codes[code] = codes.get(code, 0) + 1
    return codes


def _ms(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds * 1000:.0f} ms"


def _closed_by_peer(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Reads what the stalled socket was sent until the gateway closes it (True) or
    nothing more comes for `timeout` seconds (False: the gateway still holds it open)."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(1 << 20):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


async def run(stack: Stack, http: aiohttp.ClientSession, visitors: list[Visitor], *, sockets: int, fill: int,
              fill_rate: float, messages: int, rate: float, wait: float) -> dict:
    cursor = VisitorCursor(visitors)
    kwargs = dict(sockets=sockets, fill=fill, fill_rate=fill_rate, messages=messages, rate=rate, wait=wait)
    unstalled = await one_run(stack, http, cursor, stalled=False, **kwargs)
    stalled = await one_run(stack, http, cursor, stalled=True, **kwargs)
    ratio = stalled["p99"] / unstalled["p99"] if unstalled["p99"] and not math.isinf(unstalled["p99"]) else None
    return {"unstalled": unstalled, "stalled": stalled,
            "p99_ratio": (round(ratio, 2) if ratio is not None and not math.isinf(ratio) else ratio),
            "goal_ratio": 1.2}
