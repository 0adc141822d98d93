"""deploy/compose.yaml run as it is by Docker Compose v2 (its own Go code, built by
`make compose-test`) against podman's Docker API, under a project name of this run's own:
its containers, volumes and network never meet a real deployment's or another run's.

The only thing added on the command line is what a user's deploy/.env would hold (the
three secrets, the published ports, PARLEY_CRM_ALLOW_PRIVATE for the demo profile)."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from parley.config import REPO_ROOT
from devstack.procs import free_port
from tests.deploy.containers.podman import Podman

COMPOSE_FILE = REPO_ROOT / "deploy" / "compose.yaml"
COMPOSE_BINARY = REPO_ROOT / ".venv" / "bin" / "docker-compose"
PROJECT_PREFIX = "parley-ct-"
PROJECT_LABEL = "com.docker.compose.project"
PARLEY_SERVICES = ("gateway", "conversation", "operator-registry", "crm-bridge", "scheduler")


# What compose makes for a project, how podman lists each kind's ids, and how it removes them.
RESOURCES = (("containers", ("ps", "--all", "--quiet"), ("rm", "--force", "--volumes")),
             ("volumes", ("volume", "ls", "--quiet"), ("volume", "rm", "--force")),
             ("networks", ("network", "ls", "--quiet"), ("network", "rm", "--force")))


def project_resources(podman: Podman, filter_: str) -> dict[str, list[str]]:
    """Ids of the containers, volumes and networks `--filter filter_` lists."""
    return {kind: podman(*listing, "--filter", filter_, check=False).stdout.split()
            for kind, listing, _ in RESOURCES}


class Compose:
    def __init__(self, podman: Podman) -> None:
        self.podman = podman
        # The pid in the name: a later run removes what a crashed run left (see remove_stale).
        self.project = f"{PROJECT_PREFIX}{os.getpid()}"
        self.http_port, self.standin_port = free_port(), free_port()
        self.env_file = Path(tempfile.mkstemp(prefix="parley-compose-", suffix=".env")[1])
        self.env_file.write_text("\n".join([
            f"PARLEY_INTERNAL_SECRET={secrets.token_hex(32)}",
            f"PARLEY_VISITOR_SECRET={secrets.token_hex(32)}",
            f"POSTGRES_PASSWORD={secrets.token_hex(24)}",
            f"PARLEY_HTTP_PORT={self.http_port}",
            f"PARLEY_CRM_STANDIN_PORT={self.standin_port}",
            "PARLEY_CRM_ALLOW_PRIVATE=1", ""]))

    @property
    def filter(self) -> str:
        """podman's --filter for this project's containers, volumes and networks."""
        return f"label={PROJECT_LABEL}={self.project}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def standin_url(self) -> str:
        return f"http://127.0.0.1:{self.standin_port}"

    def __call__(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        command = [str(COMPOSE_BINARY), "--project-name", self.project, "--file", str(COMPOSE_FILE),
                   "--env-file", str(self.env_file), "--profile", "demo", "--progress", "plain", *args]
        done = subprocess.run(command, env={**self.podman.env, "DOCKER_HOST": self.podman.docker_host},
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def up(self, timeout: float = 300) -> None:
        """`up --detach`, then until every long-running service is healthy (compose starts
        the gateway last, once the rest are; it returns before the gateway itself is)."""
        self("up", "--detach", "--no-build")
        deadline = time.monotonic() + timeout
        for service in (*PARLEY_SERVICES, "crm-standin"):
            while (status := self.health(service)) != "healthy":
                assert time.monotonic() < deadline, f"{service} is {status} after {timeout:.0f} s"
                time.sleep(1)

    def health(self, service: str) -> str:
        state = self.container(service)["State"]
        return (state.get("Health") or state.get("Healthcheck") or {}).get("Status") or state["Status"]

    def container(self, service: str) -> dict:
        """`podman inspect` of the service's one container."""
        [found] = self.podman.json("ps", "--all", "--format", "json", "--filter", self.filter,
                                   "--filter", f"label=com.docker.compose.service={service}")
        return self.podman.json("inspect", found["Id"])[0]

    def setup_token(self) -> str:
        logs = self("logs", "--no-color", "gateway").stdout
        tokens = re.findall(r"/setup\?token=([0-9a-f]+)", logs)
        assert tokens, f"the gateway printed no setup link:\n{logs[-3000:]}"
        return tokens[-1]

    def save_logs(self, folder: Path) -> None:
        """Every container's log and health record, for reading after a failed run."""
        folder.mkdir(parents=True, exist_ok=True)
        for line in self.podman("ps", "--all", "--format", "{{.Names}}", "--filter", self.filter).stdout.split():
            logs = self.podman("logs", line, check=False)
            health = self.podman("inspect", "--format", "{{json .State}}", line, check=False).stdout
            (folder / f"{line}.log").write_text(f"{logs.stdout}{logs.stderr}\n--- state ---\n{health}")

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks of this project that still exist."""
        return project_resources(self.podman, self.filter)

    def down(self) -> None:
        """Everything of this project removed, volumes too (a second call does nothing)."""
        if self.env_file.exists():
            self("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
            self.env_file.unlink()


def remove_stale(podman: Podman) -> None:
    """Containers, volumes and networks of earlier runs whose process is gone."""
    projects = set()
    for _, listing, _ in RESOURCES:
        listed = podman(*listing[:-1], "--format", "{{index .Labels \"%s\"}}" % PROJECT_LABEL, check=False).stdout
        projects |= {p for p in listed.split() if p.startswith(PROJECT_PREFIX)}
    for project in projects:
        pid = project[len(PROJECT_PREFIX):]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            found = project_resources(podman, f"label={PROJECT_LABEL}={project}")
            for kind, _, remove in RESOURCES:
                if found[kind]:
                    podman(*remove, *found[kind], check=False)
