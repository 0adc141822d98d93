"""The rate ladder: many visitors write through /ws/visitor at a set total rate, each
under the per-visitor limit with its own address; one admin operator watches
/ws/operator. Per step: achieved rate (messages on the operator's screen per second),
visitor -> operator-socket latency, ack latency, errors, each process's CPU - beside raw
aiokafka produce -> consume at the same rate on the same broker, measured right after.

The path measured: widget WebSocket -> gateway -> conversation service (event store) ->
relay -> Kafka -> gateway -> operator WebSocket."""
from __future__ import annotations

import asyncio
import math
import struct
import time
import uuid

from aiokafka import TopicPartition

from parley import kafka
from parley.schemas import Topic

from bench.clients import Tracker, Visitor, open_operator, owner_token
from bench.common import CpuMeter, Stack, Ticker, percentile, progress, statements_sent

# The gateway allows 30 messages a minute per visitor; each bench visitor sends at most
# 24 (0.4/s), so no limit is ever hit by the ladder itself: a `rate_limited` error in the
# report is a finding.
PER_VISITOR_RATE = 0.4
RAW_PARTITIONS = 6  # as conversation.events
SETTLE_CAP = 60.0


def sustainable(row: dict) -> bool:
    """Keeping up: ≥ 95 % of the offered rate delivered, nothing refused, p99 under a second."""
    return (row["achieved_per_s"] >= 0.95 * row["offered_per_s"] and not row["errors"]
            and row["not_delivered"] == 0 and row["e2e_p99"] < 1.0)


async def parley_step(visitors: list[Visitor], tracker: Tracker, rate: float, duration: float, drain: float,
                      label: str, meter: CpuMeter) -> dict:
    k = min(len(visitors), max(1, math.ceil(rate / PER_VISITOR_RATE)))
    offered = min(rate, k * PER_VISITOR_RATE)
    n = int(offered * duration)
    tag = f"L{uuid.uuid4().hex[:6]}"
    ids = [f"{tag}-{i}" for i in range(n)]
    tick = Ticker()
    statements_before = statements_sent(meter.stack) if meter.stack is not None else {}
    meter.start()
    started = time.perf_counter()
    i = 0
    while i < n:
        due = min(n, int((time.perf_counter() - started) * offered) + 1)
        while i < due:
            await visitors[i % k].send(ids[i])
            i += 1
        tick(lambda: f"{label}: {time.perf_counter() - started:4.1f}/{duration:.0f} s, sent {i}, "
                     f"acked {sum(1 for x in ids[:i] if x in tracker.acked)}, "
                     f"on the operator's screen {sum(1 for x in ids[:i] if x in tracker.delivered)}")
        await asyncio.sleep(0.004)
    sending_took = time.perf_counter() - started
    deadline = time.perf_counter() + drain
    while time.perf_counter() < deadline and not tracker.settled(ids):
        await asyncio.sleep(0.05)
    cpu = meter.stop()
    summary = tracker.summary(ids, started)
    statements = {name: count - statements_before.get(name, 0.0)
                  for name, count in (statements_sent(meter.stack) if meter.stack is not None else {}).items()}
    # An overloaded step leaves messages queued in the gateway and the services; the next
    # step must not be measured on top of them. Wait (up to SETTLE_CAP s) until every
    # message of this step is answered, and say how long that took.
    settle_started = time.perf_counter()
    while time.perf_counter() - settle_started < SETTLE_CAP and not all(
            x in tracker.acked or x in tracker.errors for x in ids):
        await asyncio.sleep(0.1)
    unsettled = sum(1 for x in ids if x not in tracker.acked and x not in tracker.errors)
    row = {"backlog_settle_s": round(time.perf_counter() - settle_started, 1), "unanswered_after_settle": unsettled,"offered_per_s": round(offered, 1), "visitors": k, "duration_s": round(sending_took, 2),
           **summary, "cpu_s": cpu,
           "cpu_ms_per_delivered": {name: round(1000 * used / max(1, summary["delivered"]), 2)
                                    for name, used in cpu.items() if name != "wall"},
           # Every service's statements to PostgreSQL per message delivered (batching must make
           # them fall as the rate rises).
           "statements_per_delivered": {name: round(count / max(1, summary["delivered"]), 2)
                                        for name, count in statements.items()}}
    for x in ids:  # late deliveries of this step must not be matched again
        tracker.sent.pop(x, None)
    return row


async def start_conversations(visitors: list[Visitor], tracker: Tracker, rate: float, drain: float) -> None:
    """One message from each of `visitors` at `rate` (not measured), then wait for the answers."""
    ids = [f"W{uuid.uuid4().hex[:6]}-{i}" for i in range(len(visitors))]
    progress(f"starting the conversations of {len(visitors)} visitors that have not written yet, at {rate:.0f}/s")
    started = time.perf_counter()
    for i, (visitor, message_id) in enumerate(zip(visitors, ids)):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        await visitor.send(message_id)
    deadline = time.perf_counter() + drain + SETTLE_CAP
    while time.perf_counter() < deadline and not all(x in tracker.acked or x in tracker.errors for x in ids):
        await asyncio.sleep(0.1)
    for x in ids:
        tracker.sent.pop(x, None)


async def raw_kafka_step(bootstrap: str, topic: str, rate: float, duration: float, payload_size: int) -> dict:
    """Raw aiokafka at the same rate: an idempotent acks=all producer (Parley's settings)
    sends open-loop; a consumer in the same process reads; latency is send -> getmany."""
    producer = kafka.producer(bootstrap)
    consumer = kafka.consumer(bootstrap, None)
    await producer.start()
    await consumer.start()
    latencies: list[float] = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(RAW_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        n = int(rate * duration)
        pad = b"x" * max(0, payload_size - 8)

        async def receive() -> None:
            while len(latencies) < n:
                batches = await consumer.getmany(timeout_ms=200)
                now = time.perf_counter()
                for records in batches.values():
                    latencies.extend(now - struct.unpack("d", r.value[:8])[0] for r in records)

        reader = asyncio.create_task(receive())
        started = time.perf_counter()
        futures = []
        i = 0
        while i < n:
            due = min(n, int((time.perf_counter() - started) * rate) + 1)
            while i < due:
                futures.append(await producer.send(topic, struct.pack("d", time.perf_counter()) + pad,
                                                   key=f"conversation-{i % 997}".encode()))
                i += 1
            await asyncio.sleep(0.004)
        await asyncio.gather(*futures)
        try:
            await asyncio.wait_for(reader, timeout=max(10.0, duration))
        except asyncio.TimeoutError:
            pass
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
    return {"achieved_per_s": round(len(latencies) / elapsed, 1), "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99)}


async def run(stack: Stack, http, visitors: list[Visitor], *, rates: list[float], step_seconds: float,
              raw_seconds: float, drain_seconds: float, payload_size: int = 600) -> dict:
    tracker = visitors[0].tracker
    token = await owner_token(http, stack.gateway)
    operator = await open_operator(http, stack.gateway, token, tracker.delivered, prefix="L")
    raw_topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    await kafka.create_topics(stack.comps.bootstrap, [Topic(raw_topic, "bench", ("conversation",), RAW_PARTITIONS, 1, {})])
    meter = CpuMeter(stack)
    rows = []

    async def one(rate: float, label: str, kind: str) -> dict:
        progress(f"{label}: {rate:.0f} msg/s offered for {step_seconds:.0f} s by "
                 f"{min(len(visitors), math.ceil(rate / PER_VISITOR_RATE))} visitors")
        row = await parley_step(visitors, tracker, rate, step_seconds, drain_seconds, label, meter)
        progress(f"{label}: raw aiokafka produce -> consume at {rate:.0f} msg/s for {raw_seconds:.0f} s")
        row["raw_kafka"] = await raw_kafka_step(stack.comps.bootstrap, raw_topic, row["offered_per_s"], raw_seconds,
                                                payload_size)
        row["target_per_s"], row["kind"] = rate, kind
        row["sustainable"] = sustainable(row)
        progress(f"{label}: achieved {row['achieved_per_s']}/s, visitor->operator p50/p99 "
                 f"{_ms(row['e2e_p50'])}/{_ms(row['e2e_p99'])} (p99 of {row['first_messages']} first messages "
                 f"{_ms(row['e2e_p99_first'])}, of the rest {_ms(row['e2e_p99_later'])}), ack p99 {_ms(row['ack_p99'])} "
                 f"(first {_ms(row['ack_p99_first'])}, rest {_ms(row['ack_p99_later'])}), "
                 f"raw Kafka p99 {_ms(row['raw_kafka']['p99'])}, errors {row['errors'] or 'none'}")
        return row

    try:
        # Warm up connections, caches and the first-message path before anything is timed.
        await parley_step(visitors, tracker, min(rates[0], 20), 1, drain_seconds, "ladder warm-up", meter)
        for n, rate in enumerate(rates):
            rows.append(await one(rate, f"ladder step {n + 1}/{len(rates) + 2}", "ladder"))
        found = [r for r in rows if r["sustainable"]]
        base = max(r["achieved_per_s"] for r in found) if found else max(r["achieved_per_s"] for r in rows)
        overload = max(1.0, round(2 * base))
        cap = len(visitors) * PER_VISITOR_RATE
        if overload > cap:
            progress(f"2x sustainable would be {overload} msg/s; {len(visitors)} visitors under the limit give {cap:.0f}")
        rows.append(await one(overload, f"ladder step {len(rates) + 1}/{len(rates) + 2} (2x sustainable)", "overload"))
        # The goal is goodput at 10x; these visitors can offer at most `cap`, which is the
        # step that comes closest (each refusal still costs a frame read and one written,
        # on the same two cores as the load generator). The visitors that have not written
        # yet start their conversations first, at the sustainable rate: otherwise half of
        # this step's messages would be first messages (a conversation, an offer, a
        # timer), a heavier mix than the steps it is compared with.
        if cap > overload:
            await start_conversations([v for v in visitors if not v.has_written], tracker, base, drain_seconds)
            rows.append(await one(cap, f"ladder step {len(rates) + 2}/{len(rates) + 2} "
                                       f"(the most {len(visitors)} visitors offer)", "most"))
    finally:
        await operator.close()
    return {"rows": rows, "sustainable_per_s": base, "sustainable_found": bool(found),
            "per_visitor_rate": PER_VISITOR_RATE, "step_seconds": step_seconds, "raw_seconds": raw_seconds,
            "drain_seconds": drain_seconds}


def _ms(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    return "never" if math.isinf(s) else f"{s * 1000:.0f} ms"
