"""The suite beside a `make run` on the default ports, as a developer runs them: the
README promises they do not disturb each other. Before issue 22 a test stack sent its
client-card call to `make run`'s crm-bridge on :8083 (its default upstream), got 401 for
a signature of another installation, and five browser tests hung in a re-rendering app.

`make run` is started here on the default ports (PARLEY_PORT_BASE 8080) with none of the
suite's settings, so its internal secret is its own, as on a developer's machine; when
the default ports already answer as a `make run` (a developer's own), that one is used
and left running. The part of the suite that talks to upstreams - the client card,
the operator app in Chromium with its CRM journey - then runs as its own pytest process,
and must pass, while `make run`'s services answer no foreign (401) call."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from parley.config import REPO_ROOT
from devstack.procs import port_is_free
from devstack.run import SERVICES, STANDIN_OFFSET
from tests.make_run.processes import ctrl_c, make_run_until_ready, status

DEFAULT_BASE = 8080
# The tests that reached `make run` before: every upstream call the gateway makes in a
# journey (client card, CRM settings, lead), in the API and in the browser.
BESIDE = ["tests/crm_bridge/test_client_card.py", "tests/web/test_crm_journey.py",
          "tests/web/test_operator_app.py"]


def refused_calls() -> dict[str, float]:
    """401 answers counted so far by each of `make run`'s services (its /metrics; the
    gateway's are on its internal port)."""
    counts = {}
    for i, (name, _) in enumerate(SERVICES):
        port = DEFAULT_BASE + (len(SERVICES) if name == "gateway" else i)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            families = text_string_to_metric_families(r.read().decode())
        counts[name] = sum(sample.value for family in families if family.name == "parley_http_requests"
                           for sample in family.samples
                           if sample.name == "parley_http_requests_total" and sample.labels["status"] == "401")
    return counts


@pytest.fixture(scope="module")
def make_run_on_default_ports(tmp_path_factory):
    ports = range(DEFAULT_BASE, DEFAULT_BASE + STANDIN_OFFSET + 1)
    if status(f"http://127.0.0.1:{DEFAULT_BASE}/readyz") == 200:
        yield "already running"          # a developer's own: used, never stopped
        return
    busy = [p for p in ports if not port_is_free(p)]
    assert not busy, f"ports {busy} are taken by something that is not `make run`; free them to run this test"
    run_dir = tmp_path_factory.mktemp("beside") / "run"
    # The developer's environment, not the suite's: no shared secret, no unreachable upstreams.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    proc, _, _ = make_run_until_ready(run_dir, DEFAULT_BASE, environ=clean)
    try:
        yield "started"
    finally:
        assert "stopped." in ctrl_c(proc)


@pytest.mark.slow
def test_the_suite_passes_beside_make_run_and_never_calls_it(make_run_on_default_ports, tmp_path):
    before = refused_calls()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                          *BESIDE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTEST_ADDOPTS": ""})
    tail = (run.stdout + run.stderr)[-6000:]
    assert run.returncode == 0, f"the suite failed beside `make run`:\n{tail}"
    assert re.search(r"\d+ passed", run.stdout), tail
    assert refused_calls() == before, "a test stack called `make run`'s services (they refused its signature)"
    assert status(f"http://127.0.0.1:{DEFAULT_BASE}/readyz") == 200   # and `make run` is still up
