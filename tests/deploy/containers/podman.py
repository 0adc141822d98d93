"""Podman as this machine kind can run it (../shared/CONTAINERS.md), with Docker's API for
Docker Compose, and the one part of a container engine the machine lacks played by us.

- containers.conf: the runc runtime and cgroupfs (crun refuses hybrid cgroups here), and
  rlimits below the host's hard limit (the host's own values are refused). Soft and hard
  are equal because podman 4.3's Docker API swaps them when they differ.
- `podman system service` serves Docker's API on a socket of the run's own; Docker
  Compose (built from its Go module, `make compose-test`) talks to it, so compose's own
  code decides the start order, waits for health and for `migrate` to exit 0.
- Health checks: podman schedules them with systemd timers, and this machine has no
  systemd (PID 1 is not systemd). `HealthTicker` does what the timer would do: it runs
  `podman healthcheck run` for each running container at that container's own interval.
  Podman itself runs the check and keeps the status, start period and retries."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

TOOLS = ("podman", "runc", "mmdebstrap")


def missing_tools(compose_binary: Path) -> list[str]:
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if not compose_binary.exists():
        missing.append(str(compose_binary))
    return missing


class Podman:
    """One run's podman: its configuration, its API socket, its health ticker."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="parley-podman-"))
        (self.dir / "containers.conf").write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.dir / "containers.conf")}
        self.socket = self.dir / "podman.sock"
        self.service: subprocess.Popen | None = None
        self.ticker: HealthTicker | None = None

    def __call__(self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
                 ) -> subprocess.CompletedProcess:
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def json(self, *args: str):
        return json.loads(self(*args).stdout or "null")

    def start(self) -> None:
        """The Docker API on our socket."""
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"], env=self.env,
            stdout=open(self.dir / "service.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start:\n{(self.dir / 'service.log').read_text()}")
            time.sleep(0.1)

    def watch_health(self, filter_: str) -> None:
        """Health checks for the running containers `--filter filter_` lists, from now on."""
        self.ticker = HealthTicker(self, filter_)
        self.ticker.start()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        if self.ticker:
            self.ticker.stop()
        if self.service and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.service.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class HealthTicker(threading.Thread):
    """systemd's part in podman's health checks: each running container with a check has
    it run every `Interval` (its compose or image setting)."""

    def __init__(self, podman: Podman, filter_: str) -> None:
        super().__init__(daemon=True, name="health-ticker")
        self.podman, self.filter = podman, filter_
        self.stopped = threading.Event()
        self.intervals: dict[str, float] = {}
        self.last_run: dict[str, float] = {}
        # When the check that first found each container healthy started: nothing can have
        # seen it healthy before (podman's own log keeps only the last five results).
        self.first_healthy: dict[str, datetime] = {}
        self.runs = 0

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)

    def run(self) -> None:
        while not self.stopped.wait(1):
            try:
                self._tick()
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
                pass  # a container went away between the listing and the check: next tick

    def _tick(self) -> None:
        listed = self.podman.json("ps", "--format", "json", "--filter", self.filter) or []
        now = time.monotonic()
        for container in listed:
            cid = container["Id"]
            if cid not in self.intervals:
                config = self.podman.json("inspect", "--format", "{{json .Config.Healthcheck}}", cid) or {}
                checked = bool(config.get("Test")) and config["Test"][0] != "NONE"
                self.intervals[cid] = config.get("Interval", 0) / 1e9 if checked else 0
                self.last_run[cid] = now
            interval = self.intervals[cid]
            if interval and now - self.last_run[cid] >= interval:
                self.last_run[cid] = now
                started = datetime.now(timezone.utc)
                if self.podman("healthcheck", "run", cid, check=False, timeout=120).returncode == 0:
                    self.first_healthy.setdefault(cid, started)
                self.runs += 1
