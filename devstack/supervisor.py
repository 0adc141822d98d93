"""Restart what crashes, as compose's `restart: unless-stopped` does.

Each supervised child (a Parley service, the local Kafka broker, the embedded
PostgreSQL) has a watcher thread: when the child is found dead and was not stopped on
purpose, it is started again after a delay that starts at 100 ms and doubles on every
restart (up to 10 s), and goes back to 100 ms once the child has stayed up for 10 s -
Docker's own rule for restart policies. Every death and every restart is recorded with
its time, so a chaos run can tell which client errors fell inside a component's outage.

The children reuse how `make run` starts things (procs.spawn, LocalKafka, pgserver);
this module only adds the watching."""
from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from devstack.kafka_local import LocalKafka
from devstack.procs import answers_200, say, spawn, stop

FIRST_DELAY = 0.1
MAX_DELAY = 10.0
STABLE_AFTER = 10.0


class Child:
    """Something the supervisor keeps running."""
    name: str

    def start(self) -> None:  # returns once the child is up (a service: its process runs)
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def ready(self) -> bool:  # serving again, for the outage's end
        return self.alive()

    def pid(self) -> int | None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class ServiceChild(Child):
    """A Parley service, `python -m <module>`, its log appended to across restarts."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log_path: Path, ready_url: str):
        self.name, self.args, self.env, self.log_path, self.ready_url = name, args, env, log_path, ready_url
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = spawn(self.args, log_path=self.log_path, env=self.env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        return self.alive() and answers_200(self.ready_url)

    def pid(self) -> int | None:
        return self.proc.pid if self.alive() else None

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)


class KafkaChild(Child):
    """The local broker, restarted on the same data folder and the same ports (LocalKafka
    reuses its saved ports when they are free, as they are once the old process is gone)."""
    name = "kafka"

    def __init__(self, broker: LocalKafka):
        self.broker = broker
        self.port = broker.port

    def start(self) -> None:
        self.broker.proc = None  # the dead one: start() spawns a new one and waits until it answers
        self.broker.start()
        if self.broker.port != self.port:
            raise RuntimeError(f"Kafka came back on port {self.broker.port}, not {self.port}: the clients "
                               "would not find it")

    def alive(self) -> bool:
        return self.broker.proc is not None and self.broker.proc.poll() is None

    def pid(self) -> int | None:
        return self.broker.proc.pid if self.alive() else None

    def stop(self) -> None:
        self.broker.stop()


class PostgresChild(Child):
    """The embedded PostgreSQL (pgserver). Its postmaster is not our child (pg_ctl
    daemonizes it), so life is read from postmaster.pid; a start is pgserver's own
    `ensure_postgres_running`, on the same data folder and socket."""
    name = "postgres"

    def __init__(self, server):
        self.server = server

    def _info(self):
        from pgserver.utils import PostmasterInfo
        return PostmasterInfo.read_from_pgdata(self.server.pgdata)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def alive(self) -> bool:
        info = self._info()
        return info is not None and info.is_running()

    def pid(self) -> int | None:
        info = self._info()
        return info.pid if info is not None and info.is_running() else None

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every backend killed, no checkpoint - as in a crash."""
        from pgserver._commands import pg_ctl
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=self.server.pgdata, user=self.server.system_user)

    def stop(self) -> None:
        self.server.cleanup()


@dataclass
class Incident:
    """One death of a child: when it was seen dead, when it was started again and when it
    answered again (None while not yet)."""
    child: str
    died_at: float
    restarted_at: float | None = None
    ready_at: float | None = None


@dataclass
class Supervisor:
    children: list[Child]
    poll: float = 0.1
    incidents: list[Incident] = field(default_factory=list)
    log: Callable[[str], None] = say
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __getitem__(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def watch(self) -> None:
        """Watch children that are already running."""
        for child in self.children:
            thread = threading.Thread(target=self._watch, args=(child,), name=f"supervise-{child.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def restarts(self, name: str | None = None) -> int:
        return sum(1 for i in self.incidents if name is None or i.child == name)

    def _watch(self, child: Child) -> None:
        delay, up_since = FIRST_DELAY, time.monotonic()
        while not self._stopping.is_set():
            if child.alive():
                if time.monotonic() - up_since > STABLE_AFTER:
                    delay = FIRST_DELAY
                self._stopping.wait(self.poll)
                continue
            incident = Incident(child.name, time.time())
            with self._lock:
                self.incidents.append(incident)
            self.log(f"supervisor: {child.name} is down; restarting in {delay:.1f} s")
            while not self._stopping.is_set():
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, MAX_DELAY)
                try:
                    child.start()
                    break
                except Exception as e:  # a start that fails is retried, as compose does
                    self.log(f"supervisor: starting {child.name} failed ({e}); retrying in {delay:.1f} s")
            incident.restarted_at = time.time()
            up_since = time.monotonic()
            while not self._stopping.is_set() and child.alive() and not child.ready():
                self._stopping.wait(0.2)
            if child.ready():
                incident.ready_at = time.time()
                self.log(f"supervisor: {child.name} is back ({incident.ready_at - incident.died_at:.1f} s down)")

    def wait_ready(self, name: str, since: float, timeout: float) -> Incident:
        """The incident of `name` that began after `since`, once it is ready again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [i for i in self.incidents if i.child == name and i.died_at >= since]
            if found and found[-1].ready_at is not None:
                return found[-1]
            time.sleep(0.1)
        raise TimeoutError(f"{name} did not come back within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop watching, then stop the children in reverse order (services before the broker
        and the database)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=120)
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as e:
                self.log(f"supervisor: stopping {child.name}: {e}")
