"""`python -m parley.admin migrate`: every service's schema migrated once, before the
new services start (compose's one-shot `migrate`, the Kubernetes migrations Job).

The services still migrate their own schema at start-up (advisory-locked, idempotent),
so `make run` and a hand-started service need nothing else; this makes an upgrade
happen in one place, once, instead of racing in every new replica. It uses the one
migration runner (parley.db.migrate) and each service's own ServiceSpec, so a schema or
a migrations folder is named in one place only: the service's __main__."""
from __future__ import annotations

import importlib

from parley import db
from parley.service import ServiceSpec
from parley.service_names import SERVICE_PACKAGES


def service_specs() -> list[ServiceSpec]:
    return [importlib.import_module(f"{package}.__main__").SPEC for package in SERVICE_PACKAGES]


async def migrate_all(database_url: str, specs: list[ServiceSpec] | None = None) -> dict[str, list[str]]:
    """Migrate every spec's schema; returns schema -> migrations applied now (empty when
    it was already up to date)."""
    applied: dict[str, list[str]] = {}
    for spec in specs if specs is not None else service_specs():
        pool = await db.create_pool(database_url, spec.schema, min_size=1, max_size=1)
        try:
            applied[spec.schema] = await db.migrate(pool, spec.schema,
                                                    *([spec.migrations] if spec.migrations else []))
        finally:
            await pool.close()
    return applied
