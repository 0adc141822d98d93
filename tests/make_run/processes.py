"""`make run` as a process, for the tests that run it as a newcomer does."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from parley.config import REPO_ROOT

def status(url: str) -> int:
    """The answer's status; 0 when nothing answers (the connection was refused)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:
        return 0


def make_run_until_ready(run_dir: Path, base: int, environ: dict | None = None) -> tuple[subprocess.Popen, float, str]:
    """`make run` in `run_dir` on ports from `base`, once it prints that it is ready;
    `environ` is the shell's (this process's by default)."""
    env = {**(os.environ if environ is None else environ), "PARLEY_RUN_DIR": str(run_dir), "PARLEY_PORT_BASE": str(base)}
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


def ctrl_c(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    rest, _ = proc.communicate(timeout=90)
    return rest
