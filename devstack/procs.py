"""Child processes that cannot outlive their parent, and small waiting helpers."""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Callable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If whoever started us is killed (even with SIGKILL), the kernel sends us SIGTERM:
    # no stray broker or service survives an interrupted run.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: list[str], *, log_path, env: dict[str, str] | None = None, cwd=None) -> subprocess.Popen:
    log = open(log_path, "ab")
    try:
        # A session of its own: Ctrl-C reaches only the parent, which then stops its
        # children in order (services, then the broker, then the database).
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, preexec_fn=_die_with_parent, start_new_session=True)
    finally:
        log.close()


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not finished within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Free for a server to listen on (servers set SO_REUSEADDR, so TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def say(message: str) -> None:
    print(f"[parley] {message}", file=sys.stderr, flush=True)


def answers_200(url: str) -> bool:
    """A readiness probe for wait_until: the URL answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


def wait_until(what: str, ready: Callable[[], bool], *, timeout: float, alive: Callable[[], bool] = lambda: True,
               every: float = 5) -> None:
    """Poll `ready` until true, printing progress every `every` seconds; fail clearly on timeout
    or when `alive` says the process we wait for has died."""
    started = time.monotonic()
    next_note = started + every
    while not ready():
        if not alive():
            raise RuntimeError(f"{what}: the process exited while starting")
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")
        if now >= next_note:
            say(f"still waiting for {what} ({now - started:.0f} s)")
            next_note = now + every
        time.sleep(0.2)
    say(f"{what} ready in {time.monotonic() - started:.1f} s")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
