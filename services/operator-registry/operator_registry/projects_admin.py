"""`python -m parley.admin create-project` and `list-projects`: the registry's own
commands and views, run from a shell against its schema (DATABASE_URL), with no HTTP
and no Kafka. The schema is migrated first, as the service does at start-up; the events
a command appends wait in the event store (it is the outbox) until the registry's relay
publishes them, the next time a registry runs."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from parley import db
from parley.config import env, resolve_path
from parley.eventstore import EventStore
from parley.schemas import Catalog

from operator_registry import commands, installation


@asynccontextmanager
async def registry_store(database_url: str) -> AsyncIterator[EventStore]:
    from operator_registry.__main__ import SPEC  # the one place the schema and migrations are named
    pool = await db.create_pool(database_url, SPEC.schema, min_size=1, max_size=2)
    try:
        await db.migrate(pool, SPEC.schema, SPEC.migrations)
        yield EventStore(pool, Catalog(resolve_path(env("PARLEY_SCHEMAS_DIR")), *SPEC.extra_schema_dirs))
    finally:
        await pool.close()


async def create_project(database_url: str, project_id: str, *, name: str, owner_name: str, owner_email: str,
                         owner_password: str, language: str) -> dict[str, Any]:
    """The project, as list_projects shows it. Raises domain.DomainError when refused."""
    async with registry_store(database_url) as store:
        await commands.open_project(store, project_id, name=name, owner_name=owner_name, owner_email=owner_email,
                                    owner_password=owner_password, language=language)
        return next(p for p in await installation.list_projects(store.pool) if p["id"] == project_id)


async def list_projects(database_url: str) -> list[dict[str, Any]]:
    async with registry_store(database_url) as store:
        return await installation.list_projects(store.pool)
