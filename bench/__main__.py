"""`make bench` (`python -m bench`): the whole performance story in one run, every
verdict a ratio to a floor measured in the same run on the same machine (these machines
are shared and noisy). Writes report.md, report.json and latency.png into
test-artifacts/bench/ (git-ignored; `--out` to change), the services' logs beside them.

Sections, in order (each prints progress as it runs; a failing one is reported and the
rest still run):
  backbone   append -> relay -> consume against raw aiokafka     (bench/append_relay_consume.py)
  memory     idle visitor sockets on the gateway against a bare aiohttp server (bench/socket_memory.py)
  ladder     the rate ladder, beside raw aiokafka at each rate      (bench/visitor_to_operator.py)
  live       the ladder's visitors browsing (page frames) against idle, at one rate (bench/live_visitors.py)
  fanout     fan-out to many operator sockets, one stalled or none  (bench/fanout.py)
  scaleout   one replica, two conversation replicas and two gateways, one again (bench/scale_out.py)
  cost       cost per message at conversation length 50 and 1,500   (bench/message_cost.py, else bench/cost_per_message.py)
  rebuild    inbox projection rebuild against raw aiokafka consume  (bench/rebuild.py)
  search     GET /api/search's query over 1,000,000 generated messages (bench/search.py)

`--quick` runs every section at tiny sizes (a smoke run of a minute or so: the figures
mean nothing, the files are all written)."""
from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from parley import gc_pauses
from parley.config import REPO_ROOT
from devstack import components

from bench import (append_relay_consume, cost_per_message, fanout, live_visitors, rebuild, report, scale_out, sealing,
                   search, socket_memory, visitor_to_operator)
from bench.clients import Tracker, close_visitors, http_session, open_visitors
from bench.common import Stack, machine, progress, raise_fd_limit

SECTIONS = ["backbone", "sealing", "memory", "ladder", "live", "fanout", "scaleout", "cost", "rebuild", "search"]

FULL = dict(sockets=10_000, memory_settle=2.0, rates=[100, 200, 250, 500, 1000, 2000], step_seconds=10.0, raw_seconds=5.0, drain_seconds=5.0,
            fanout_sockets=1000, fanout_fill=500, fanout_fill_rate=40.0, fanout_messages=160, fanout_rate=4.0, fanout_wait=10.0,
            scaleout_rate=1000.0, cost_lengths=(50, 1500), cost_samples=30, rebuild_timeout=180.0, rebuild_events=50_000, sealing_events=4000,
            search_entries=1_000_000, search_queries=200, live_rate=500.0, live_pairs=3,
            backbone=dict(LATENCY_SAMPLES=300, THROUGHPUT_EVENTS=5000, WRITERS=20))
QUICK = dict(sockets=150, memory_settle=0.5, rates=[10, 25], step_seconds=1.5, raw_seconds=1.0, drain_seconds=1.5,
             fanout_sockets=20, fanout_fill=20, fanout_fill_rate=20.0, fanout_messages=5, fanout_rate=5.0, fanout_wait=5.0,
             scaleout_rate=10.0, cost_lengths=(10, 40), cost_samples=5, rebuild_timeout=30.0, rebuild_events=2_000, sealing_events=300,
             search_entries=5_000, search_queries=20, live_rate=10.0, live_pairs=1,
             backbone=dict(LATENCY_SAMPLES=20, THROUGHPUT_EVENTS=200, WRITERS=4))


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


async def _section(results: dict, name: str, wanted: list[str], body) -> object:
    if name not in wanted:
        return None
    progress(f"== {name} ==")
    started = time.monotonic()
    try:
        value = await body()
        results[name] = value[0] if isinstance(value, tuple) else value
        results[name]["section_seconds"] = round(time.monotonic() - started, 1)
        return value
    except Exception as e:  # one broken section must not hide the others' figures
        traceback.print_exc()
        results[name] = {"error": f"{type(e).__name__}: {e}"[:500], "section_seconds": round(time.monotonic() - started, 1)}
        progress(f"{name} failed: {e!r}; going on with the next section")
        return None


async def _cost(comps, stack: Stack, size: dict) -> dict:
    """bench/message_cost.py (the widget's socket until the ack, through an in-process
    gateway) when it is there; else bench/cost_per_message.py (the gateway's two calls
    against the conversation service process)."""
    try:
        from bench import message_cost
    except ImportError:
        message_cost = None
    if message_cost is None or not hasattr(message_cost, "run"):
        return await cost_per_message.run(stack, lengths=size["cost_lengths"], samples=size["cost_samples"])
    lengths = tuple(size["cost_lengths"])
    medians = await message_cost.run(comps, lengths=lengths, samples=size["cost_samples"])
    a, b = (float(medians[x]) for x in lengths)
    return {"lengths": list(lengths), "source": "bench/message_cost.py (visitor socket to ack, in-process services)",
            "points": {str(x): {"events_at_start": x, "samples": size["cost_samples"], "wall_median": float(medians[x]),
                                "wall_p90": None, "service_cpu_per_message": None} for x in lengths},
            "wall_ratio": round(b / a, 2), "cpu_ratio": None, "goal_ratio": 1.3}


async def all_benchmarks(comps, stack: Stack, size: dict, wanted: list[str], results: dict) -> None:
    # The load generator holds 11,000 sockets and every message's timestamps: a full
    # collection over them pauses its reading of whatever arrives then, and a latency
    # would measure that. It keeps its old objects out of collections as the services
    # do (parley/gc_pauses.py), and logs a pause over 100 ms.
    gc_pauses.watch()
    stop = asyncio.Event()
    freezer = asyncio.create_task(gc_pauses.keep_old_objects_frozen(stop))
    try:
        await _benchmarks(comps, stack, size, wanted, results)
    finally:
        stop.set()
        await freezer


async def _benchmarks(comps, stack: Stack, size: dict, wanted: list[str], results: dict) -> None:
    for name, value in size["backbone"].items():
        setattr(append_relay_consume, name, value)
    await _section(results, "backbone", wanted, lambda: append_relay_consume.run(comps))
    await _section(results, "sealing", wanted, lambda: sealing.run(comps, events=size["sealing_events"]))
    stack.start()
    async with http_session() as http:
        tracker = Tracker()
        visitors: list = []

        async def memory():
            nonlocal visitors
            found, visitors = await socket_memory.run(stack, http, size["sockets"], tracker, settle=size["memory_settle"])
            return found
        await _section(results, "memory", wanted, memory)
        if not visitors and ({"ladder", "live", "fanout"} & set(wanted)):
            visitors = await open_visitors(http, stack.gateway, size["sockets"], tracker)
        await _section(results, "ladder", wanted, lambda: visitor_to_operator.run(
            stack, http, visitors, rates=size["rates"], step_seconds=size["step_seconds"],
            raw_seconds=size["raw_seconds"], drain_seconds=size["drain_seconds"]))
        await _section(results, "live", wanted, lambda: live_visitors.run(
            stack, http, visitors, rate=size["live_rate"], step_seconds=size["step_seconds"],
            drain_seconds=size["drain_seconds"], pairs=size["live_pairs"]))
        await _section(results, "fanout", wanted, lambda: fanout.run(
            stack, http, visitors, sockets=size["fanout_sockets"], fill=size["fanout_fill"], fill_rate=size["fanout_fill_rate"],
            messages=size["fanout_messages"], rate=size["fanout_rate"], wait=size["fanout_wait"]))
        if visitors:
            progress(f"closing {len(visitors)} visitor sockets...")
            await close_visitors(visitors)
        await _section(results, "scaleout", wanted, lambda: scale_out.run(
            stack, http, rate=size["scaleout_rate"], seconds=size["step_seconds"], drain=size["drain_seconds"]))
    await _section(results, "cost", wanted, lambda: _cost(comps, stack, size))
    await _section(results, "rebuild", wanted, lambda: rebuild.run(comps, timeout=size["rebuild_timeout"],
                                                                        fill=size["rebuild_events"]))
    await _section(results, "search", wanted, lambda: search.run(comps.database_url, entries=size["search_entries"],
                                                                      queries=size["search_queries"]))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every section at tiny sizes (a smoke run)")
    parser.add_argument("--out", type=Path, help="report folder (default test-artifacts/bench, "
                                                 "or test-artifacts/bench-quick with --quick)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one size, e.g. --set fanout_sockets=200 --set step_seconds=5")
    args = parser.parse_args()
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    size = dict(QUICK if args.quick else FULL)
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in size or name == "backbone":
            parser.error(f"--set {item}: no size called {name!r} (one of {', '.join(k for k in size if k != 'backbone')})")
        size[name] = type(size[name])(value) if not isinstance(size[name], (list, tuple)) else \
            type(size[name])(float(v) if "." in v else int(v) for v in value.split(","))
    out = (args.out or REPO_ROOT / "test-artifacts" / ("bench-quick" if args.quick else "bench")).resolve()
    limits = raise_fd_limit()
    if limits[0] < 2 * size["sockets"] + 2000:
        progress(f"warning: the descriptor limit is {limits[0]}; {size['sockets']} sockets need about "
                 f"{size['sockets'] + 1000} in this process and as many in the gateway")
    started_at = datetime.now(timezone.utc)
    started = time.monotonic()
    results: dict = {}
    report_base = {
        "command": "python -m bench" + (" --quick" if args.quick else "") +
                   (f" --sections {args.sections}" if args.sections != ",".join(SECTIONS) else "") +
                   "".join(f" --set {item}" for item in args.set),
        "quick": args.quick, "started_at": started_at.strftime("%Y-%m-%d %H:%M"),
        "commit": (_git("rev-parse", "--short", "HEAD") or "unknown") + (" + uncommitted changes in the tree"
                                                                          if _git("status", "--porcelain") else ""),
        "machine": machine(), "sizes": {k: v for k, v in size.items()}, "sections": wanted}
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as run_dir:
        run_dir = Path(run_dir)
        progress(f"starting Kafka and PostgreSQL under {run_dir}...")
        comps = components.start(run_dir)
        stack = Stack(comps, run_dir)
        try:
            asyncio.run(all_benchmarks(comps, stack, size, wanted, results))
        except KeyboardInterrupt:
            progress("interrupted: writing what was measured so far")
            report_base["interrupted"] = True
        finally:
            stack.stop()
            comps.stop()
            out.mkdir(parents=True, exist_ok=True)
            if (run_dir / "logs").exists():
                shutil.rmtree(out / "logs", ignore_errors=True)
                shutil.copytree(run_dir / "logs", out / "logs")
            paths = report.write({**report_base, "components": comps.kind, "results": results,
                                  "duration_s": time.monotonic() - started}, out)
    print((out / "report.md").read_text(), flush=True)
    progress("report: " + ", ".join(str(p) for p in paths.values()) + f"; service logs: {out / 'logs'}")
    if report_base.get("interrupted"):
        return 130
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
