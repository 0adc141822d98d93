"""Settings from environment variables. Every variable, its default and its meaning
is listed here once; docs/configuration.md is written from the same table."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# name -> (default, meaning). Defaults are strings, as the environment gives them.
VARIABLES: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("", "PostgreSQL URL. Empty: `make run`/`make test` start an embedded PostgreSQL 16 (pgserver) under PARLEY_RUN_DIR; a service started by hand needs it set."),
    "KAFKA_BOOTSTRAP_SERVERS": ("", "Kafka bootstrap servers (host:port,...). Empty: `make run`/`make test` start a local single-node KRaft broker under PARLEY_RUN_DIR."),
    "PARLEY_HTTP_PORT": ("", "Port of this service's HTTP server. Defaults: gateway 8080, conversation 8081, operator-registry 8082, crm-bridge 8083, scheduler 8084."),
    "PARLEY_PORT_BASE": ("8080", "`make run` only: the gateway gets this port, the other services the next four, the gateway's internal port the one after, the local CRM stand-in the next (8086), then the local mail sink's SMTP and web ports (8087, 8088)."),
    "PARLEY_BIND_HOST": ("127.0.0.1", "Address every service's own port listens on (the gateway's internal port too). Loopback by default; compose and k8s set 0.0.0.0, where signatures and NetworkPolicies guard the ports."),
    "PARLEY_PUBLIC_BIND_HOST": ("0.0.0.0", "Gateway: address its public port listens on."),
    "PARLEY_INTERNAL_PORT": ("8085", "Gateway: its internal port, with /metrics (never served on the public port), /healthz and /readyz."),
    "PARLEY_INTERNAL_SECRET": ("", "The key that signs every call between Parley services, 32+ random characters, the same for all of them. Unsigned calls get 401. `make run` generates one in PARLEY_RUN_DIR; compose and k8s require it."),
    "PARLEY_PUBLIC_URL": ("", "Gateway and crm-bridge: the public URL users reach the gateway at (https://chat.example.com). Session cookies are Secure when it is https, or when a trusted proxy says the request came over https; each CRM lead links back to its conversation under it. `make run` sets http://localhost:<PARLEY_PORT_BASE> unless it is set."),
    "PARLEY_LOG_LEVEL": ("INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    "PARLEY_RUN_DIR": (".run", "Where `make run` keeps Kafka's and PostgreSQL's data and the services' logs."),
    "PARLEY_SCHEMAS_DIR": ("schemas", "Folder with the event JSON Schemas and asyncapi.yaml (relative to the repository)."),
    "PARLEY_WEB_DIR": ("web", "Gateway: folder with the widget, the operator app and the first-run page (relative to the repository)."),
    "PARLEY_EVENT_SHARDS": ("8", "Event-store shards of a service schema, 1-256: appends to streams in different shards never wait for each other, and the relay publishes each shard in commit order. Read when a schema is first created and then stored in it (table `event_shards`); an existing schema keeps its count (a different value is logged and ignored; see docs/architecture.md, How a deployment grows)."),
    "PARLEY_SHUTDOWN_TIMEOUT": ("10", "Seconds a service waits for in-flight work on SIGTERM before giving up."),
    "PARLEY_OPERATOR_REGISTRY_URL": ("http://127.0.0.1:8082", "Gateway and conversation (auto-assignment asks who is online): where operator-registry answers (`make run` sets it)."),
    "PARLEY_CONVERSATION_URL": ("http://127.0.0.1:8081", "Gateway, scheduler (idle close) and crm-bridge (keys that open sealed lead requests): where the conversation service answers (`make run` sets it)."),
    "PARLEY_CRM_BRIDGE_URL": ("http://127.0.0.1:8083", "Gateway: where crm-bridge answers (`make run` sets it)."),
    "PARLEY_SCHEDULER_URL": ("http://127.0.0.1:8084", "Gateway: where the scheduler answers (working hours; `make run` sets it)."),
    "PARLEY_SCHEDULER_MINUTE_SECONDS": ("60", "scheduler: how many seconds a timer minute lasts (unanswered_alert_minutes, and idle_close_hours as 60 of them). Leave it at 60; the tests shorten it so timers fire in seconds."),
    "PARLEY_PRESENCE_GRACE_SECONDS": ("30", "operator-registry and gateway: an operator with no app open anywhere for this long is offline (gateways send heartbeats every third of it). Leave it at 30; the tests shorten it."),
    "PARLEY_LIVE_VISITORS_REFRESH_SECONDS": ("30", "gateway: how often each gateway tells the others every live visitor it holds (visitors.signals). A visitor with no widget open leaves the live list after half of it; a gateway that stopped saying anything, after three. Leave it at 30; the tests shorten it."),
    "PARLEY_VISITOR_SECRET": ("", "Gateway: the key that signs visitor tokens, 32+ random characters, the same on every gateway. `make run` generates one in PARLEY_RUN_DIR."),
    "PARLEY_TRUSTED_PROXY_HOPS": ("0", "Gateway: how many reverse proxies of yours stand in front of it (an ingress: 1). Their X-Forwarded-For entries give the client's address for throttling and rate limits; 0 trusts none."),
    "PARLEY_SESSION_ROTATE_SECONDS": ("86400", "operator-registry: a session token older than this is replaced on its next use."),
    "PARLEY_SESSION_ROTATION_GRACE_SECONDS": ("60", "operator-registry: how long a rotated-out token still works, for requests already in flight with it."),
    "PARLEY_SEED_DEMO": ("", "operator-registry: 1 creates project `demo` at start-up (chat enabled, owned by PARLEY_OWNER_EMAIL) if it does not exist. `make run` and the tests set it; compose and k8s do not, so a new installation starts at the gateway's /setup page (or `python -m parley.admin create-project`)."),
    "PARLEY_OWNER_EMAIL": ("owner@parley.local", "With PARLEY_SEED_DEMO=1 only: the demo project's owner login (printed by `make run`)."),
    "PARLEY_OWNER_PASSWORD": ("parley-demo-owner", "With PARLEY_SEED_DEMO=1 only: the demo project's owner password."),
    "PARLEY_CRM_ALLOW_PRIVATE": ("", "crm-bridge: 1 allows CRM URLs on loopback, private, link-local and other non-public addresses, and plain http (for the local CRM stand-in; `make run` and the tests set it). Unset, an admin cannot point Parley at internal services."),
    "PARLEY_CRM_LEASE_SECONDS": ("120", "crm-bridge: how long a claimed lead delivery is its worker's; one not finished by then (the process died, or the call overran) is taken up again, looking the lead up in the CRM before creating it. Keep it well above a CRM call's worst case (30 s); the crash test shortens it."),
}


# Variables for `make run` and the tests only: a deployment (deploy/compose.yaml,
# deploy/k8s) must not need them, and tests/deploy checks that it sets every other one.
LOCAL_ONLY_VARIABLES: frozenset[str] = frozenset({
    "PARLEY_PORT_BASE", "PARLEY_RUN_DIR", "PARLEY_OWNER_EMAIL", "PARLEY_OWNER_PASSWORD", "PARLEY_SEED_DEMO",
    "PARLEY_SCHEDULER_MINUTE_SECONDS", "PARLEY_CRM_ALLOW_PRIVATE", "PARLEY_PRESENCE_GRACE_SECONDS",
    "PARLEY_LIVE_VISITORS_REFRESH_SECONDS",
})


def env(name: str) -> str:
    default, _ = VARIABLES[name]
    return os.environ.get(name, default)


def positive_seconds(name: str, maximum: float = 3600) -> float:
    """A duration setting in seconds, above 0 and at most `maximum`; an empty value is its
    default. A bad value stops the process at once, saying what is wanted."""
    default = VARIABLES[name][0]
    raw = env(name) or default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= maximum:
        raise SystemExit(f"{name} must be a number of seconds above 0 (default {default}), not {raw!r}")
    return value


def shared_secret(name: str, shared_by: str) -> bytes:
    """A key every process of one installation must hold alike (32+ random characters);
    the process stops at once, saying how to make one, when it is missing or short."""
    value = env(name)
    if len(value) < 32:
        raise SystemExit(f"{name} must be set to at least 32 random characters, the same {shared_by} "
                         "(e.g. `openssl rand -hex 32`). `make run` generates one for you.")
    return value.encode()


def resolve_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


@dataclass(frozen=True)
class Settings:
    service: str
    http_port: int
    database_url: str
    kafka_bootstrap: str
    log_level: str
    schemas_dir: Path
    shutdown_timeout: float
    bind_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, service: str, default_port: int) -> "Settings":
        missing = [n for n in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if not env(n)]
        if missing:
            raise SystemExit(
                f"{service}: {', '.join(missing)} not set. Start everything with `make run`, "
                "or point the service at your PostgreSQL and Kafka with these variables."
            )
        return cls(
            service=service,
            http_port=int(env("PARLEY_HTTP_PORT") or default_port),
            bind_host=env("PARLEY_BIND_HOST"),
            database_url=env("DATABASE_URL"),
            kafka_bootstrap=env("KAFKA_BOOTSTRAP_SERVERS"),
            log_level=env("PARLEY_LOG_LEVEL").upper(),
            schemas_dir=resolve_path(env("PARLEY_SCHEMAS_DIR")),
            shutdown_timeout=float(env("PARLEY_SHUTDOWN_TIMEOUT")),
        )


def configuration_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{n}` | `{d}` | {m} |" for n, (d, m) in VARIABLES.items()]
    return "\n".join(rows)


def configuration_doc() -> str:
    return f"""# Configuration

Every Parley process reads these environment variables. The table is generated from
`parley/config.py` (`VARIABLES`), and a test keeps the two identical: change the code,
then run `.venv/bin/python -m parley.config > docs/configuration.md`.

{configuration_table()}
"""


if __name__ == "__main__":
    print(configuration_doc(), end="")
