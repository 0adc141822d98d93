"""The images deploy/compose.yaml names, made here: none can be pulled on this machine, so
each third-party image is a stand-in built from Debian's packages (mmdebstrap) and the
binaries the project already fetches, tagged with the exact name compose uses; then the
project's image from deploy/Dockerfile as it is.

What each stand-in does not honour of the image it stands for is in docs/containers.md."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pgserver

from parley.config import REPO_ROOT
from devstack.kafka_local import LIBS, ensure_jars
from devstack.procs import say
from tests.deploy.containers.podman import Podman

STANDINS = Path(__file__).parent / "standins"
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"

PYTHON = "docker.io/library/python:3.11-slim-bookworm"
KAFKA = "docker.io/apache/kafka:3.9.1"
POSTGRES = "docker.io/library/postgres:16"
PARLEY = "localhost/parley:local"
# Root filesystems the Kafka and PostgreSQL stand-ins are built on (not names compose uses).
JRE_BASE = "localhost/parley-standin/jre:bookworm"
DEBIAN_BASE = "localhost/parley-standin/debian:bookworm"

ALL = (PYTHON, KAFKA, POSTGRES, PARLEY, JRE_BASE, DEBIAN_BASE)


@dataclass
class Built:
    name: str
    seconds: float
    size_bytes: int


def _rootfs(podman: Podman, tag: str, packages: list[str], changes: list[str]) -> None:
    """A Debian root filesystem with `packages`, imported as image `tag`. The machine's own
    extra CAs (/usr/local/share/ca-certificates) are trusted in it too, as in any base image
    used behind a TLS-intercepting egress; on a machine without them nothing changes."""
    with tempfile.TemporaryDirectory(prefix="parley-rootfs-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        command = ["mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(packages)}"]
        if any(Path("/usr/local/share/ca-certificates").glob("*.crt")):
            command += ["--customize-hook=copy-in /usr/local/share/ca-certificates /usr/local/share",
                        '--customize-hook=chroot "$1" update-ca-certificates']
        done = subprocess.run([*command, SUITE, str(tarball), MIRROR], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mmdebstrap for {tag} failed:\n{done.stdout}{done.stderr}")
        podman("import", *[a for change in changes for a in ("--change", change)], str(tarball), tag)


def _build(podman: Podman, tag: str, context: Path, containerfile: Path | None = None) -> None:
    # --format docker: the OCI format has no HEALTHCHECK, and the Dockerfile's must survive.
    args = ["build", "--format", "docker", "--tag", tag]
    if containerfile:
        args += ["--file", str(containerfile)]
    podman(*args, str(context), timeout=1800)


def python_standin(podman: Podman) -> None:
    _rootfs(podman, PYTHON, ["python3", "python3-venv", "python-is-python3", "ca-certificates"],
            ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
             'CMD ["python3"]'])


def kafka_standin(podman: Podman) -> None:
    ensure_jars()
    _rootfs(podman, JRE_BASE, ["openjdk-17-jre-headless"], ["ENV LANG=C.UTF-8"])
    with tempfile.TemporaryDirectory(prefix="parley-kafka-context-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(STANDINS / "kafka", context)
        shutil.copytree(LIBS, context / "libs", ignore=shutil.ignore_patterns(".*"))
        _build(podman, KAFKA, context)


def postgres_standin(podman: Podman) -> None:
    _rootfs(podman, DEBIAN_BASE, ["ca-certificates"], ["ENV LANG=C.UTF-8"])
    installed = Path(pgserver.__file__).parent
    with tempfile.TemporaryDirectory(prefix="parley-postgres-context-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(STANDINS / "postgres", context)
        shutil.copytree(installed / "pginstall", context / "pginstall", symlinks=True,
                        ignore=shutil.ignore_patterns("include"))
        shutil.copytree(installed.parent / "pgserver.libs", context / "pgserver.libs")
        _build(podman, POSTGRES, context)


def parley_image(podman: Podman) -> None:
    _build(podman, PARLEY, REPO_ROOT, REPO_ROOT / "deploy" / "Dockerfile")


def build_all(podman: Podman, reuse_standins: bool = False) -> list[Built]:
    """Every image, stand-ins first (the project's image is built FROM the Python one).
    `reuse_standins`: keep stand-ins an earlier run left (PARLEY_KEEP_IMAGES=1)."""
    built = []
    for name, build in ((PYTHON, python_standin), (KAFKA, kafka_standin), (POSTGRES, postgres_standin),
                        (PARLEY, parley_image)):
        started = time.monotonic()
        if reuse_standins and name != PARLEY and podman("image", "exists", name, check=False).returncode == 0:
            say(f"reusing {name}")
        else:
            say(f"building {name} ...")
            build(podman)
        built.append(Built(name, time.monotonic() - started, size(podman, name)))
        say(f"built {name} in {built[-1].seconds:.0f} s, {built[-1].size_bytes / 1e6:.0f} MB")
    return built


def size(podman: Podman, name: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())


def storage_bytes() -> int:
    """What podman's storage holds on disk (images, layers, containers, volumes)."""
    done = subprocess.run(["du", "-sb", "/var/lib/containers"], capture_output=True, text=True)
    return int(done.stdout.split()[0]) if done.returncode == 0 and done.stdout else 0


def remove_all(podman: Podman) -> None:
    """The images this run built, and the build stages they left without a name."""
    for name in ALL:
        podman("rmi", "--force", name, check=False)
    podman("image", "prune", "--force", check=False)
