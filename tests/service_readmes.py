"""Each service README's route table, written from the routes the service's code
registers (its ServiceSpec), and the check that the two agree (tests/deploy/
test_service_readmes.py), as docs/configuration.md is kept by parley/config.py.

    .venv/bin/python -m tests.service_readmes     # rewrite the tables after a route changes

The table sits between two markers in `services/<name>/README.md`; the prose around it
says what the routes do."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from aiohttp import web

from parley import call_batches
from parley.config import REPO_ROOT
from parley.service import ServiceSpec

SERVICES = {"gateway": "gateway", "conversation": "conversation", "operator-registry": "operator_registry",
            "crm-bridge": "crm_bridge", "scheduler": "scheduler"}
BEGIN = "<!-- routes: written by `python -m tests.service_readmes` from the code; a test keeps them equal -->"
END = "<!-- /routes -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
# What every service answers (parley.service), not this service's own.
_COMMON = {"/healthz", "/readyz", "/metrics", call_batches.BATCH_PATH}


def readme(folder: str) -> Path:
    return REPO_ROOT / "services" / folder / "README.md"


def spec_of(folder: str) -> ServiceSpec:
    return importlib.import_module(f"{SERVICES[folder]}.__main__").SPEC


def routes_of(spec: ServiceSpec) -> list[tuple[str, str]]:
    """(method, path) of every route the service's own code registers, in order."""
    app = web.Application()
    call_batches.setup(app)
    spec.routes(app)
    found: list[tuple[str, str]] = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else None
        if route.method != "HEAD" and path not in _COMMON and (route.method, path) not in found:
            found.append((route.method, path + ("/{file}" if path.endswith("/static") else "")))
    return found


def table(routes: list[tuple[str, str]]) -> str:
    rows = [BEGIN, "", "| method | path |", "|---|---|"]
    rows += [f"| {method} | `{path}` |" for method, path in routes]
    return "\n".join(rows + ["", END])


def written(folder: str) -> str | None:
    """The table in the README now, or None if it has none."""
    found = _BLOCK.search(readme(folder).read_text())
    return found.group(0) if found else None


def main() -> int:
    for folder in SERVICES:
        text = readme(folder).read_text()
        routes = routes_of(spec_of(folder))
        block = table(routes)
        if _BLOCK.search(text):
            text = _BLOCK.sub(lambda _: block, text)
        else:
            text = text.rstrip() + "\n\n## Routes\n\n" + block + "\n"
        readme(folder).write_text(text)
        print(f"{readme(folder).relative_to(REPO_ROOT)}: {len(routes)} routes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
