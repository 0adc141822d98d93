"""The cost of one visitor message as the conversation grows (issue 12: constant cost
per command): a message sent on the widget's socket until its ack, through the gateway,
the conversation service and PostgreSQL and back - what the gateway does for every
message - at conversation length 50 and 1,500, as a ratio. Goal: within 1.3x.

`python -m bench.message_cost` starts its own Kafka and PostgreSQL (like `make bench`).
`--lengths 50,1500 --samples 60` change what is measured. The two lengths are measured
alternately (a message into the long conversation, one into a short one), so a busy
neighbour on a shared machine slows both alike; short conversations are rotated every
10 samples to stay near their length.

The conversations are filled in seconds, so before measuring the service's tables are
vacuumed, as autovacuum would have done during a real conversation's days: otherwise
the inbox row's 1,500 dead versions from the last minute (its `conversations` row is
updated by every message, and not in place, since last_message_at is indexed) add about
1 ms to the long conversation's messages - a cost of updates since the last vacuum, not
of the conversation's length. `--no-vacuum` measures without it (measured 1.10-1.21x).

With PARLEY_BENCH_PAUSE=<s> it prints
`measuring pid=<pid>` and waits that long first, so a profiler (py-spy record --pid)
can attach to exactly the measured messages."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

from parley.config import REPO_ROOT, Settings
from parley.service import create_app

from devstack.visitor_protocol import message_frame, open_socket, start_session

from bench.append_relay_consume import progress


def _settings(comps, service: str) -> Settings:
    return Settings(service=service, http_port=0, database_url=comps.database_url, kafka_bootstrap=comps.bootstrap,
                    log_level="WARNING", schemas_dir=REPO_ROOT / "schemas", shutdown_timeout=5)


class Visitor:
    """The widget's socket: sends a message, reads frames until its ack."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws, self.seq = ws, 0

    async def send(self, text: str) -> None:
        message_id = str(uuid.uuid4())
        await self.ws.send_str(message_frame(message_id, text))
        while True:
            frame = await self.ws.receive_json(timeout=60)
            if frame.get("type") == "error":
                raise RuntimeError(f"refused: {frame}")
            if frame.get("type") == "ack" and frame["id"] == message_id:
                self.seq = frame["seq"]
                return


async def _vacuum(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for table in ("events", "commands", "conversations", "conversation_state", "conversation_messages"):
            await conn.execute(f"vacuum analyze {schema}.{table}")
    finally:
        await conn.close()


async def run(comps, lengths=(50, 1500), samples: int = 60) -> dict[int, float]:
    """Median seconds per message at each of the two lengths (what `python -m bench` reads)."""
    result = await measure(comps, lengths, samples)
    return {n: result["points"][str(n)]["wall_median"] for n in result["lengths"]}


async def measure(comps, lengths=(50, 1500), samples: int = 60, *, vacuum: bool = True) -> dict:
    """Seconds per message (wall and this process's CPU) at the two conversation lengths
    (events in the stream), measured alternately so that noise hits both alike."""
    import conversation.__main__ as conversation_main
    import gateway.__main__ as gateway_main
    import operator_registry.__main__ as registry_main
    from gateway import rate_limits

    rate_limits.MESSAGES_PER_MINUTE_PER_VISITOR = rate_limits.MESSAGES_PER_MINUTE_PER_ADDRESS = 1_000_000
    rate_limits.NEW_VISITORS_PER_MINUTE_PER_ADDRESS = 1_000  # a short conversation per 10 samples
    os.environ.setdefault("PARLEY_INTERNAL_SECRET", secrets.token_hex(32))
    os.environ["PARLEY_SEED_DEMO"] = "1"  # its visitors write to project demo
    suffix = uuid.uuid4().hex[:6]
    servers = []

    async def start(spec, name):
        server = TestServer(create_app(dataclasses.replace(spec, schema=f"bench_{name}_{suffix}"),
                                       _settings(comps, name)))
        await server.start_server()
        servers.append(server)
        return f"http://localhost:{server.port}"

    os.environ["PARLEY_OPERATOR_REGISTRY_URL"] = await start(registry_main.SPEC, "registry")
    os.environ["PARLEY_CONVERSATION_URL"] = await start(conversation_main.SPEC, "conversation")
    os.environ.setdefault("PARLEY_VISITOR_SECRET", secrets.token_hex(32))
    gateway = await start(gateway_main.SPEC, "gateway")
    pause = float(os.environ.get("PARLEY_BENCH_PAUSE", "0"))
    short, long = sorted(lengths)
    per_short = 10  # samples per short conversation, so that each stays near its length
    try:
        async with aiohttp.ClientSession() as http:
            async def visitor_at(length: int) -> Visitor:
                _, session = await start_session(http, f"{gateway}/api/visitor/session", "demo")
                visitor = Visitor(await open_socket(http, f"{gateway}/ws/visitor", session["visitor_token"]))
                while visitor.seq < length - 1:
                    await visitor.send(f"filler {visitor.seq}")
                return visitor

            progress(f"message cost: one conversation of {long} events and {-(-samples // per_short)} of {short}...")
            longest = await visitor_at(long)  # first: an idle socket's unanswered heartbeat closes it after 25 s
            shorts = [await visitor_at(short) for _ in range(-(-samples // per_short))]
            if vacuum:  # what autovacuum does over a real conversation's life (see the module)
                await _vacuum(comps.database_url, f"bench_conversation_{suffix}")
            for visitor in (*shorts, longest):
                await visitor.send("warm-up")
            if pause:
                print(f"measuring pid={os.getpid()}", flush=True)
                await asyncio.sleep(pause)
            walls: dict[int, list[float]] = {short: [], long: []}
            cpus: dict[int, list[float]] = {short: [], long: []}
            for i in range(samples):  # interleaved: a noisy neighbour slows both alike
                for length, visitor in ((long, longest), (short, shorts[i // per_short])):
                    wall, cpu = time.perf_counter(), time.process_time()
                    await visitor.send(f"measured {i}")
                    walls[length].append(time.perf_counter() - wall)
                    cpus[length].append(time.process_time() - cpu)
            for visitor in (*shorts, longest):
                await visitor.ws.close()
    finally:
        for server in reversed(servers):
            await server.close()
    points = {str(n): {"events_at_start": n, "samples": samples, "wall_median": statistics.median(walls[n]),
                       "wall_p90": sorted(walls[n])[int(samples * 0.9)], "cpu_median": statistics.median(cpus[n])}
              for n in (short, long)}
    at_short, at_long = points[str(short)], points[str(long)]
    return {"lengths": [short, long], "points": points, "source": "bench/message_cost.py", "goal_ratio": 1.3,
            "vacuumed": vacuum,
            "wall_ratio": round(at_long["wall_median"] / at_short["wall_median"], 2),
            "cpu_ratio": round(at_long["cpu_median"] / at_short["cpu_median"], 2) if at_short["cpu_median"] else None}


def report(result: dict) -> str:
    short, long = result["lengths"]
    lines = ["one visitor message: widget socket -> gateway -> conversation -> PostgreSQL -> ack",
             "  (median; cpu = this process: gateway + conversation service + client, not PostgreSQL)"]
    for n in (short, long):
        p = result["points"][str(n)]
        lines.append(f"  at {n:>5} events   wall {p['wall_median'] * 1000:7.2f} ms (p90 {p['wall_p90'] * 1000:7.2f})"
                     f"   cpu {p['cpu_median'] * 1000:6.2f} ms")
    lines.append(f"  ratio {long} / {short}: wall {result['wall_ratio']:.2f}x, cpu {result['cpu_ratio']}x "
                 f"(goal: within {result['goal_ratio']}x; tables vacuumed after filling: {result['vacuumed']})")
    return "\n".join(lines)


def main() -> None:
    from devstack import components

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="50,1500")
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--no-vacuum", action="store_true", help="measure right after filling, without VACUUM")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as run_dir:
        comps = components.start(Path(run_dir))
        try:
            result = asyncio.run(measure(comps, tuple(int(n) for n in args.lengths.split(",")), args.samples,
                                         vacuum=not args.no_vacuum))
        finally:
            comps.stop()
    print(report(result), flush=True)


if __name__ == "__main__":
    main()
