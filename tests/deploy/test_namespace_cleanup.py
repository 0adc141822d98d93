"""A run killed before it could clean up leaves its network namespace and hosts file
behind; the next run removes them (and never another live run's)."""
import os
import subprocess
from pathlib import Path

from devstack.topology import NS_PREFIX, remove_stale_namespaces


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.split()}


def test_a_crashed_runs_namespace_is_removed_and_a_live_ones_kept():
    dead = f"{NS_PREFIX}{2 ** 22 + 12345}"   # above pid_max's default: no such process
    live = f"{NS_PREFIX}{os.getppid()}"      # pytest's parent: alive while we run
    try:
        for name in (dead, live):
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            Path(f"/etc/netns/{name}").mkdir(parents=True, exist_ok=True)
            Path(f"/etc/netns/{name}/hosts").write_text("127.0.0.10 kafka\n")
        removed = remove_stale_namespaces()
        assert dead in removed and live not in removed
        assert dead not in _namespaces() and not Path(f"/etc/netns/{dead}").exists()
        assert live in _namespaces()
    finally:
        for name in (dead, live):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
            subprocess.run(["rm", "-rf", f"/etc/netns/{name}"])
