"""The five Parley services, in one place: the name each goes by (its host name in
compose and Kubernetes, its log file, its Deployment) and the Python package that
`python -m` runs. `make run` gives them consecutive ports in this order."""
from __future__ import annotations

SERVICES: tuple[tuple[str, str], ...] = (
    ("gateway", "gateway"),
    ("conversation", "conversation"),
    ("operator-registry", "operator_registry"),
    ("crm-bridge", "crm_bridge"),
    ("scheduler", "scheduler"),
)
SERVICE_NAMES: tuple[str, ...] = tuple(name for name, _ in SERVICES)
SERVICE_PACKAGES: tuple[str, ...] = tuple(package for _, package in SERVICES)
