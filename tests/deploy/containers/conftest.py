"""One compose stack for the module: the images built, `up` run, torn down at the end
(images too, unless PARLEY_KEEP_IMAGES=1 keeps them for the next run)."""
from __future__ import annotations

import json
import os
import time

import pytest

from parley.config import REPO_ROOT
from devstack.procs import say
from tests.deploy.containers import images
from tests.deploy.containers.compose import COMPOSE_BINARY, Compose, remove_stale
from tests.deploy.containers.podman import Podman, missing_tools

REPORT = REPO_ROOT / "test-artifacts" / "containers"


@pytest.fixture(scope="module")
def podman():
    missing = missing_tools(COMPOSE_BINARY)
    assert not missing, f"missing {', '.join(missing)}: run `make compose-test`, which installs them"
    engine = Podman()
    try:
        remove_stale(engine)
        engine.start()
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def built(podman):
    disk_before = images.storage_bytes()
    keep = os.environ.get("PARLEY_KEEP_IMAGES") == "1"
    try:
        result = images.build_all(podman, reuse_standins=keep)
        disk = images.storage_bytes() - disk_before
        REPORT.mkdir(parents=True, exist_ok=True)
        (REPORT / "images.json").write_text(json.dumps(
            {"images": [vars(b) for b in result], "disk_used_by_build_bytes": disk}, indent=2))
        say(f"images use {disk / 1e9:.1f} GB of disk")
        yield result
    finally:
        if not keep:
            images.remove_all(podman)


@pytest.fixture(scope="module")
def compose(podman, built):
    stack = Compose(podman)
    podman.watch_health(stack.filter)
    try:
        started = time.monotonic()
        say(f"docker compose up (project {stack.project}, gateway on {stack.url}) ...")
        stack.up()
        say(f"every service healthy {time.monotonic() - started:.0f} s after up")
        yield stack
    finally:
        stack.save_logs(REPORT / "logs")
        stack.down()
