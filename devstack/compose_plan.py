"""What deploy/compose.yaml says Parley is, read the way Docker Compose reads it, without
Docker: every service's command and container environment (the image's ENV under the
service's `environment`, after `${VAR}` interpolation from an env file), the order
`depends_on` imposes, and the checks that fail when compose and the code disagree about
a variable, a host name or a port.

The production topology test (tests/deploy/test_production_topology.py) and `make chaos` start processes from this
plan (devstack/topology.py); nothing here starts anything."""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

import yaml

from parley.config import REPO_ROOT, VARIABLES

COMPOSE_FILE = REPO_ROOT / "deploy" / "compose.yaml"
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"


class ComposeError(Exception):
    """The compose file cannot be read as compose would (a required variable missing, ...)."""


# ---- interpolation ---------------------------------------------------------------------------

_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, env: Mapping[str, str], where: str = "") -> str:
    """Compose's rules: `$$` is a literal `$`; `${V}`/`$V`; `${V:-d}` (unset or empty) and
    `${V-d}` (unset) give d; `${V:?msg}`/`${V?msg}` stop with msg. Defaults nest."""
    def one(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        present = name in env
        val = env.get(name, "")
        if op == ":-":
            return val if val else interpolate(arg, env, where)
        if op == "-":
            return val if present else interpolate(arg, env, where)
        if op in (":?", "?") and (not present or (op == ":?" and not val)):
            raise ComposeError(f"{where}: required variable {name} is missing a value: {arg}")
        return val
    return _VAR.sub(one, value)


def _interpolate_tree(node, env: Mapping[str, str], where: str = ""):
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    return node


# ---- the image (deploy/Dockerfile, final stage) ----------------------------------------------

@dataclass(frozen=True)
class Image:
    env: dict[str, str]
    cmd: list[str]
    workdir: str
    copies: dict[str, str]   # path in the image -> path in the repository it was copied from


def _dockerfile_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        if not current and raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            lines.append(current.strip())
        current = ""
    return lines


def read_image(dockerfile: Path = DOCKERFILE, build_args: Mapping[str, str] | None = None) -> Image:
    """ENV, CMD, WORKDIR and plain COPYs of the final stage, ARGs substituted (build args win)."""
    lines = _dockerfile_lines(dockerfile.read_text())
    last_from = max(i for i, line in enumerate(lines) if line.split()[0].upper() == "FROM")
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    cmd: list[str] = []
    workdir = "/"
    copies: dict[str, str] = {}

    def subst(value: str) -> str:
        scope = {**args, **env}
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: scope.get(m.group(1), m.group(0)), value)

    for line in lines[last_from + 1:]:
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ARG":
            name, _, default = rest.partition("=")
            args[name] = (build_args or {}).get(name, default)
        elif word == "ENV":
            parts = shlex.split(rest)
            if parts and "=" not in parts[0]:       # the old `ENV KEY value` form
                env[parts[0]] = subst(" ".join(parts[1:]))
            else:
                for part in parts:
                    k, _, v = part.partition("=")
                    env[k] = subst(v)
        elif word == "WORKDIR":
            workdir = subst(rest)
        elif word == "CMD":
            cmd = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        elif word == "COPY" and not rest.startswith("--"):
            *sources, dest = shlex.split(rest)
            for source in sources:
                copies[dest] = source
    return Image(env, cmd, workdir, copies)


# ---- the plan --------------------------------------------------------------------------------

@dataclass
class Service:
    name: str
    command: list[str]
    environment: dict[str, str]          # the container's: image ENV, then compose's `environment`
    compose_environment: dict[str, str]  # what compose's `environment` alone sets
    depends_on: dict[str, str]           # service -> condition
    one_shot: bool                       # runs to completion before its dependents start
    workdir: str
    image: Image | None = None

    @property
    def module(self) -> str | None:
        """The Python module `python -m X` runs (after the image's sh -c, if any)."""
        text = " ".join(self.command)
        m = re.search(r"python3?\s+-m\s+\"?\$?\{?([A-Za-z_][\w.]*)\}?\"?", text)
        if not m:
            return None
        name = m.group(1)
        return self.environment.get(name, name) if name.isupper() else name


@dataclass
class ComposePlan:
    raw: dict
    parley: dict[str, Service] = field(default_factory=dict)   # every Parley service, in start order
    kafka: str | None = None       # the name of the Kafka service
    postgres: str | None = None    # the name of the PostgreSQL service

    def service_env(self, name: str) -> dict:
        return self.raw["services"][name].get("environment") or {}

    @property
    def host_names(self) -> set[str]:
        return set(self.raw["services"])

    def long_running(self) -> list[Service]:
        return [s for s in self.parley.values() if not s.one_shot]

    def one_shots(self) -> list[Service]:
        return [s for s in self.parley.values() if s.one_shot]


def _environment(node) -> dict[str, str]:
    if not node:
        return {}
    if isinstance(node, list):
        return dict(item.partition("=")[::2] for item in node)
    return {k: "" if v is None else str(v) for k, v in node.items()}


def _depends(node) -> dict[str, str]:
    if not node:
        return {}
    if isinstance(node, list):
        return {name: "service_started" for name in node}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in node.items()}


def _start_order(services: dict[str, dict]) -> list[str]:
    order, seen = [], set()

    def visit(name: str, path: tuple = ()) -> None:
        if name in seen:
            return
        if name in path:
            raise ComposeError(f"depends_on cycle: {' -> '.join(path + (name,))}")
        for dep in _depends(services[name].get("depends_on")):
            if dep not in services:
                raise ComposeError(f"{name} depends on {dep}, which compose does not define")
            visit(dep, path + (name,))
        seen.add(name)
        order.append(name)
    for name in services:
        visit(name)
    return order


def load(env_file: Mapping[str, str], compose_file: Path = COMPOSE_FILE, dockerfile: Path = DOCKERFILE) -> ComposePlan:
    """The compose file as `docker compose --env-file <env_file> up` would run it: anchors
    and merge keys resolved by the YAML loader, variables interpolated from `env_file`
    only (not this process's environment, so the test is hermetic), services under a
    profile left out (compose does not start them without `--profile`)."""
    raw = yaml.safe_load(compose_file.read_text())
    raw = _interpolate_tree(raw, env_file)
    services = {n: s for n, s in raw["services"].items() if not s.get("profiles")}
    raw["services"] = services
    plan = ComposePlan(raw)
    completed_deps = {dep for s in services.values() for dep, cond in _depends(s.get("depends_on")).items()
                      if cond == "service_completed_successfully"}
    for name in _start_order(services):
        spec = services[name]
        image_name = str(spec.get("image", ""))
        if "build" not in spec and image_name.split(":")[0].endswith("kafka"):
            plan.kafka = name
            continue
        if "build" not in spec and image_name.split(":")[0].endswith("postgres"):
            plan.postgres = name
            continue
        build = spec.get("build") or {}
        if "build" not in spec and not image_name.startswith("parley"):
            raise ComposeError(f"{name}: image {image_name!r} is neither Parley's, Kafka nor PostgreSQL; "
                               "the topology launcher does not know how to start it")
        image = read_image(dockerfile, _environment(build.get("args") if isinstance(build, dict) else None))
        own = _environment(spec.get("environment"))
        command = spec.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        plan.parley[name] = Service(
            name=name, command=list(command or image.cmd), environment={**image.env, **own},
            compose_environment=own, depends_on=_depends(spec.get("depends_on")),
            one_shot=name in completed_deps or spec.get("restart") == "no",
            workdir=spec.get("working_dir") or image.workdir, image=image)
    return plan


# ---- where compose and the code must agree -----------------------------------------------------

_READS = re.compile(r"""(?:\benv|shared_secret)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
_SECRET_READS = re.compile(r"""shared_secret\(\s*["']([A-Z][A-Z0-9_]*)["']""")
# Settings.from_env stops a service without these two.
_ALWAYS_REQUIRED = {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}
# Names the outside world, not a compose service: never checked against compose's hosts.
_EXTERNAL_URLS = {"PARLEY_PUBLIC_URL"}


def _package_dir(module: str) -> Path | None:
    found = list((REPO_ROOT / "services").glob(f"*/{module.split('.')[0]}/__init__.py"))
    return found[0].parent if found else None


def _sources_of(module: str) -> list[Path]:
    """The service's own package and the shared backbone (its local-platform helpers and
    operations commands - admin.py, privacy_cli.py - aside: a service does not run them)."""
    package = _package_dir(module)
    shared = [p for p in (REPO_ROOT / "parley").glob("*.py") if p.name not in ("admin.py", "privacy_cli.py")]
    return shared + (sorted(package.rglob("*.py")) if package else [])


def variables_read(module: str) -> tuple[set[str], set[str]]:
    """(every variable the service's code reads, those read as a shared secret)."""
    reads, secrets = set(), set()
    for path in _sources_of(module):
        text = path.read_text()
        reads |= set(_READS.findall(text))
        secrets |= set(_SECRET_READS.findall(text))
    return reads, secrets


def required_variables(module: str) -> set[str]:
    """What compose must set for this service: the database and broker, the shared secrets
    it reads (it stops at once without them), and every service URL it reads whose default
    is loopback - right for `make run`, where all services share one host, and wrong in
    compose, where each is its own container."""
    reads, secrets = variables_read(module)
    loopback = {n for n in reads if n in VARIABLES and urlsplit(VARIABLES[n][0]).hostname in ("127.0.0.1", "localhost")}
    return (reads & _ALWAYS_REQUIRED) | secrets | loopback


def _http_port(service: Service) -> int:
    port = service.environment.get("PARLEY_HTTP_PORT")
    if port:
        return int(port)
    import importlib
    return importlib.import_module(f"{service.module}.__main__").SPEC.default_port


def _kafka_listeners(plan: ComposePlan) -> set[tuple[str, int]]:
    env = _environment(plan.raw["services"][plan.kafka].get("environment"))
    found = set()
    for entry in env.get("KAFKA_ADVERTISED_LISTENERS", "").split(","):
        parsed = urlsplit(entry.strip().replace("://", "://", 1))
        if parsed.hostname and parsed.port:
            found.add((parsed.hostname, parsed.port))
    return found


def problems(plan: ComposePlan) -> list[str]:
    """Every disagreement between compose and the code, each one sentence saying which
    service, which variable and what to change. Empty when they agree."""
    found: list[str] = []
    ports = {}
    for s in plan.long_running():
        if s.module and _package_dir(s.module):
            ports[s.name] = _http_port(s)
    for s in plan.parley.values():
        for name in sorted(s.compose_environment):
            if name not in VARIABLES:
                found.append(f"compose sets {name} for {s.name}, but parley/config.py VARIABLES does not know it "
                             "(a typo, or a setting the code no longer reads)")
        if not s.one_shot and s.module and _package_dir(s.module):
            for name in sorted(required_variables(s.module)):
                if not s.environment.get(name):
                    found.append(f"compose does not set {name} for {s.name}, which its code needs "
                                 f"(default {VARIABLES.get(name, ('',))[0]!r} is wrong in a deployment)")
        for name, value in sorted(s.environment.items()):
            if not value or name in _EXTERNAL_URLS:
                continue
            if name.endswith("_URL") and "://" in value:
                url = urlsplit(value)
                host, port = url.hostname, url.port
                if host not in plan.host_names:
                    found.append(f"{s.name}: {name}={value} points at host {host!r}, which compose does not define "
                                 f"(its services: {', '.join(sorted(plan.host_names))})")
                elif host in ports and port != ports[host]:
                    found.append(f"{s.name}: {name}={value} uses port {port}, but {host} listens on "
                                 f"PARLEY_HTTP_PORT={ports[host]}")
                elif host == plan.postgres and (port or 5432) != 5432:
                    found.append(f"{s.name}: {name}={value} uses port {port}, but {host} (PostgreSQL) listens on 5432")
            if name == "KAFKA_BOOTSTRAP_SERVERS" and plan.kafka:
                listeners = _kafka_listeners(plan)
                for entry in value.split(","):
                    host, _, port = entry.strip().rpartition(":")
                    if host not in plan.host_names:
                        found.append(f"{s.name}: KAFKA_BOOTSTRAP_SERVERS={value} names host {host!r}, which compose "
                                     "does not define")
                    elif (host, int(port or 0)) not in listeners:
                        found.append(f"{s.name}: KAFKA_BOOTSTRAP_SERVERS={value}: {entry} is not a listener "
                                     f"{plan.kafka} advertises ({sorted(listeners)})")
    return found
