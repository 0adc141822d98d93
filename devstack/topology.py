"""Parley started the way deploy/compose.yaml runs it, without Docker: every service a
real process with its container's environment and command (devstack/compose_plan.py),
each on its own loopback address under its compose host name, Kafka and PostgreSQL
configured from compose's own settings, the one-shot services run to completion first,
and N gateway replicas behind Debian's nginx standing in for the ingress.

Isolation: a network namespace made for the run (`ip netns`, needs root). Inside it
every port is free (8080 twice, 9092, 5432 - exactly compose's, whatever runs on the
machine), `ip netns exec` gives its processes /etc/netns/<ns>/hosts as /etc/hosts, so
host names resolve only inside, and two runs at once never see each other. Stale
namespaces of a crashed run (their pid gone) are removed at the next start.

The test's own client code reaches the ingress from a thread that joined the namespace
(`NamespaceLoop`); name resolution there uses the topology's table, since the thread
still reads the machine's /etc/hosts.

Used by tests/deploy/test_production_topology.py and `make chaos` (kill/restart a service by name)."""
from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from aiohttp.abc import AbstractResolver

from parley.config import REPO_ROOT
from devstack import compose_plan
from devstack.compose_plan import ComposePlan, Service
from devstack.kafka_local import LIBS, _LOG4J, ensure_jars
from devstack.procs import pid_alive, say, spawn, stop
from parley.service_client import new_session

NS_PREFIX = "parley-topo-"
CLONE_NEWNET = 0x40000000
VENV_BIN = Path(sys.executable).parent
PG_BIN = None  # pgserver's PostgreSQL binaries, found on first use
INGRESS = "ingress"
INGRESS_PORT = 80


# ---- the namespace ---------------------------------------------------------------------------

def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def remove_stale_namespaces() -> list[str]:
    """Namespaces of earlier runs whose process is gone (a crash, a SIGKILL): their
    processes are killed, the namespace and its hosts file removed."""
    removed = []
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NS_PREFIX):
            continue
        owner = name[len(NS_PREFIX):]
        if owner.isdigit() and pid_alive(int(owner)) and int(owner) != os.getpid():
            continue
        _delete_namespace(name)
        removed.append(name)
    return removed


def _delete_namespace(name: str) -> None:
    for pid in _ip("netns", "pids", name).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    _ip("netns", "delete", name)
    shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


class Namespace:
    def __init__(self, hosts: Mapping[str, list[str]]):
        if os.geteuid() != 0:
            raise RuntimeError("the production topology needs root (ip netns, /etc/netns); run it as root")
        remove_stale_namespaces()
        self.name = f"{NS_PREFIX}{os.getpid()}"
        if _ip("netns", "list").stdout.split().count(self.name):
            _delete_namespace(self.name)
        result = _ip("netns", "add", self.name)
        if result.returncode != 0:
            raise RuntimeError(f"ip netns add {self.name} failed: {result.stderr}")
        atexit.register(self.delete)
        _ip("-n", self.name, "link", "set", "lo", "up")
        folder = Path(f"/etc/netns/{self.name}")
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"# written by Parley's topology launcher (pid {os.getpid()}); removed when it stops",
                 "127.0.0.1 localhost"]
        lines += [f"{ip} {' '.join(names)}" for ip, names in hosts.items()]
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def command(self, args: list[str]) -> list[str]:
        """`args` run inside: its network, and its hosts file as /etc/hosts."""
        return ["ip", "netns", "exec", self.name, *args]

    def delete(self) -> None:
        if self.name:
            _delete_namespace(self.name)
            self.name = ""


class NamespaceLoop:
    """An asyncio loop on a thread that joined the namespace: the test's clients (and
    probes) connect from inside, as a browser in front of the ingress would."""

    def __init__(self, namespace: Namespace):
        self.loop = asyncio.new_event_loop()
        joined = threading.Event()
        failure: list[str] = []

        def run() -> None:
            fd = os.open(f"/run/netns/{namespace.name}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    failure.append(os.strerror(ctypes.get_errno()))
            finally:
                os.close(fd)
            joined.set()
            if not failure:
                asyncio.set_event_loop(self.loop)
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="topology-client", daemon=True)
        self.thread.start()
        joined.wait()
        if failure:
            raise RuntimeError(f"could not join network namespace {namespace.name}: {failure[0]}")

    def run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class HostsResolver(AbstractResolver):
    """aiohttp name resolution from the topology's hosts table (the client thread reads
    the machine's /etc/hosts, not the namespace's)."""

    def __init__(self, table: Mapping[str, str]):
        self.table = dict(table)

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        ip = self.table.get(host, host)
        return [{"hostname": host, "host": ip, "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


# ---- the processes ---------------------------------------------------------------------------

@dataclass
class Process:
    name: str            # its host name (gateway-1, conversation, kafka, ...)
    args: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    proc: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Topology:
    """`start()` brings it up; `stop()` takes everything down (also at exit)."""
    env_file: dict[str, str]
    replicas: dict[str, int] = field(default_factory=lambda: {"gateway": 2})
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="parley-topology-")))
    plan: ComposePlan | None = None
    addresses: dict[str, str] = field(default_factory=dict)     # host name -> 127.0.0.x
    processes: dict[str, Process] = field(default_factory=dict)
    namespace: Namespace | None = None
    client: NamespaceLoop | None = None

    # -- names and addresses --

    def _assign_addresses(self) -> dict[str, list[str]]:
        names: list[list[str]] = []
        for name in self.plan.raw["services"]:
            count = self.replicas.get(name, 1)
            if count == 1:
                names.append([name])
            else:  # gateway-1 and gateway-2; `gateway` names them all, as compose's DNS does for a scaled service
                names += [[f"{name}-{i}", name] for i in range(1, count + 1)]
        names.append([INGRESS])
        hosts = {}
        for i, aliases in enumerate(names):
            ip = f"127.0.0.{10 + i}"
            hosts[ip] = aliases
            self.addresses.setdefault(aliases[0], ip)
        return hosts

    def instances(self, service: str) -> list[str]:
        count = self.replicas.get(service, 1)
        return [service] if count == 1 else [f"{service}-{i}" for i in range(1, count + 1)]

    @property
    def ingress_url(self) -> str:
        return f"http://{INGRESS}" if INGRESS_PORT == 80 else f"http://{INGRESS}:{INGRESS_PORT}"

    def resolver(self) -> HostsResolver:
        return HostsResolver(self.addresses)

    # -- environment --

    def container_env(self, service: Service, host: str) -> dict[str, str]:
        """The container's environment, with only what a container differs in changed:
        PATH (this venv instead of /opt/venv), image paths the image COPYs from the
        repository (the schemas) or keeps data in (volumes), and the address to bind -
        in compose each container has its own network stack and 0.0.0.0 is its own; here
        all share one namespace, so each binds its own address instead."""
        env = dict(service.environment)
        env["PATH"] = f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        data_root = str(Path(service.workdir).parent)      # /var/lib/parley: the files volume, the work dir
        for key, value in env.items():
            for image_path, repo_path in service.image.copies.items():
                if value == image_path.rstrip("/"):
                    env[key] = str(REPO_ROOT / repo_path)
            if value.startswith(data_root + "/"):
                env[key] = str(self.run_dir / "volumes" / value[len(data_root) + 1:])
                Path(env[key]).mkdir(parents=True, exist_ok=True)
        ip = self.addresses[host]
        for key in ("PARLEY_BIND_HOST", "PARLEY_PUBLIC_BIND_HOST"):
            env[key] = ip
        return env

    # -- infrastructure --

    def _start_postgres(self) -> None:
        """PostgreSQL 16 (pgserver's binaries) as the official image configures itself from
        compose's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB: password auth over TCP,
        listening on the `postgres` address, port 5432."""
        import pgserver._commands as pg
        bin_dir = pg.POSTGRES_BIN_PATH
        env = compose_plan._environment(self.plan.raw["services"][self.plan.postgres].get("environment"))
        user = env.get("POSTGRES_USER", "postgres")
        database = env.get("POSTGRES_DB", user)
        folder = self.run_dir / "postgres"
        folder.mkdir()
        (folder / "sockets").mkdir()
        (folder / "password").write_text(env["POSTGRES_PASSWORD"] + "\n")
        # PostgreSQL refuses to run as root: pgserver's own system user (it makes one when
        # missing); the run folder is opened to it.
        from pgserver.utils import ensure_user_exists
        ensure_user_exists("pgserver")
        self.run_dir.chmod(0o755)
        shutil.chown(folder, "pgserver")
        shutil.chown(folder / "sockets", "pgserver")
        shutil.chown(folder / "password", "pgserver")
        # setpriv execs (runuser would fork and sit between us and PostgreSQL).
        as_pg = ["setpriv", "--reuid=pgserver", "--regid=pgserver", "--init-groups"]
        initdb = subprocess.run(as_pg + [str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", user,
                                         f"--pwfile={folder / 'password'}", "--auth-host=scram-sha-256",
                                         "--auth-local=trust", "-E", "UTF8"], capture_output=True, text=True)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stdout}{initdb.stderr}")
        ip = self.addresses[self.plan.postgres]
        self._spawn(Process(self.plan.postgres, as_pg + [
            str(bin_dir / "postgres"), "-D", str(folder / "data"), "-c", f"listen_addresses={ip}", "-p", "5432",
            "-c", f"unix_socket_directories={folder / 'sockets'}"], {"PATH": "/usr/bin:/bin"}, folder,
            self.run_dir / "logs" / "postgres.log"))
        self._wait(self.plan.postgres, lambda: subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", str(folder / "sockets"), "-p", "5432"],
            capture_output=True).returncode == 0, 30)
        if database != "postgres":  # initdb makes only `postgres`; the image's entrypoint creates POSTGRES_DB
            subprocess.run(as_pg + [str(bin_dir / "createdb"), "-h", str(folder / "sockets"), "-p", "5432",
                                    "-U", user, database], check=True, capture_output=True)

    def _start_kafka(self) -> None:
        """Apache Kafka from its jars, configured from compose's KAFKA_* variables the way
        the apache/kafka image turns them into server.properties (KAFKA_A_B -> a.b,
        __ -> _, ___ -> -), formatted with compose's CLUSTER_ID. Listeners bind the
        `kafka` address instead of all interfaces; the data goes to the run folder."""
        ensure_jars()
        env = compose_plan._environment(self.plan.raw["services"][self.plan.kafka].get("environment"))
        folder = self.run_dir / "kafka"
        folder.mkdir()
        ip = self.addresses[self.plan.kafka]
        props = {}
        for key, value in env.items():
            if key.startswith("KAFKA_"):
                name = key[len("KAFKA_"):].lower().replace("___", "-").replace("__", "\0").replace("_", ".")
                props[name.replace("\0", "_")] = value
        props["listeners"] = ",".join(
            f"{scheme}://{ip}:{rest.rpartition(':')[2]}"
            for scheme, rest in (entry.split("://", 1) for entry in props["listeners"].split(",")))
        props["log.dirs"] = str(folder / "data")
        config = folder / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (folder / "log4j.properties").write_text(_LOG4J.format(log=folder / "server.log"))
        java = ["java", "-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{folder / 'log4j.properties'}", "-cp", f"{LIBS}/*"]
        formatted = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", env["CLUSTER_ID"],
                                           "-c", str(config)], capture_output=True, text=True)
        if formatted.returncode != 0:
            raise RuntimeError(f"formatting Kafka's storage failed:\n{formatted.stdout}{formatted.stderr}")
        self._spawn(Process(self.plan.kafka, java + ["kafka.Kafka", str(config)], dict(os.environ), folder,
                            self.run_dir / "logs" / "kafka.log"))

    def _wait_for_kafka(self, bootstrap: str) -> None:
        """What compose's health check asks (the broker answers an API-versions request),
        from inside, by its advertised name."""
        probe = ("import asyncio, sys, time\nfrom parley import kafka\nend = time.monotonic() + 60\n"
                 "while True:\n    try:\n        asyncio.run(kafka.ping(sys.argv[1], timeout=2)); break\n"
                 "    except Exception:\n        if time.monotonic() > end: raise\n        time.sleep(0.3)\n")
        started = time.monotonic()
        result = subprocess.run(self.namespace.command([sys.executable, "-c", probe, bootstrap]),
                                capture_output=True, text=True, cwd=REPO_ROOT)
        if result.returncode != 0:
            raise RuntimeError(f"Kafka did not answer at {bootstrap}:\n{result.stderr[-2000:]}\n"
                               f"{self.processes[self.plan.kafka].tail()}")
        say(f"kafka ready in {time.monotonic() - started:.1f} s")

    # -- Parley --

    def _run_one_shot(self, service: Service) -> None:
        say(f"running one-shot {service.name}: {' '.join(service.command)}")
        env = self.container_env(service, service.name)
        cwd = self.run_dir / "work" / service.name
        cwd.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(self.namespace.command(service.command), env=env, cwd=cwd,
                                capture_output=True, text=True, timeout=120)
        (self.run_dir / "logs" / f"{service.name}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"one-shot {service.name} exited with {result.returncode}:\n"
                               f"{(result.stdout + result.stderr)[-3000:]}")

    def start_service(self, service: Service, host: str) -> Process:
        cwd = self.run_dir / "work" / host
        cwd.mkdir(parents=True, exist_ok=True)
        return self._spawn(Process(host, service.command, self.container_env(service, host), cwd,
                                   self.run_dir / "logs" / f"{host}.log"))

    def _http_port(self, service: Service) -> int:
        return compose_plan._http_port(service)

    async def _ready(self, url: str) -> bool:
        try:
            async with new_session(total_timeout=2) as http:
                async with http.get(url) as r:
                    return r.status == 200
        except Exception:
            return False

    def _wait_ready(self, host: str, service: Service, timeout: float = 60) -> None:
        """Compose's health check asks /readyz on the service's PARLEY_HTTP_PORT; here by
        the service's own address (it does not listen on 127.0.0.1)."""
        url = f"http://{self.addresses[host]}:{self._http_port(service)}/readyz"
        self._wait(host, lambda: self.client.run(self._ready(url)), timeout)

    def _start_ingress(self) -> None:
        folder = self.run_dir / "nginx"
        folder.mkdir()
        gateways = "".join(f"        server {name}:{self._http_port(self.plan.parley['gateway'])};\n"
                           for name in self.instances("gateway"))
        (folder / "nginx.conf").write_text(NGINX_CONF.format(
            dir=folder, ip=self.addresses[INGRESS], port=INGRESS_PORT, gateways=gateways))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError("nginx is missing: `make system-packages` installs Debian's package")
        self._spawn(Process(INGRESS, [nginx, "-e", str(folder / "error.log"), "-p", str(folder), "-c",
                                      str(folder / "nginx.conf")], {"PATH": "/usr/sbin:/usr/bin:/bin"}, folder,
                            self.run_dir / "logs" / "ingress.log"))
        url = f"http://{self.addresses[INGRESS]}:{INGRESS_PORT}/healthz"
        self._wait(INGRESS, lambda: self.client.run(self._ready(url)), 20)

    # -- lifecycle --

    def _spawn(self, process: Process) -> Process:
        process.proc = spawn(self.namespace.command(process.args), log_path=process.log, env=process.env,
                             cwd=process.cwd)
        self.processes[process.name] = process
        return process

    def _wait(self, name: str, ready, timeout: float) -> None:
        started = time.monotonic()
        process = self.processes[name]
        while not ready():
            if not process.alive():
                raise RuntimeError(f"{name} exited with {process.proc.returncode} while starting:\n{process.tail()}")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{name} not ready after {timeout:.0f} s:\n{process.tail()}")
            time.sleep(0.2)
        say(f"{name} ready in {time.monotonic() - started:.1f} s")

    def start(self) -> "Topology":
        self.plan = self.plan or compose_plan.load(self.env_file)
        disagreements = compose_plan.problems(self.plan)
        if disagreements:
            raise AssertionError("deploy/compose.yaml and the code disagree:\n- " + "\n- ".join(disagreements))
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.namespace = Namespace(self._assign_addresses())
        try:
            self.client = NamespaceLoop(self.namespace)
            self._start_kafka()
            self._start_postgres()
            any_service = next(iter(self.plan.parley.values()))
            self._wait_for_kafka(any_service.environment["KAFKA_BOOTSTRAP_SERVERS"])
            # compose's order: each service after what it depends on (one-shots completed,
            # the others healthy); independent ones start together.
            started: set[str] = {self.plan.kafka, self.plan.postgres}
            pending = list(self.plan.parley.values())
            while pending:
                wave = [s for s in pending if set(s.depends_on) <= started]
                if not wave:
                    raise RuntimeError(f"cannot start {[s.name for s in pending]}: their dependencies never started")
                for s in wave:
                    if s.one_shot:
                        self._run_one_shot(s)
                    else:
                        for host in self.instances(s.name):
                            self.start_service(s, host)
                for s in wave:
                    if not s.one_shot:
                        for host in self.instances(s.name):
                            self._wait_ready(host, s)
                    started.add(s.name)
                    pending.remove(s)
            self._start_ingress()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, host: str, sig: int = signal.SIGKILL) -> None:
        """For `make chaos`: the process behind a host name, killed (restart with `restart`)."""
        self.processes[host].proc.send_signal(sig)
        self.processes[host].proc.wait()

    def restart(self, host: str) -> Process:
        process = self.processes[host]
        stop(process.proc)
        return self._spawn(process)

    def exec(self, service: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        """`docker compose exec <service> <args>`: a command with the service's environment."""
        s = self.plan.parley[service]
        host = self.instances(service)[0]
        return subprocess.run(self.namespace.command(args), env=self.container_env(s, host),
                              cwd=self.run_dir / "work" / host, capture_output=True, text=True, **kwargs)

    def stop(self) -> None:
        """Parley first (SIGTERM, as compose stops), then the ingress, Kafka and PostgreSQL."""
        infrastructure = {self.plan.kafka, self.plan.postgres} if self.plan else set()
        _stop_together([p.proc for n, p in self.processes.items() if n not in infrastructure and p.proc], 15)
        _stop_together([p.proc for n, p in self.processes.items() if n in infrastructure and p.proc], 20)
        self.processes.clear()
        if self.client:
            self.client.close()
            self.client = None
        if self.namespace:
            self.namespace.delete()
            self.namespace = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _stop_together(procs: list[subprocess.Popen], timeout: float) -> None:
    """SIGTERM to all at once (as `docker compose down` does), then each waited for, SIGKILL
    after `timeout`: the graceful shutdowns overlap instead of adding up."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def env_file_with_fresh_secrets(**extra: str) -> dict[str, str]:
    """What a self-hoster's deploy/.env holds: the three secrets, freshly made."""
    return {"PARLEY_INTERNAL_SECRET": secrets.token_hex(32), "PARLEY_VISITOR_SECRET": secrets.token_hex(32),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(18), **extra}


# The ingress: what ingress-nginx does for Parley (deploy/k8s/ingress.yaml), in plain
# nginx. WebSocket upgrades passed through, the client's address appended to
# X-Forwarded-For (after whatever the client sent, which the gateways must not believe
# beyond PARLEY_TRUSTED_PROXY_HOPS=1), the Host kept. X-Parley-Upstream says which
# gateway answered, so the test can tell both are used.
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream gateways {{
{gateways}    }}
    server {{
        listen {ip}:{port};
        client_max_body_size 12m;
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            add_header X-Parley-Upstream $upstream_addr always;
        }}
    }}
}}
"""
