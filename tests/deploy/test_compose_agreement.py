"""The production topology test starts nothing when compose and the code disagree; these
check that each kind of disagreement is caught, with a message naming the service, the
variable and what is wrong, on copies of deploy/compose.yaml with one thing broken.
No processes: they read files only."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack import compose_plan
from devstack.compose_plan import ComposeError, interpolate
from devstack.topology import env_file_with_fresh_secrets

ENV_FILE = env_file_with_fresh_secrets()


def _variant(tmp_path: Path, change) -> compose_plan.ComposePlan:
    """deploy/compose.yaml with `change(services)` applied (anchors already resolved)."""
    raw = yaml.safe_load(compose_plan.COMPOSE_FILE.read_text())
    for service in raw["services"].values():  # an anchor's mapping is one object shared by its users
        if isinstance(service.get("environment"), dict):
            service["environment"] = dict(service["environment"])
    change(raw["services"])
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(raw))
    return compose_plan.load(ENV_FILE, path)


def test_deploy_compose_agrees_with_the_code():
    plan = compose_plan.load(ENV_FILE)
    assert compose_plan.problems(plan) == []
    assert plan.kafka and plan.postgres
    assert {"gateway", "conversation", "operator-registry", "crm-bridge", "scheduler"} <= {
        s.name for s in plan.long_running()}
    assert plan.one_shots(), "compose runs migrations and topics once, before the services"
    raw = yaml.safe_load(compose_plan.COMPOSE_FILE.read_text())
    profiled = {name for name, s in raw["services"].items() if s.get("profiles")}
    assert profiled and not profiled & set(plan.parley), "a service under a profile is not started by a plain `up`"


def _set(service: str, name: str, value: str):
    def change(services):
        services[service]["environment"][name] = value
    return change


def _unset(service: str, name: str):
    def change(services):
        del services[service]["environment"][name]
    return change


@pytest.mark.parametrize("change,expected", [
    (_set("conversation", "PARLEY_CONVERSATON_URL", "http://conversation:8081"),
     "compose sets PARLEY_CONVERSATON_URL for conversation, but parley/config.py VARIABLES does not know it"),
    (_unset("gateway", "PARLEY_VISITOR_SECRET"), "compose does not set PARLEY_VISITOR_SECRET for gateway"),
    (_unset("scheduler", "PARLEY_CONVERSATION_URL"), "compose does not set PARLEY_CONVERSATION_URL for scheduler"),
    (_set("gateway", "PARLEY_CRM_BRIDGE_URL", "http://crm_bridge:8083"),
     "gateway: PARLEY_CRM_BRIDGE_URL=http://crm_bridge:8083 points at host 'crm_bridge', which compose does not define"),
    (_set("gateway", "PARLEY_SCHEDULER_URL", "http://scheduler:8083"),
     "gateway: PARLEY_SCHEDULER_URL=http://scheduler:8083 uses port 8083, but scheduler listens on PARLEY_HTTP_PORT=8084"),
    (_set("conversation", "PARLEY_HTTP_PORT", "9081"),
     "gateway: PARLEY_CONVERSATION_URL=http://conversation:8081 uses port 8081, but conversation listens on "
     "PARLEY_HTTP_PORT=9081"),
    (_set("crm-bridge", "KAFKA_BOOTSTRAP_SERVERS", "broker:9092"),
     "crm-bridge: KAFKA_BOOTSTRAP_SERVERS=broker:9092 names host 'broker', which compose does not define"),
    (_set("crm-bridge", "KAFKA_BOOTSTRAP_SERVERS", "kafka:9093"),
     "crm-bridge: KAFKA_BOOTSTRAP_SERVERS=kafka:9093: kafka:9093 is not a listener kafka advertises"),
    (_set("operator-registry", "DATABASE_URL", "postgresql://parley:x@db:5432/parley"),
     "operator-registry: DATABASE_URL=postgresql://parley:x@db:5432/parley points at host 'db'"),
])
def test_each_disagreement_is_named(tmp_path, change, expected):
    found = compose_plan.problems(_variant(tmp_path, change))
    assert any(p.startswith(expected) for p in found), found


def test_a_missing_secret_stops_with_compose_s_own_message():
    with pytest.raises(ComposeError, match="PARLEY_INTERNAL_SECRET"):
        compose_plan.load({k: v for k, v in ENV_FILE.items() if k != "PARLEY_INTERNAL_SECRET"})


@pytest.mark.parametrize("text,env,expected", [
    ("${A}", {"A": "1"}, "1"),
    ("$A/x", {"A": "1"}, "1/x"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:-${B:-deep}}", {}, "deep"),
    ("cost $$5", {}, "cost $5"),
    ("${A:?needed}", {"A": "ok"}, "ok"),
])
def test_interpolation_follows_compose(text, env, expected):
    assert interpolate(text, env) == expected


@pytest.mark.parametrize("text,env", [("${A:?set A}", {"A": ""}), ("${A?set A}", {})])
def test_required_variables_stop(text, env):
    with pytest.raises(ComposeError, match="set A"):
        interpolate(text, env)
