"""Memory per idle visitor socket: the gateway's resident memory grown by N idle
/ws/visitor sockets, against a bare aiohttp WebSocket server (bench/bare_ws.py) grown
by N idle sockets, in the same run. Goal: the gateway ≤ 1.5x the bare server.

The gateway's sockets stay open afterwards: they are the visitors of the rate ladder
(idle widgets on a busy site are what a gateway really holds).

Both servers ping every 25 s and drop a socket whose pong does not come (aiohttp's
heartbeat); the client answers pings only while something reads, so the bare server's
sockets are read like the gateway's visitors (bench/clients.open_visitors). Unread, a
slow run - opening 10,000 sockets takes over a minute on a busy machine - lost part of
the floor's sockets before it was measured, and the floor looked cheaper (8 - 11 KiB a
socket, against 14 - 15 in a quick run). Both counts of sockets still open are in the
report."""
from __future__ import annotations

import asyncio
import sys

import aiohttp

from devstack.procs import answers_200, free_port, spawn, stop, wait_until

from bench.clients import OPEN_CONCURRENCY, Tracker, open_visitors
from bench.common import Stack, Ticker, progress, rss_mb



async def _settled_rss(pid: int, settle: float) -> float:
    await asyncio.sleep(settle)
    return rss_mb(pid)


async def bare(stack: Stack, http: aiohttp.ClientSession, n: int, settle: float) -> dict:
    port = free_port()
    proc = spawn([sys.executable, "-m", "bench.bare_ws", str(port)], log_path=stack.run_dir / "logs" / "bare_ws.log",
                 env=stack.env)
    sockets, readers = [], []
    try:
        wait_until("bare aiohttp WebSocket server", lambda: answers_200(f"http://127.0.0.1:{port}/readyz"), timeout=30,
                   alive=lambda: proc.poll() is None)
        # One socket first, so what is measured is per socket, not the first one's imports and buffers.
        first = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
        await first.receive_json(timeout=30)
        readers.append(asyncio.create_task(_read(first)))
        before = await _settled_rss(proc.pid, settle)
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        tick = Ticker()

        async def one() -> None:
            async with gate:
                ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
                await ws.receive_json(timeout=30)
                sockets.append(ws)
                readers.append(asyncio.create_task(_read(ws)))   # answers the server's pings
                tick(lambda: f"bare server: {len(sockets)}/{n} sockets open")
        await asyncio.gather(*(one() for _ in range(n)))
        progress(f"bare server: {n}/{n} sockets open")
        after = await _settled_rss(proc.pid, settle)
        still_open = sum(1 for ws in sockets if not ws.closed)
        await first.close()
    finally:
        gate = asyncio.Semaphore(512)

        async def close(ws) -> None:
            async with gate:
                await ws.close()
        await asyncio.gather(*(close(ws) for ws in sockets), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)
        stop(proc)
    return {"sockets": n, "still_open_at_measurement": still_open, "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1), "kb_per_socket": round((after - before) * 1024 / n, 2)}


async def _read(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def run(stack: Stack, http: aiohttp.ClientSession, n: int, tracker: Tracker, *, settle: float = 2.0) -> tuple[dict, list]:
    progress(f"memory: {n} idle sockets on a bare aiohttp WebSocket server (the floor)...")
    floor = await bare(stack, http, n, settle)
    progress(f"memory: bare server {floor['kb_per_socket']} KiB per socket; now {n} idle visitor sockets on the gateway...")
    gateway_pid = stack.procs["gateway"].pid
    # The first visitor pays for imports and caches; measure from after it.
    first = await open_visitors(http, stack.gateway, 1, tracker, first_index=n, label="gateway warm-up socket")
    before = await _settled_rss(gateway_pid, settle)
    visitors = await open_visitors(http, stack.gateway, n, tracker, label="gateway visitor sockets")
    after = await _settled_rss(gateway_pid, settle)
    ours = {"sockets": n, "still_open_at_measurement": sum(1 for v in visitors if not v.ws.closed),
            "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
            "kb_per_socket": round((after - before) * 1024 / n, 2)}
    ratio = ours["kb_per_socket"] / floor["kb_per_socket"] if floor["kb_per_socket"] > 0 else None
    progress(f"memory: gateway {ours['kb_per_socket']} KiB per idle visitor socket, "
             f"{ratio:.2f}x the bare server" if ratio else "memory: the bare server grew by nothing measurable")
    return {"bare": floor, "gateway": ours, "ratio": round(ratio, 2) if ratio else None, "goal_ratio": 1.5}, \
        first + visitors
