"""Visitors on the site now (issue 24, item 2): 10,000 live visitors on one gateway must
not hurt the hot path.

The ladder's visitor sockets are all live visitors already (every widget connects and
is listed). This section makes them browse: each tells the gateway a new page every
BROWSE_SECONDS (a page frame with a 200-character URL, a title, a referrer and its
last pages), so the gateway cleans 10,000 / BROWSE_SECONDS page frames a second and
tells the other gateways each second. It then times the hot path with and without the
browsing, in alternating steps at the same rate (ratios of the p99, and of the CPU per
message), and GET /api/visitors/live for the project's 10,000 visitors against
GET /api/session, the cheapest authenticated call, in the same run."""
from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp
import orjson

from bench.clients import Tracker, Visitor, owner_token, open_operator
from bench.common import CpuMeter, Stack, percentile, progress
from bench.visitor_to_operator import parley_step, start_conversations

BROWSE_SECONDS = 30.0


def page_frame(i: int, n: int) -> str:
    url = f"https://shop.example/catalogue/chairs/{n}?utm_source=newsletter&ref=" + "x" * 120
    return orjson.dumps({"type": "page", "url": url, "title": f"Chair {n} - Shop", "referrer": "https://search.example/",
                         "landing_url": url, "started_at": int(time.time() * 1000) - 60_000, "pages_seen": n,
                         "pages": [{"url": url, "title": f"Chair {n}", "at": int(time.time() * 1000)}]}).decode()


async def browse(visitors: list[Visitor], stop: asyncio.Event, seconds: float) -> int:
    """Each visitor a new page every `seconds`, spread evenly; returns the frames sent."""
    sent, n = 0, 0
    started = time.perf_counter()
    rate = len(visitors) / seconds
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate)
        while sent < due:
            visitor = visitors[sent % len(visitors)]
            if not visitor.ws.closed:
                await visitor.ws.send_str(page_frame(visitor.index, n + sent // len(visitors)))
            sent += 1
        await asyncio.sleep(0.01)
    return sent


async def _timed_gets(http: aiohttp.ClientSession, url: str, token: str, count: int) -> tuple[list[float], dict]:
    times, body = [], {}
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        times.append(time.perf_counter() - started)
    return times, body


async def run(stack: Stack, http: aiohttp.ClientSession, visitors: list[Visitor], *, rate: float, step_seconds: float,
              drain_seconds: float, pairs: int = 2, gets: int = 50) -> dict:
    tracker: Tracker = visitors[0].tracker
    token = await owner_token(http, stack.gateway)
    operator = await open_operator(http, stack.gateway, token, tracker.delivered, prefix="L")   # parley_step's ids
    meter = CpuMeter(stack)
    rows: dict[str, list[dict]] = {"idle": [], "browsing": []}
    frames = 0
    try:
        progress(f"live visitors: {len(visitors)} visitors start browsing, a page each every {BROWSE_SECONDS:.0f} s "
                 f"({len(visitors) / BROWSE_SECONDS:.0f} page frames/s)")
        # Alone (without the ladder before it) every message would start a conversation at first.
        await start_conversations([v for v in visitors if not v.has_written], tracker, rate, drain_seconds)
        await asyncio.sleep(drain_seconds)   # their offers and timers settle before anything is timed
        for pair in range(pairs):
            for kind in ("idle", "browsing"):
                stop = asyncio.Event()
                browser = asyncio.create_task(browse(visitors, stop, BROWSE_SECONDS)) if kind == "browsing" else None
                if browser is not None:
                    await asyncio.sleep(2.0)   # the page frames flowing before the step starts
                row = await parley_step(visitors, tracker, rate, step_seconds, drain_seconds,
                                        f"live visitors {pair + 1}/{pairs}, {kind}", meter)
                stop.set()
                if browser is not None:
                    frames += await browser
                rows[kind].append(row)
                progress(f"live visitors {pair + 1}/{pairs}, {kind}: {rate:.0f} msg/s, p99 "
                         f"{row['e2e_p99'] * 1000:.0f} ms, delivered {row['delivered']}/{row['sent']}")
        base = f"{stack.gateway}"
        listed_times, listed = await _timed_gets(http, f"{base}/api/visitors/live", token, gets)
        floor_times, _ = await _timed_gets(http, f"{base}/api/session", token, gets)
    finally:
        await operator.close()

    def cpu_per_message(row: dict) -> float:
        return sum(v for k, v in row["cpu_ms_per_delivered"].items())

    p99 = {k: statistics.median(r["e2e_p99"] for r in v) for k, v in rows.items()}
    cpu = {k: statistics.median(cpu_per_message(r) for r in v) for k, v in rows.items()}
    list_p95, floor_p95 = percentile(listed_times, 95), percentile(floor_times, 95)
    result = {"visitors": len(visitors), "browse_seconds": BROWSE_SECONDS, "page_frames_sent": frames,
              "rate": rate, "rows": rows, "listed_total": listed.get("total"), "listed_shown": len(listed.get("visitors", [])),
              "p99_idle": p99["idle"], "p99_browsing": p99["browsing"],
              "p99_ratio": round(p99["browsing"] / p99["idle"], 2) if p99["idle"] else None,
              "cpu_ms_per_message_idle": round(cpu["idle"], 2), "cpu_ms_per_message_browsing": round(cpu["browsing"], 2),
              "cpu_ratio": round(cpu["browsing"] / cpu["idle"], 2) if cpu["idle"] else None,
              "list_p95": list_p95, "session_p95": floor_p95,
              "list_ratio": round(list_p95 / floor_p95, 2) if floor_p95 else None, "goal_p99_ratio": 1.25}
    progress(f"live visitors: p99 at {rate:.0f} msg/s {p99['idle'] * 1000:.0f} ms idle, {p99['browsing'] * 1000:.0f} ms "
             f"browsing ({result['p99_ratio']}x); CPU per message {result['cpu_ratio']}x; GET /api/visitors/live "
             f"({result['listed_total']} live, {result['listed_shown']} shown) p95 {list_p95 * 1000:.0f} ms, "
             f"{result['list_ratio']}x GET /api/session")
    return result
