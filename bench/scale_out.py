"""The scale-out check (issue 21, item 5): the same load through one conversation-service
replica and one gateway, then through two of each on the same machine, then through one
again. Two replicas on one 2-CPU box cannot add CPU; what this checks is that they cost
nothing - the shard locks, the one relay leader and the consumer groups split the work
without losing throughput - so that on more machines a replica adds what its CPUs give
(docs/performance.md sizes a deployment from the per-core figures).

Each run opens fresh visitors (so each has the same mix of first and later messages):
in the two-replica run, half on each gateway, and the second gateway calls the second
conversation replica. One admin operator on the first gateway reads every message (every
gateway follows every partition). The floor is the mean of the one-replica runs either
side (A-B-A, as the fan-out section: the second of two runs in a row tends to measure
slower, whichever it is)."""
from __future__ import annotations

import math

from bench.clients import Tracker, close_visitors, open_operator, open_visitors, owner_token
from bench.common import CpuMeter, Stack, progress
from bench.visitor_to_operator import PER_VISITOR_RATE, parley_step


async def one_run(stack: Stack, http, rate: float, seconds: float, drain: float, first_index: int,
                  label: str, *, replicas: bool) -> dict:
    tracker = Tracker()
    n = math.ceil(rate / PER_VISITOR_RATE)
    if replicas:
        half = n // 2
        a = await open_visitors(http, stack.gateway, half, tracker, first_index=first_index, label=f"{label}: gateway 1")
        b = await open_visitors(http, stack.url("gateway-2"), n - half, tracker,
                                first_index=first_index + half, label=f"{label}: gateway 2")
        visitors = [v for pair in zip(a, b) for v in pair] + a[len(b):] + b[len(a):]
    else:
        visitors = await open_visitors(http, stack.gateway, n, tracker, first_index=first_index, label=label)
    operator = await open_operator(http, stack.gateway, await owner_token(http, stack.gateway), tracker.delivered,
                                   prefix="L")
    try:
        row = await parley_step(visitors, tracker, rate, seconds, drain, label, CpuMeter(stack))
    finally:
        await operator.close()
        await close_visitors(visitors)
    progress(f"{label}: achieved {row['achieved_per_s']}/s, p50/p99 {row['e2e_p50'] * 1000:.0f}/"
             f"{row['e2e_p99'] * 1000:.0f} ms, errors {row['errors'] or 'none'}")
    return row


async def run(stack: Stack, http, *, rate: float, seconds: float, drain: float) -> dict:
    n = math.ceil(rate / PER_VISITOR_RATE)
    base = 200_000   # addresses and visitors apart from the other sections'
    one = await one_run(stack, http, rate, seconds, drain, base, "scale-out: one replica", replicas=False)
    stack.start_replicas()
    try:
        two = await one_run(stack, http, rate, seconds, drain, base + n, "scale-out: two replicas", replicas=True)
    finally:
        stack.stop_replicas()
    again = await one_run(stack, http, rate, seconds, drain, base + 2 * n, "scale-out: one replica again",
                          replicas=False)
    floor = (one["achieved_per_s"] + again["achieved_per_s"]) / 2
    return {"rate": rate, "one": one, "two": two, "one_again": again,
            "achieved_ratio": round(two["achieved_per_s"] / floor, 2) if floor else None,
            "p99_one_ms": [round(r["e2e_p99"] * 1000, 1) for r in (one, again)],
            "p99_two_ms": round(two["e2e_p99"] * 1000, 1), "goal_ratio": 0.95}
