"""The whole of Parley under a supervisor: Kafka and PostgreSQL from components.start
(the local broker and the embedded server, which the run can kill), and the five
services as `make run` starts them (run.SERVICES), on free ports, every byte of data in
one temporary folder that is removed afterwards."""
from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import components
from devstack.procs import free_port, say, wait_until
from devstack.run import SERVICES
from devstack.supervisor import Child, KafkaChild, PostgresChild, ServiceChild, Supervisor


@dataclass
class System:
    run_dir: Path
    comps: components.Components
    supervisor: Supervisor
    ports: dict[str, int]
    owner_email: str
    owner_password: str

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def child(self, name: str) -> Child:
        return self.supervisor[name]

    def stop(self, keep: bool = False) -> None:
        self.supervisor.stop()
        self.comps.stop()
        if not keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _ports() -> dict[str, int]:
    ports: dict[str, int] = {}
    for name in [n for n, _ in SERVICES] + ["gateway-internal"]:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    return ports


def start(keep_dir: bool = False) -> System:
    """Everything up and every /readyz answering; the supervisor watching from then on.
    The folder is outside pytest's temporary one (embedded PostgreSQL runs as another user,
    see tests/conftest.py)."""
    run_dir = Path(tempfile.mkdtemp(prefix="parley-chaos-"))
    run_dir.chmod(0o755)
    comps = None
    supervisor: Supervisor | None = None
    try:
        comps = components.start(run_dir, use_docker=False)
        if comps.broker is None or comps.postgres is None:
            raise SystemExit("make chaos kills its own Kafka broker and PostgreSQL: unset KAFKA_BOOTSTRAP_SERVERS "
                             "and DATABASE_URL so it starts local ones.")
        ports = _ports()
        logs = run_dir / "logs"
        logs.mkdir()
        owner_email, owner_password = "owner@chaos.local", "chaos-owner-" + secrets.token_hex(8)
        env = {**os.environ, "DATABASE_URL": comps.database_url, "KAFKA_BOOTSTRAP_SERVERS": comps.bootstrap,
               "PYTHONUNBUFFERED": "1",
               "PARLEY_OPERATOR_REGISTRY_URL": f"http://127.0.0.1:{ports['operator-registry']}",
               "PARLEY_CONVERSATION_URL": f"http://127.0.0.1:{ports['conversation']}",
               "PARLEY_CRM_BRIDGE_URL": f"http://127.0.0.1:{ports['crm-bridge']}",
               "PARLEY_SCHEDULER_URL": f"http://127.0.0.1:{ports['scheduler']}",
               "PARLEY_INTERNAL_PORT": str(ports["gateway-internal"]),
               "PARLEY_PUBLIC_BIND_HOST": "127.0.0.1",
               # The scripted visitors stand behind one proxy hop, each with its own address,
               # so per-address limits apply to each as to a real visitor.
               "PARLEY_TRUSTED_PROXY_HOPS": "1",
               "PARLEY_VISITOR_SECRET": secrets.token_hex(32),
               "PARLEY_INTERNAL_SECRET": os.environ.get("PARLEY_INTERNAL_SECRET") or secrets.token_hex(32),
               "PARLEY_SEED_DEMO": "1", "PARLEY_OWNER_EMAIL": owner_email, "PARLEY_OWNER_PASSWORD": owner_password,
               "PARLEY_SHUTDOWN_TIMEOUT": "5"}
        children: list[Child] = [PostgresChild(comps.postgres), KafkaChild(comps.broker)]
        for name, module in SERVICES:
            # The gateway's readiness is on its internal port; the others' on their own.
            probe = ports["gateway-internal"] if name == "gateway" else ports[name]
            children.append(ServiceChild(name, [sys.executable, "-m", module], log_path=logs / f"{name}.log",
                                         env={**env, "PARLEY_HTTP_PORT": str(ports[name])},
                                         ready_url=f"http://127.0.0.1:{probe}/readyz"))
        supervisor = Supervisor(children)
        started = time.monotonic()
        for child in children[2:]:
            say(f"starting {child.name} on :{ports[child.name]}")
            child.start()
        for child in children[2:]:
            wait_until(f"{child.name} /readyz", child.ready, timeout=120, alive=child.alive)
        say(f"Parley is up in {time.monotonic() - started:.1f} s; the supervisor is watching")
        supervisor.watch()
        return System(run_dir, comps, supervisor, ports, owner_email, owner_password)
    except BaseException:
        if supervisor is not None:
            supervisor.stop()
        if comps is not None:
            comps.stop()
        if not keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
