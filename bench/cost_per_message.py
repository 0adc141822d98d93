"""Cost of one visitor message at conversation length 50 and 1,500, done the way the
gateway does it: the signed POST /internal/visitor/messages, then the catch-up read
GET /internal/conversations/{id}/events?after=<seq - 1>. Goal: at 1,500 within 1.3x
of at 50.

Reported as wall time (median, p90) and as the conversation service's own CPU time per
message (less sensitive to the neighbours on a shared machine). The conversation grows
between the two points by the same POST, one message at a time.

(bench/message_cost.py, when present, is used by `python -m bench` instead.)"""
from __future__ import annotations

import statistics
import time
import uuid

import psutil

from parley import internal_auth
from parley.service_client import ServiceClient, new_session, path

from bench.common import Stack, Ticker, percentile, progress


async def _message(client: ServiceClient, visitor_id: str, n: int, *, catch_up: bool) -> tuple[str, int]:
    body = await client.checked("POST", path("internal", "visitor", "messages"), json={
        "project_id": "demo", "visitor_id": visitor_id, "message_id": f"cost-{n}", "text": f"message {n}",
        "attachment": None, "page_url": None, "custom_params": {}, "chat_open": True})
    if catch_up:
        await client.checked("GET", path("internal", "conversations", body["conversation_id"], "events"),
                             params={"after": str(body["seq"] - 1)})
    return body["conversation_id"], body["seq"]


async def run(stack: Stack, *, lengths: tuple[int, int], samples: int) -> dict:
    service = psutil.Process(stack.procs["conversation"].pid)
    http = new_session(60)
    client = ServiceClient("conversation", stack.conversation, http, internal_auth.secret())
    visitor_id = uuid.uuid4().hex
    n, seq = 0, 0
    points = {}
    tick = Ticker()
    try:
        for length in lengths:
            progress(f"cost per message: growing one conversation to {length} events...")
            while seq < length:
                _, seq = await _message(client, visitor_id, n, catch_up=False)
                n += 1
                tick(lambda: f"cost per message: conversation at {seq}/{length} events")
            walls = []
            cpu_before = sum(service.cpu_times()[:2])
            for _ in range(samples):
                started = time.perf_counter()
                _, seq = await _message(client, visitor_id, n, catch_up=True)
                walls.append(time.perf_counter() - started)
                n += 1
            cpu = sum(service.cpu_times()[:2]) - cpu_before
            points[str(length)] = {"events_at_start": length, "samples": samples,
                                   "wall_median": statistics.median(walls), "wall_p90": percentile(walls, 90),
                                   "service_cpu_per_message": cpu / samples}
            progress(f"cost per message at length {length}: median {statistics.median(walls) * 1000:.1f} ms, "
                     f"conversation service CPU {cpu / samples * 1000:.1f} ms")
    finally:
        await http.close()
    short, long = (points[str(x)] for x in lengths)
    return {"lengths": list(lengths), "points": points, "source": "bench/cost_per_message.py",
            "wall_ratio": round(long["wall_median"] / short["wall_median"], 2),
            "cpu_ratio": round(long["service_cpu_per_message"] / short["service_cpu_per_message"], 2)
            if short["service_cpu_per_message"] > 0 else None,
            "goal_ratio": 1.3}
