"""`make run`, as a newcomer types it: it becomes ready (every service's /readyz
answers 200), prints where things are, and Ctrl-C leaves no process behind. Run twice
in the same folder, so the second start (data already there) is covered too."""
import os
import random
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from parley.config import REPO_ROOT, env
from parley.platform.procs import port_is_free
from parley.platform.run import SERVICES

ARTIFACTS = REPO_ROOT / "test-artifacts"


def free_port_block(size: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if all(port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def processes_of(run_dir: Path) -> list[str]:
    """Every live process that belongs to this run: started with the run folder in its
    command line or environment."""
    found = []
    marker = str(run_dir).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {command[:200]}")
    return found


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def login(base: int, email: str, password: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{base}/api/session", method="POST", headers={"Content-Type": "application/json"},
        data=orjson.dumps({"project": "demo", "email": email, "password": password}))
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def make_run_until_ready(run_dir: Path, base: int) -> tuple[subprocess.Popen, float, str]:
    env = {**os.environ, "PARLEY_RUN_DIR": str(run_dir), "PARLEY_PORT_BASE": str(base)}
    started = time.monotonic()
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    deadline = started + 240
    for line in proc.stdout:
        output.append(line)
        if "Press Ctrl-C to stop everything." in line:
            return proc, time.monotonic() - started, "".join(output)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("make run did not become ready:\n" + "".join(output))


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (IPv4, from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def ctrl_c(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    rest, _ = proc.communicate(timeout=90)
    return rest


@pytest.mark.slow
def test_make_run_becomes_ready_and_ctrl_c_leaves_nothing_behind(tmp_path):
    run_dir = tmp_path / "run"
    base = free_port_block(len(SERVICES) + 1)  # and the gateway's internal port
    timings = []
    for attempt in ("first", "second"):
        proc, seconds, output = make_run_until_ready(run_dir, base)
        try:
            timings.append(f"{attempt} run ready in {seconds:.1f} s")
            assert "Gateway:" in output and f"http://localhost:{base}" in output
            assert "Owner login:" in output
            for i, (name, _) in enumerate(SERVICES):
                assert status(f"http://127.0.0.1:{base + i}/readyz") == 200, name
                assert status(f"http://127.0.0.1:{base + i}/healthz") == 200, name
            # only the gateway's public port is open beyond loopback; metrics are internal
            assert listening_addresses(base) == {"0.0.0.0"}
            for port in range(base + 1, base + len(SERVICES) + 1):
                assert listening_addresses(port) == {"127.0.0.1"}, port
            assert status(f"http://127.0.0.1:{base}/metrics") == 404
            assert status(f"http://127.0.0.1:{base + len(SERVICES)}/metrics") == 200
            # and the services behind it answer signed calls only
            assert status(f"http://127.0.0.1:{base + 1}/api/inbox?view=all") == 401
            # the demo project is seeded: the printed owner login works through the gateway
            assert login(base, env("PARLEY_OWNER_EMAIL"), env("PARLEY_OWNER_PASSWORD")) == 201
        finally:
            rest = ctrl_c(proc)
        assert "stopped." in rest, rest
        leftovers = processes_of(run_dir)
        assert leftovers == [], f"processes left after Ctrl-C: {leftovers}"
        assert all(port_is_free(base + i) for i in range(len(SERVICES)))

    for name, _ in SERVICES:  # every service logged structured JSON
        lines = (run_dir / "logs" / f"{name}.log").read_text().splitlines()
        entries = [orjson.loads(line) for line in lines if line.startswith("{")]
        assert entries and all(e["service"] == name for e in entries), name
        assert any(e["msg"] == "stopped" for e in entries), f"{name} did not shut down gracefully"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "make-run-timings.txt").write_text("\n".join(timings) + "\n")
