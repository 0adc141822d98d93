"""Fan-out: visitor messages pushed to N operator sockets (all one plain operator's), once
with every socket reading and once with one socket that stopped reading (a raw TCP
client with the smallest receive buffer, bench/clients.stalled_operator). The others'
fan-out spread (each push against the message's first arrival on any socket) should
keep its p99 within 1.2x of the unstalled runs' (one before it and one after it; the
floor is their mean); the end-to-end p99 is reported beside it. A message's pushes to the N sockets share its
fate, so the percentiles are over messages more than pushes: with 40 messages p99 was
the slowest one, and one pause anywhere in a run moved the verdict between 0.4x and
1.8x; 160 (MESSAGES in `make bench`) put a single slow message below the 1 %.

Both runs first push FILL large messages (about 4 KB each) to a probe socket and (in
the stalled run) the stalled one, before the N-1 measured sockets connect: enough (2 MB
by default) to fill a stalled reader's kernel buffers - the gateway caps each socket's
send buffer (send_queue.KERNEL_SEND_BUFFER, 256 KB as Linux counts it) - and its bounded
send queue (1 MB), so the gateway must close it with 4408 during the fill, and a fan-out
that waited on its slowest reader would show it. The fill goes at FILL_RATE, which the
stack sustains; a fill message refused (`busy`, under admission control) is sent again
from another visitor, so the fill really reaches the sockets. Each message comes from a
visitor of its own, under every limit. The measurement starts once the probe has seen
the whole fill, or after a deadline (a fan-out stuck behind the stalled socket never
lets it through). After the measurement the stalled socket is read at last: the report
says whether the gateway closed it, and with which code."""
from __future__ import annotations

import asyncio
import math
import socket
import struct
import time
import uuid

import aiohttp

from bench.clients import (Operator, Tracker, Visitor, open_operator, owner_token, plain_operator_token,
                           stalled_operator)
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


async def one_run(stack: Stack, http: aiohttp.ClientSession, cursor: VisitorCursor, token: str, *, sockets: int,
                  fill: int, fill_rate: float, messages: int, rate: float, wait: float, stalled: bool) -> dict:
    label = "fan-out, one socket stalled" if stalled else "fan-out, all reading"
    tracker = cursor.visitors[0].tracker
    tag = f"F{uuid.uuid4().hex[:6]}"
    stuck: socket.socket | None = None
    extra: Operator | None = None
    readers: list[Operator] = []
    too_slow_before = await _too_slow_closes(http, stack)
    try:
        # The probe reads every push, fill included: the measurement starts once the fill is
        # through (or could not get through: a fan-out stuck behind the stalled socket).
        fill_seen: dict[str, float] = {}
        extra = await open_operator(http, stack.gateway, token, fill_seen, prefix=f"{tag}-fill")
        if stalled:
            stuck = await asyncio.to_thread(stalled_operator, stack.gateway, token)
        progress(f"{label}: {fill} messages of {BIG_TEXT} characters to the {'stalled' if stalled else 'probe'} socket first")
        fill_ids, refused = await _fill(fill, fill_rate, tag, cursor, tracker, fill_seen, label,
                                        deadline=time.perf_counter() + max(wait, 3 * fill / fill_rate))
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
        # Each push against the message's first arrival on any socket: the fan-out alone,
        # without the way to the gateway (a database checkpoint, a Kafka flush), which
        # moves every socket's arrival of a message together.
        spread = []
        for t in texts:
            arrived = [r.delivered[t] for r in readers if t in r.delivered]
            if arrived and t in tracker.sent and t not in tracker.errors:
                first = min(arrived)
                spread += [x - first for x in arrived] + [math.inf] * (len(readers) - len(arrived))
        delivered = sum(1 for x in latencies if not math.isinf(x))
        closed_by_gateway, close_code = None, None
        if stuck is not None:
            closed_by_gateway, close_code = await asyncio.to_thread(_closed_by_peer, stuck)
        too_slow_after = await _too_slow_closes(http, stack)
        too_slow_closes = None if too_slow_after is None or too_slow_before is None else too_slow_after - too_slow_before
        result = {"stalled": stalled, "sockets_measured": len(readers), "messages": messages, "rate_per_s": rate,
                  "fill_messages": fill, "fill_seen_by_probe": len(fill_ids & _seen(fill_seen)),
                  "fill_refused_and_resent": refused,
                  "pushes_expected": len(latencies), "pushes_delivered": delivered,
                  "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "elapsed_s": round(elapsed, 2),
                  "spread_p50": percentile(spread, 50), "spread_p99": percentile(spread, 99),
                  "errors": _codes(tracker, tag),
                  "stalled_socket_closed_by_gateway": closed_by_gateway,
                  # 4408 when its close frame was read; None when it was reset (cut off after the grace)
                  "stalled_socket_close_code": close_code,
                  # the gateway's own count (parley_ws_gateway_closes_total{code="4408"}) during the run
                  "gateway_4408_closes": too_slow_closes}
        progress(f"{label}: p50 {_ms(result['p50'])}, p99 {_ms(result['p99'])}, "
                 f"{delivered}/{len(latencies)} pushes arrived within {wait:.0f} s"
                 + ("" if stuck is None else f"; stalled socket closed by the gateway: {closed_by_gateway}"
                                             f" (code on the wire {close_code}; the gateway counted "
                                             f"{too_slow_closes} closes with 4408)"))
        return result
    finally:
        if stuck is not None:
            stuck.close()
        closers = readers + ([extra] if extra else [])  # the probe
        await asyncio.gather(*(r.close() for r in closers), return_exceptions=True)


async def _fill(fill: int, fill_rate: float, tag: str, cursor: VisitorCursor, tracker: Tracker,
                fill_seen: dict[str, float], label: str, *, deadline: float) -> tuple[set[str], int]:
    """FILL large messages through to the probe (and the stalled socket); one refused is
    sent again, under a new id from the next visitor, until all are through or the
    deadline passes. Returns the ids that were accepted, and how many were resent."""
    pending = [f"{tag}-fill-{j}" for j in range(fill)]
    accepted: set[str] = set()
    refused = 0
    attempt = 0
    while pending and time.perf_counter() < deadline:
        await _send_at(fill_rate, [f"{i} " + "x" * BIG_TEXT for i in pending], cursor, tracker, f"{label}, filling")
        # Settled: acked (through) or refused (send again).
        while time.perf_counter() < deadline and not all(i in tracker.acked or i in tracker.errors for i in pending):
            await asyncio.sleep(0.2)
        accepted |= {i for i in pending if i in tracker.acked}
        again = [i for i in pending if i in tracker.errors]
        refused += len(again)
        attempt += 1
        pending = [f"{i}-r{attempt}" for i in again]
        if pending:
            progress(f"{label}: {len(pending)} fill messages refused ({_codes(tracker, tag)}); sending them again")
            await asyncio.sleep(1.0)
    while time.perf_counter() < deadline and not accepted <= _seen(fill_seen):
        await asyncio.sleep(0.2)
    return accepted, refused


async def _too_slow_closes(http: aiohttp.ClientSession, stack: Stack) -> int | None:
    """The gateway's count of sockets it closed as too slow (4408), from its internal /metrics."""
    try:
        async with http.get(f"http://127.0.0.1:{stack.env['PARLEY_INTERNAL_PORT']}/metrics") as r:
            text = await r.text()
    except (aiohttp.ClientError, KeyError, asyncio.TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith('parley_ws_gateway_closes_total{code="4408"}'):
            return int(float(line.split()[-1]))
    return 0


def _seen(delivered: dict[str, float]) -> set[str]:
    return {t.split(" ", 1)[0] for t in delivered}


def _codes(tracker: Tracker, tag: str) -> dict[str, int]:
    """Refusals of this run's messages (fill and measured), by code."""
    codes: dict[str, int] = {}
    for message_id, (code, _) in tracker.errors.items():
        if message_id.startswith(tag):
            codes[code] = codes.get(code, 0) + 1
    return codes


def _ms(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds * 1000:.0f} ms"


def _closed_by_peer(sock: socket.socket, timeout: float = 3.0) -> tuple[bool, int | None]:
    """Reads what the stalled socket was sent until the gateway closes it (True, with the
    close frame's code if it came before the end: 4408 for too slow) or nothing more comes
    for `timeout` seconds (False: the gateway still holds it open)."""
    sock.settimeout(timeout)
    frames = _Frames()
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return True, frames.close_code
            frames.feed(chunk)
    except (ConnectionResetError, BrokenPipeError):
        return True, frames.close_code
    except (socket.timeout, TimeoutError):
        return False, frames.close_code


class _Frames:
    """Just enough of a WebSocket frame reader (server frames are never masked) to find the
    close frame's code in what the stalled socket is finally read."""

    def __init__(self):
        self.buffer = bytearray()
        self.close_code: int | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            opcode, size, head = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                size, head = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                size, head = struct.unpack("!Q", self.buffer[2:10])[0], 10
            if len(self.buffer) < head + size:
                return
            if opcode == 0x8 and size >= 2:
                self.close_code = struct.unpack("!H", self.buffer[head:head + 2])[0]
            del self.buffer[:head + size]


async def run(stack: Stack, http: aiohttp.ClientSession, visitors: list[Visitor], *, sockets: int, fill: int,
              fill_rate: float, messages: int, rate: float, wait: float) -> dict:
    cursor = VisitorCursor(visitors)
    # The sockets are a plain operator's, who sees every new conversation's messages: an
    # admin's would also get the unanswered alerts of the thousands of conversations the
    # ladder started minutes before (each to every admin socket), whose bursts, not the
    # stalled socket, decided the p99 of whichever run they fell in (0.3-2x).
    token = await plain_operator_token(http, stack.gateway, await owner_token(http, stack.gateway))
    kwargs = dict(token=token, sockets=sockets, fill=fill, fill_rate=fill_rate, messages=messages, rate=rate, wait=wait)
    # All reading, one stalled, all reading again: the floor is the mean of the runs
    # either side, so what the stack drifts by over the minutes (the second run of a pair
    # measured slower whichever it was) does not count for or against the stall.
    unstalled = await one_run(stack, http, cursor, stalled=False, **kwargs)
    stalled = await one_run(stack, http, cursor, stalled=True, **kwargs)
    again = await one_run(stack, http, cursor, stalled=False, **kwargs)
    return {"unstalled": unstalled, "stalled": stalled, "unstalled_again": again,
            # The verdict: the fan-out's own spread, which is what a stalled socket could slow.
            "spread_p99_ratio": _ratio(stalled, unstalled, again, "spread_p99"),
            # Beside it, end to end, which also carries whatever else the stack did meanwhile.
            "p99_ratio": _ratio(stalled, unstalled, again, "p99"),
            "goal_ratio": 1.2}


def _ratio(stalled: dict, before: dict, after: dict, key: str) -> float | None:
    floor = (before[key] + after[key]) / 2
    ratio = stalled[key] / floor if floor and not math.isinf(floor) else None
    return round(ratio, 2) if ratio is not None and not math.isinf(ratio) else ratio
