"""Offline checks of deploy/: no container engine is needed, and each check fails when
the thing it guards breaks. compose.yaml against the Compose specification's JSON Schema;
the kustomize base and overlay built and validated against the Kubernetes schemas
(kubernetes-validate) and CloudNativePG's CRD; the alert rules by promtool; every metric
named in rules and dashboard exists in the code; every variable a deployment needs is
set in compose and k8s, and nothing set there or declared in parley/config.py is unused;
the Strimzi topics equal schemas/asyncapi.yaml."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from parley.config import LOCAL_ONLY_VARIABLES, REPO_ROOT, VARIABLES
from parley.schemas import load_topics
from parley.service_names import SERVICE_NAMES

DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
OBSERVABILITY = DEPLOY / "observability"
SCHEMAS = Path(__file__).parent / "schemas"
KUBERNETES_VERSION = "1.32"
PARLEY_SERVICES = list(SERVICE_NAMES)
# Set by the image (deploy/Dockerfile ENV), not by compose or k8s.
SET_BY_IMAGE = {"PARLEY_SCHEMAS_DIR", "PARLEY_WEB_DIR"}
CODE_DIRS = [REPO_ROOT / "parley", REPO_ROOT / "services"]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def kustomize_command() -> list[str]:
    """kubectl's built-in kustomize, or the pinned one `make kustomize` installs."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    local = REPO_ROOT / ".venv" / "bin" / "kustomize"
    if local.exists():
        return [str(local), "build"]
    pytest.fail("neither kubectl nor .venv/bin/kustomize: run `make kustomize`")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, list[dict]]:
    """base and overlays/production built, the overlay with its example secrets.env (a
    copy of deploy/k8s, so nothing is written into the repository)."""
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, tree)
    overlay = tree / "overlays" / "production"
    shutil.copy(overlay / "secrets.env.example", overlay / "secrets.env")
    out = {}
    for name, path in (("base", tree / "base"), ("production", overlay)):
        result = subprocess.run([*kustomize_command(), str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kustomize {name}: {result.stderr}"
        out[name] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


# (a) compose

def test_compose_matches_the_compose_specification():
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    jsonschema.validate(compose(), schema)


def test_compose_services_have_health_checks_commands_and_the_required_secrets():
    services = compose()["services"]
    for name in PARLEY_SERVICES:
        service = services[name]
        assert service["command"][:2] == ["python", "-m"], name
        assert "test" in service["healthcheck"], name
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "PARLEY_SEED_DEMO" not in service["environment"] and "PARLEY_OWNER_EMAIL" not in service["environment"]
    assert services["migrate"]["command"][-1].endswith("python -m parley.admin create-topics")
    assert "python -m parley.admin migrate" in services["migrate"]["command"][-1]
    assert services["crm-standin"]["profiles"] == ["demo"]
    secrets = {"PARLEY_INTERNAL_SECRET", "PARLEY_VISITOR_SECRET", "POSTGRES_PASSWORD"}
    text = (DEPLOY / "compose.yaml").read_text()
    for secret in secrets:
        assert re.search(r"\$\{" + secret + r":\?[^}]+\}", text), f"{secret} is not required with a message"
    example = (DEPLOY / ".env.example").read_text()
    assert all(f"\n{s}=" in example for s in secrets)
    assert "deploy/.env" in (REPO_ROOT / ".gitignore").read_text().splitlines()


# (b) Kubernetes

def test_k8s_base_and_overlay_are_valid_kubernetes(built):
    crds = {("postgresql.cnpg.io/v1", "Cluster"): _crd_schema(SCHEMAS / "postgresql.cnpg.io_clusters.yaml", "v1")}
    checked = 0
    for name, docs in built.items():
        for doc in docs:
            key = (doc["apiVersion"], doc["kind"])
            if key in crds:
                jsonschema.validate(doc, crds[key])
            elif doc["apiVersion"].startswith("kafka.strimzi.io/"):
                continue  # no CRD schema offline (tests/deploy/schemas/README.md); topics checked below
            else:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            checked += 1
    assert checked > 40


def _crd_schema(path: Path, version: str) -> dict:
    crd = yaml.safe_load(path.read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


def test_k8s_workloads_are_probed_limited_and_unprivileged(built):
    docs = built["production"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == set(PARLEY_SERVICES)
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert c["resources"]["requests"] and c["resources"]["limits"], name
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"], name
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("PodDisruptionBudget", n) for n in PARLEY_SERVICES} <= kinds
    assert {("HorizontalPodAutoscaler", "gateway"), ("HorizontalPodAutoscaler", "conversation"),
            ("Job", "parley-migrate")} <= kinds
    for hpa in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):   # each scales a Deployment that exists
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, hpa["metadata"]["name"]
        assert 2 <= hpa["spec"]["minReplicas"] <= deployments[target["name"]]["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert secret["metadata"]["name"].startswith("parley-secrets")


# (c) alert rules

def test_promtool_checks_the_alert_rules():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make system-packages` (Debian's prometheus package)"
    result = subprocess.run([promtool, "check", "rules", str(OBSERVABILITY / "alerts.yml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


# (d) metrics

def metrics_in_code() -> set[str]:
    """Every Counter, Gauge, Histogram and Summary the code registers, with the series
    names Prometheus sees."""
    found = set()
    pattern = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    for d in CODE_DIRS:
        for path in d.rglob("*.py"):
            for kind, name in pattern.findall(path.read_text()):
                found.add(name)
                if kind in ("Histogram", "Summary"):
                    found |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return found


def metrics_named(text: str) -> set[str]:
    return set(re.findall(r"\bparley_[a-z0-9_]+", text))


def test_every_metric_in_the_rules_and_dashboard_exists_in_the_code():
    code = metrics_in_code()
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= metrics_named(rule["expr"])
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used |= metrics_named("\n".join(exprs))
    assert len(used) > 10
    assert used <= code, f"not exposed by any service: {sorted(used - code)}"


# (e) environment variables

def _compose_env() -> dict[str, dict]:
    return {n: compose()["services"][n]["environment"] for n in PARLEY_SERVICES + ["migrate"]}


def _k8s_env(docs: list[dict]) -> set[str]:
    names = set()
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "parley-config")
    names |= set(config["data"])
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                names |= {e["name"] for e in c.get("env", [])}
    return names


def _read_in_code(name: str) -> bool:
    """Named somewhere besides its own line in VARIABLES (parley/config.py reads a few itself)."""
    quoted = f'"{name}"'
    return sum(p.read_text().count(quoted) for d in CODE_DIRS for p in d.rglob("*.py")) >= 2


def test_every_declared_variable_is_read_and_every_deployment_one_is_set():
    assert LOCAL_ONLY_VARIABLES <= set(VARIABLES)
    unread = [n for n in VARIABLES if not _read_in_code(n)]
    assert not unread, f"declared in parley/config.py but read nowhere: {unread}"
    needed = set(VARIABLES) - LOCAL_ONLY_VARIABLES - SET_BY_IMAGE
    in_compose = set().union(*(set(e) for e in _compose_env().values()))
    assert needed <= in_compose, f"missing from compose.yaml: {sorted(needed - in_compose)}"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert all(f"{n}=" in dockerfile for n in SET_BY_IMAGE)


def test_k8s_sets_every_deployment_variable_and_nothing_undeclared(built):
    needed = set(VARIABLES) - LOCAL_ONLY_VARIABLES - SET_BY_IMAGE
    in_k8s = _k8s_env(built["production"])
    assert needed - {"PARLEY_CRM_ALLOW_PRIVATE"} <= in_k8s, f"missing from k8s: {sorted(needed - in_k8s)}"
    assert in_k8s <= set(VARIABLES), f"set in k8s, unknown to parley/config.py: {sorted(in_k8s - set(VARIABLES))}"
    assert not in_k8s & LOCAL_ONLY_VARIABLES, "k8s sets a make-run/test-only variable"


def test_crm_bridge_knows_the_public_url_its_lead_links_point_at(built):
    """Issue 19: a lead's link to its conversation pointed at localhost:8080 because only the
    gateway knew PARLEY_PUBLIC_URL; crm-bridge builds the link, so it must know it too."""
    compose_env = _compose_env()
    assert "PARLEY_PUBLIC_URL" in compose_env["crm-bridge"]
    assert compose_env["crm-bridge"]["PARLEY_PUBLIC_URL"] == compose_env["gateway"]["PARLEY_PUBLIC_URL"]
    docs = built["production"]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "parley-config")
    assert config["data"]["PARLEY_PUBLIC_URL"].startswith("https://")
    [bridge] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "crm-bridge"]
    sources = [src.get("configMapRef", {}).get("name") for c in bridge["spec"]["template"]["spec"]["containers"]
               for src in c.get("envFrom", [])]
    assert "parley-config" in sources


def test_compose_sets_nothing_undeclared():
    for service, env in _compose_env().items():
        unknown = set(env) - set(VARIABLES)
        assert not unknown, f"{service} sets variables parley/config.py does not declare: {sorted(unknown)}"
        assert not set(env) & (LOCAL_ONLY_VARIABLES - {"PARLEY_CRM_ALLOW_PRIVATE"}), service


# (f) topics

def test_the_strimzi_topics_equal_asyncapi(built):
    declared = {t.name: (t.partitions, t.replicas, t.config)
                for t in load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml")}
    strimzi = {d["metadata"]["name"]: (d["spec"]["partitions"], d["spec"]["replicas"],
                                       {k: str(v) for k, v in d["spec"].get("config", {}).items()})
               for d in built["production"] if d["kind"] == "KafkaTopic"}
    assert strimzi == declared
    kafka = next(d for d in built["production"] if d["kind"] == "Kafka")
    pool = next(d for d in built["production"] if d["kind"] == "KafkaNodePool")
    assert pool["spec"]["replicas"] >= max(r for _, r, _ in declared.values()), "fewer brokers than replicas"
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
