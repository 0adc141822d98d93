"""compose and k8s give every service what the trust boundary needs: the shared
internal secret, an address to listen on, and (k8s) NetworkPolicies that let only the
gateway reach the services."""
from pathlib import Path

import yaml

from parley.config import REPO_ROOT
from parley.service_names import SERVICE_NAMES

DEPLOY = REPO_ROOT / "deploy"
SERVICES = list(SERVICE_NAMES)


def test_compose_gives_every_service_the_internal_secret_and_a_bind_address():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name in SERVICES:
        env = compose["services"][name]["environment"]
        assert env["PARLEY_INTERNAL_SECRET"].startswith("${PARLEY_INTERNAL_SECRET:?"), name  # required, no default
        assert env["PARLEY_BIND_HOST"] == "0.0.0.0", name
    gateway = compose["services"]["gateway"]
    assert gateway["ports"] == ["${PARLEY_HTTP_PORT:-8080}:8080"]  # the internal port is not published
    assert gateway["environment"]["PARLEY_INTERNAL_PORT"] == "8085"


def _docs(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_k8s_deployments_get_the_secret_and_only_the_gateway_reaches_the_services():
    k8s = DEPLOY / "k8s" / "base"
    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    assert "network-policies.yaml" in kustomization["resources"]
    for name in SERVICES:
        deployment = next(d for d in _docs(k8s / f"{name}.yaml") if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        secret = next(e for e in container["env"] if e["name"] == "PARLEY_INTERNAL_SECRET")
        assert secret["valueFrom"]["secretKeyRef"] == {"name": "parley-secrets", "key": "PARLEY_INTERNAL_SECRET"}
    config = next(d for d in _docs(k8s / "config.yaml"))
    assert config["data"]["PARLEY_BIND_HOST"] == "0.0.0.0"
    policies = {d["metadata"]["name"]: d for d in _docs(k8s / "network-policies.yaml")}
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    inner = policies["services-from-gateway-only"]["spec"]
    assert set(inner["podSelector"]["matchExpressions"][0]["values"]) == set(SERVICES) - {"gateway"}
    assert inner["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]
    overlay = DEPLOY / "k8s" / "overlays" / "production"
    secret_keys = {line.split("=", 1)[0] for line in (overlay / "secrets.env.example").read_text().splitlines()
                   if line and not line.startswith("#")}
    assert "PARLEY_INTERNAL_SECRET" in secret_keys
    generators = yaml.safe_load((overlay / "kustomization.yaml").read_text())["secretGenerator"]
    assert {"name": "parley-secrets", "envs": ["secrets.env"]} in generators
    assert "deploy/k8s/overlays/production/secrets.env" in (REPO_ROOT / ".gitignore").read_text().splitlines()
