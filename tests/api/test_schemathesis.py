"""Schemathesis over the gateway's published `/api/openapi.json`: generated requests,
valid and invalid, to every documented operation. Whatever is sent, the answer is
never a 5xx, and it is documented - its status code, its content type, and for JSON
its schema (errors are `{"error": {"code", "message"}}`).

The services run as real processes (operator-registry, conversation, crm-bridge, gateway) on the
session's Kafka and on a PostgreSQL database of their own: schemathesis calls them
synchronously, which an in-process aiohttp server in this thread could not answer.
Examples are few per operation and derandomized, so the run is short and repeatable."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance, unsupported_method)

from parley.config import REPO_ROOT, env
from devstack.procs import free_port, spawn, stop
from tests.support import create_database, drop_database

MAX_EXAMPLES = 20           # per operation, in the fuzzing phase
ANONYMOUS_MAX_EXAMPLES = 5  # the same operations without credentials
SEED = 20_260_508
# No 5xx; the status, content type and body as documented; an undocumented method is a 405 with Allow.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          unsupported_method]
SERVICES = ("operator_registry", "conversation", "crm_bridge", "scheduler", "gateway")


@dataclass
class Gateway:
    base_url: str
    token: str
    logs: Path


def _wait_ready(name: str, port: int, proc, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} died at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{name} never became ready:\n{log.read_text()[-3000:]}")


def _login(base_url: str) -> str:
    body = json.dumps({"project": "demo", "email": env("PARLEY_OWNER_EMAIL"),
                       "password": env("PARLEY_OWNER_PASSWORD")}).encode()
    request = urllib.request.Request(f"{base_url}/api/session", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 201
        return json.loads(r.read())["token"]


@pytest.fixture(scope="module")
def gateway(platform, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    database_url = asyncio.run(create_database(platform.database_url, "api"))
    ports = {name: free_port() for name in SERVICES}
    common = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": platform.bootstrap,
              "PARLEY_BIND_HOST": "127.0.0.1", "PARLEY_LOG_LEVEL": "INFO"}
    extra = {"gateway": {
        "PARLEY_PUBLIC_BIND_HOST": "127.0.0.1",
        "PARLEY_INTERNAL_PORT": str(free_port()),
        # reached by host name, as compose and k8s do
        "PARLEY_OPERATOR_REGISTRY_URL": f"http://localhost:{ports['operator_registry']}",
        "PARLEY_CONVERSATION_URL": f"http://localhost:{ports['conversation']}",
        "PARLEY_CRM_BRIDGE_URL": f"http://localhost:{ports['crm_bridge']}",
        "PARLEY_SCHEDULER_URL": f"http://localhost:{ports['scheduler']}",
        "PARLEY_VISITOR_SECRET": "schemathesis-visitor-secret-" + "v" * 32,
    }, "scheduler": {"PARLEY_CONVERSATION_URL": f"http://localhost:{ports['conversation']}"}}
    procs = []
    try:
        # All five start at once and then each is waited for (readiness is PostgreSQL and
        # Kafka, not the other services): one after the other took five start-ups in a row.
        for name in SERVICES:
            procs.append(spawn([sys.executable, "-m", name], log_path=tmp / f"{name}.log", cwd=REPO_ROOT,
                               env={**common, "PARLEY_HTTP_PORT": str(ports[name]), **extra.get(name, {})}))
        for name, proc in zip(SERVICES, procs):
            _wait_ready(name, ports[name], proc, tmp / f"{name}.log")
        base_url = f"http://127.0.0.1:{ports['gateway']}"
        yield Gateway(base_url, _login(base_url), tmp)
    finally:
        for proc in reversed(procs):
            stop(proc)
        asyncio.run(drop_database(platform.database_url, database_url))


def _config(max_examples: int, with_security_parameters: bool):
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "suppress-health-check": ["too_slow", "filter_too_much"],
        "request-timeout": 20,
        "output": {"sanitization": {"enabled": False}},  # a failure shows the exact input (test credentials only)
        "generation": {
            "mode": "all",                       # valid and invalid input alike
            "max-examples": max_examples,
            "deterministic": True,
            "database": "none",
            "with-security-parameters": with_security_parameters,
        },
        "phases": {"stateful": {"enabled": False}},
    })


OPENAPI = REPO_ROOT / "services/gateway/gateway/openapi.yaml"
# Loaded from the file the gateway serves as /api/openapi.json (the first test checks
# that they are the same document); the services start only when the tests run.
# Logging out would end the token the rest of the run uses; requiring two-factor login
# would leave that session only the enrolment routes (tests/registry/test_two_factor.py).
operator_schema = schemathesis.openapi.from_path(OPENAPI, config=_config(MAX_EXAMPLES, False)).exclude(
    method="DELETE", path="/api/session").exclude(method="PUT", path="/api/project/two-factor")
anonymous_schema = schemathesis.openapi.from_path(OPENAPI, config=_config(ANONYMOUS_MAX_EXAMPLES, True))


def test_the_gateway_serves_the_document_under_test(gateway):
    with urllib.request.urlopen(f"{gateway.base_url}/api/openapi.json", timeout=10) as r:
        assert json.loads(r.read()) == yaml.safe_load(OPENAPI.read_text())


def _call_and_validate(case, gateway: Gateway, headers: dict[str, str] | None = None) -> None:
    try:
        case.call_and_validate(base_url=gateway.base_url, headers=headers, checks=CHECKS)
    except BaseException as e:
        e.add_note(f"The services' logs (tracebacks of any 5xx): {gateway.logs}")
        raise


@operator_schema.parametrize()
def test_the_api_as_the_owner_answers_as_documented(case, gateway):
    """As the demo project's owner, by bearer token (no cookie, so no CSRF rules)."""
    _call_and_validate(case, gateway, {"Authorization": f"Bearer {gateway.token}"})


@anonymous_schema.parametrize()
def test_the_api_without_a_session_answers_as_documented(case, gateway):
    """Without credentials, or with whatever credentials schemathesis makes up."""
    _call_and_validate(case, gateway)
