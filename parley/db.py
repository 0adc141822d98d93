"""asyncpg pools and the one migration runner.

Each service owns one PostgreSQL schema. Its pool sets `search_path` to that schema,
so SQL in services and in the backbone is written unqualified. Migrations are plain
SQL files applied in name order: first the backbone's own (event store, outbox
progress, consumer tracking), then the service's. A schema's event-store shard count is
written once, by the first migration of that schema (PARLEY_EVENT_SHARDS)."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg
import orjson
from prometheus_client import Counter

from parley.config import env

log = logging.getLogger(__name__)

# Every statement a process sends, so that statements per message can be read from
# /metrics (make bench reports them: batching must make them fall under load).
STATEMENTS = Counter("parley_db_statements_total", "Statements sent to PostgreSQL by this process")

BACKBONE_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use lower-case letters, digits and _")
    return schema


def _server_settings(schema: str) -> dict[str, str]:
    return {"search_path": check_schema_name(schema), "application_name": f"parley-{schema}"}


def _count_statement(_query) -> None:
    STATEMENTS.inc()


async def _init_connection(conn: asyncpg.Connection) -> None:
    conn.add_query_logger(_count_statement)
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(typ, schema="pg_catalog", format="text",
                                  encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without a reset query. asyncpg's default sends `pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL` on every release - a round trip per acquire, about
    a tenth of the conversation service's CPU per message (issue 12, py-spy). Pool
    connections never keep session state: locks are transaction-scoped (`_xact_`), the
    one session lock (migrate) is released in a `finally`, LISTEN and `pg_try_advisory_lock`
    use their own connections (db.connect), and settings are `set local`. asyncpg still
    rolls back a transaction left open before calling this."""


async def create_pool(database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(database_url, min_size=min_size, max_size=max_size, reset=_keep_session,
                                     init=_init_connection, server_settings=_server_settings(schema))


async def connect(database_url: str, schema: str, *, durable_commits: bool = True) -> asyncpg.Connection:
    """A single connection, set up like the pool's (for LISTEN and session locks).
    `durable_commits=False`: its commits do not wait for the WAL flush - only for writes
    whose loss in a database crash is harmless (PostgreSQL loses at most the last few,
    never part of one, and a later durable commit flushes them too)."""
    settings = _server_settings(schema) | ({} if durable_commits else {"synchronous_commit": "off"})
    conn = await asyncpg.connect(database_url, server_settings=settings)
    await _init_connection(conn)
    return conn


MAX_EVENT_SHARDS = 256


def event_shards_setting() -> int:
    value = env("PARLEY_EVENT_SHARDS")
    if not value.isdigit() or not 1 <= int(value) <= MAX_EVENT_SHARDS:
        raise SystemExit(f"PARLEY_EVENT_SHARDS must be a whole number from 1 to {MAX_EVENT_SHARDS}, not {value!r}")
    return int(value)


async def migrate(pool: asyncpg.Pool, schema: str, *dirs: Path, event_shards: int | None = None) -> list[str]:
    """Apply every not-yet-applied .sql file from the backbone and `dirs`, each in its
    own transaction. Safe to run from many replicas at once (advisory lock). A schema
    migrated for the first time gets `event_shards` shards (default PARLEY_EVENT_SHARDS);
    an existing one keeps the count it has."""
    check_schema_name(schema)
    wanted_shards = event_shards if event_shards is not None else event_shards_setting()
    files = sorted(BACKBONE_MIGRATIONS.glob("*.sql")) + [f for d in dirs for f in sorted(Path(d).glob("*.sql"))]
    applied_now = []
    async with pool.acquire() as conn:
        await conn.execute(f"create schema if not exists {schema}")
        await conn.execute("select pg_advisory_lock(hashtext('parley_migrate:' || $1))", schema)
        try:
            await conn.execute(f"""create table if not exists {schema}.schema_migrations (
                name text primary key, applied_at timestamptz not null default now())""")
            done = {r["name"] for r in await conn.fetch(f"select name from {schema}.schema_migrations")}
            for path in files:
                name = f"{'backbone' if path.parent == BACKBONE_MIGRATIONS else 'service'}/{path.name}"
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"set local search_path to {schema}")
                    await conn.execute(path.read_text())
                    await conn.execute(f"insert into {schema}.schema_migrations(name) values ($1)", name)
                applied_now.append(name)
                log.info("migration applied", extra={"schema": schema, "migration": name})
            await conn.execute(f"""insert into {schema}.event_shards (shard) select generate_series(0, $1 - 1)
                                   where not exists (select 1 from {schema}.event_shards)""", wanted_shards)
            shards = await conn.fetchval(f"select count(*) from {schema}.event_shards")
            if shards != wanted_shards:
                log.warning("the event store keeps the shard count it was created with",
                            extra={"schema": schema, "shards": shards, "PARLEY_EVENT_SHARDS": wanted_shards})
        finally:
            await conn.execute("select pg_advisory_unlock(hashtext('parley_migrate:' || $1))", schema)
    return applied_now
