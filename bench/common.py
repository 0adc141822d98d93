"""What every bench section shares: percentiles, progress lines, the machine's figures,
and the Parley stack run as real processes (one per service, as `make run` does), so the
load generator in this process competes with the services for the CPUs as a real
client on the same box would, and each service's CPU time can be read per step."""
from __future__ import annotations

import math
import os
import platform
import resource
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import psutil

from devstack.procs import answers_200, free_port, spawn, stop, wait_until
from parley.service_names import SERVICES



def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; math.inf in `values` (a message never seen) sorts last."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds for the report (None/inf/nan stay readable in JSON)."""
    if seconds is None or math.isnan(seconds):
        return None
    if math.isinf(seconds):
        return math.inf
    return round(seconds * 1000, 2)


def raise_fd_limit() -> tuple[int, int]:
    """10,000 sockets need more than the usual 1,024 descriptors; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine() -> dict:
    vm = psutil.virtual_memory()
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": cpu_model,
            "memory_total_mb": round(vm.total / 2**20), "memory_available_mb": round(vm.available / 2**20),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "kernel": platform.release(),
            "fd_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE))}


@dataclass
class Stack:
    """The five services as child processes on free ports, on the bench's Kafka and PostgreSQL.

    The gateway trusts one proxy hop (PARLEY_TRUSTED_PROXY_HOPS=1): the load generator
    stands in for an ingress and gives every visitor its own X-Forwarded-For address, so
    the per-visitor and per-address rate limits apply as they would in production."""
    comps: object
    run_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, object] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    @property
    def conversation(self) -> str:
        return self.url("conversation")

    def start(self) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name, _ in SERVICES}
        internal_port = free_port()
        self.env = {**os.environ, "DATABASE_URL": self.comps.database_url,
                    "KAFKA_BOOTSTRAP_SERVERS": self.comps.bootstrap, "PYTHONUNBUFFERED": "1",
                    "PARLEY_LOG_LEVEL": "WARNING",
                    "PARLEY_OPERATOR_REGISTRY_URL": f"http://localhost:{self.ports['operator-registry']}",
                    "PARLEY_CONVERSATION_URL": f"http://localhost:{self.ports['conversation']}",
                    "PARLEY_CRM_BRIDGE_URL": f"http://localhost:{self.ports['crm-bridge']}",
                    "PARLEY_SCHEDULER_URL": f"http://localhost:{self.ports['scheduler']}",
                    "PARLEY_INTERNAL_PORT": str(internal_port),
                    "PARLEY_TRUSTED_PROXY_HOPS": "1",
                    "PARLEY_VISITOR_SECRET": os.environ.get("PARLEY_VISITOR_SECRET") or secrets.token_hex(32),
                    "PARLEY_INTERNAL_SECRET": os.environ.get("PARLEY_INTERNAL_SECRET") or secrets.token_hex(32),
                    "PARLEY_SEED_DEMO": "1"}  # the bench's visitors and operators use project demo
        # The bench process mints visitor tokens and signs internal calls with the same keys.
        for name in ("PARLEY_VISITOR_SECRET", "PARLEY_INTERNAL_SECRET", "PARLEY_TRUSTED_PROXY_HOPS"):
            os.environ[name] = self.env[name]
        for name, module in SERVICES:
            self._launch(name, module, self.ports[name])
        self._wait_ready([name for name, _ in SERVICES])

    def start_replicas(self) -> None:
        """A second conversation-service replica and a second gateway that calls it (the
        scale-out check): both on the same Kafka and PostgreSQL, the gateway with its own
        internal port. They join `procs` as conversation-2 and gateway-2."""
        conversation = free_port()
        self._launch("conversation-2", "conversation", conversation)
        self._launch("gateway-2", "gateway", free_port(), PARLEY_INTERNAL_PORT=str(free_port()),
                     PARLEY_CONVERSATION_URL=f"http://localhost:{conversation}")
        self._wait_ready(["conversation-2", "gateway-2"])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _launch(self, name: str, module: str, port: int, **env: str) -> None:
        """`python -m module` on `port` as `name` (its log is logs/<name>.log), with the stack's environment."""
        log_path = self.run_dir / "logs" / f"{name}.log"
        progress(f"starting {name} on :{port} (log: {log_path})")
        self.ports[name] = port
        self.procs[name] = spawn([sys.executable, "-m", module], log_path=log_path,
                                 env={**self.env, "PARLEY_HTTP_PORT": str(port), **env})

    def _wait_ready(self, names: list[str]) -> None:
        for name in names:
            proc = self.procs[name]
            wait_until(f"{name} /readyz", lambda: answers_200(f"{self.url(name)}/readyz"),
                       timeout=120, alive=lambda: proc.poll() is None)

    def stop_replicas(self) -> None:
        for name in ("gateway-2", "conversation-2"):
            if name in self.procs:
                stop(self.procs.pop(name), timeout=10)
                self.ports.pop(name, None)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            stop(self.procs[name], timeout=10)
        self.procs.clear()

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}


def statements_sent(stack: Stack) -> dict[str, float]:
    """parley_db_statements_total of each service (its /metrics; the gateway's on its
    internal port): statements sent to PostgreSQL so far."""
    found = {}
    for name, _ in SERVICES:
        port = stack.env["PARLEY_INTERNAL_PORT"] if name == "gateway" else stack.ports[name]
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        found[name] = sum(float(line.split()[-1]) for line in text.splitlines()
                          if line.startswith("parley_db_statements_total "))
    return found


class CpuMeter:
    """CPU seconds used by each service process, by this load generator, and by the
    components (Kafka, PostgreSQL: every other process on the box) over an interval."""

    def __init__(self, stack: Stack | None):
        self.stack = stack
        self.procs = {"loadgen": psutil.Process()}
        if stack is not None:
            self.procs.update({name: psutil.Process(pid) for name, pid in stack.pids().items()})
        # This run's own Kafka broker and PostgreSQL server (when started here), so that
        # "where the time goes" separates them from the neighbours' processes.
        self.groups: dict[str, Callable[[], list[psutil.Process]]] = {}
        comps = stack.comps if stack is not None else None
        if comps is not None and getattr(comps.broker, "proc", None) is not None:
            broker = psutil.Process(comps.broker.proc.pid)
            self.groups["kafka"] = lambda: [broker, *broker.children(recursive=True)]
        if comps is not None and comps.postgres is not None:
            try:
                postmaster = psutil.Process(comps.postgres.get_pid())
                self.groups["postgres"] = lambda: [postmaster, *postmaster.children(recursive=True)]
            except Exception:
                pass
        self._start: dict[str, float] = {}
        self._total_start = 0.0
        self._wall = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    @staticmethod
    def _machine() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

    def _group_cpu(self) -> dict[str, dict[int, float]]:
        return {name: {p.pid: self._cpu(p) for p in members()} for name, members in self.groups.items()}

    def start(self) -> None:
        self._start = {name: self._cpu(p) for name, p in self.procs.items()}
        self._group_start = self._group_cpu()
        self._total_start = self._machine()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Seconds of CPU each used; 'kafka' and 'postgres' are this run's broker and server
        (when it started them); 'everything_else' is the rest of the box (other users, and
        Kafka and PostgreSQL when they were not started here)."""
        used = {name: round(self._cpu(p) - self._start.get(name, 0.0), 3) for name, p in self.procs.items()}
        for name, now in self._group_cpu().items():  # a backend started since counts from 0
            before = self._group_start.get(name, {})
            used[name] = round(sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items()), 3)
        total = self._machine() - self._total_start
        used["everything_else"] = round(max(0.0, total - sum(used.values())), 3)
        used["wall"] = round(time.perf_counter() - self._wall, 3)
        return used


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


class Ticker:
    """Prints one progress line at most every `every` seconds."""

    def __init__(self, every: float = 2.0):
        self.every = every
        self._next = time.monotonic() + every

    def __call__(self, line) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            progress(line() if callable(line) else line)
