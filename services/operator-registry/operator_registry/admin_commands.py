"""`python -m parley.admin create-project | list-projects`: the registry's own operations
commands. parley.admin finds them through this service's ServiceSpec (`admin=`), as it
finds every service's migrations, so the backbone never imports a service; it hands the
spec over, which names the schema and migrations.

They run from a shell against the registry's schema (DATABASE_URL), with no HTTP and no
Kafka. The schema is migrated first, as the service does at start-up; the events a
command appends wait in the event store (it is the outbox) until the registry's relay
publishes them, the next time a registry runs."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from parley import db
from parley.config import env, resolve_path
from parley.eventstore import EventStore
from parley.schemas import Catalog
from parley.service import ServiceSpec

from operator_registry import commands, domain, installation


def add_commands(subcommands: argparse._SubParsersAction, spec: ServiceSpec) -> None:
    create = subcommands.add_parser("create-project", help="create a project with its owner, chat enabled")
    create.add_argument("--id", required=True, help="the snippet's data-project: letters, digits, '.', '_', '-'")
    create.add_argument("--name", required=True, help="the project's name")
    create.add_argument("--owner-email", required=True, help="the owner's login")
    create.add_argument("--owner-password", help="asked for (twice) when not given")
    create.add_argument("--owner-name", default="Owner", help="the name visitors see (default: Owner)")
    create.add_argument("--language", default="en", help="the widget's language: en or ru (default: en)")
    create.add_argument("--database-url", default=env("DATABASE_URL"))
    create.set_defaults(run=create_project, spec=spec)
    listing = subcommands.add_parser("list-projects", help="every project: id, name, owner email, created")
    listing.add_argument("--database-url", default=env("DATABASE_URL"))
    listing.set_defaults(run=list_projects, spec=spec)


@asynccontextmanager
async def registry_store(args: argparse.Namespace) -> AsyncIterator[EventStore]:
    spec: ServiceSpec = args.spec
    pool = await db.create_pool(args.database_url, spec.schema, min_size=1, max_size=2)
    try:
        await db.migrate(pool, spec.schema, spec.migrations)
        yield EventStore(pool, Catalog(resolve_path(env("PARLEY_SCHEMAS_DIR")), *spec.extra_schema_dirs))
    finally:
        await pool.close()


async def _create(args: argparse.Namespace, password: str) -> dict:
    async with registry_store(args) as store:
        await commands.open_project(store, args.id, name=args.name, owner_name=args.owner_name,
                                    owner_email=args.owner_email, owner_password=password, language=args.language)
        return next(p for p in await installation.list_projects(store.pool) if p["id"] == args.id)


async def _list(args: argparse.Namespace) -> list[dict]:
    async with registry_store(args) as store:
        return await installation.list_projects(store.pool)


def _database_missing(args: argparse.Namespace) -> bool:
    if args.database_url:
        return False
    print(f"{args.command}: set DATABASE_URL or pass --database-url", file=sys.stderr)
    return True


def create_project(args: argparse.Namespace) -> int:
    if _database_missing(args):
        return 2
    password = args.owner_password
    if password is None:
        password = getpass.getpass("Owner password: ")
        if getpass.getpass("Owner password again: ") != password:
            print("create-project: the two passwords differ; nothing was created.", file=sys.stderr)
            return 1
    try:
        project = asyncio.run(_create(args, password))
    except domain.DomainError as e:
        print(f"create-project refused ({e.code}): {e.message} Nothing was created.", file=sys.stderr)
        return 1
    print(f"created project {project['id']} ({project['name']}), owner {project['owner_email']}, chat enabled.\n"
          f"Log in to the operator app with project {project['id']}; the widget's snippet is under "
          "Settings -> Chat & snippet.")
    return 0


def list_projects(args: argparse.Namespace) -> int:
    if _database_missing(args):
        return 2
    projects = asyncio.run(_list(args))
    rows = [("ID", "NAME", "OWNER EMAIL", "CREATED")] + [
        (p["id"], p["name"], p["owner_email"], p["created"].isoformat(timespec="seconds") if p["created"] else "")
        for p in projects]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    if not projects:
        print("(no project yet: create one with create-project, or open the gateway's /setup page)")
    return 0
