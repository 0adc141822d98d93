"""Operations commands.

  python -m parley.admin create-topics   create the topics declared in schemas/asyncapi.yaml
  python -m parley.admin migrate         migrate every service's schema (DATABASE_URL)
  python -m parley.admin create-project --id acme --name "ACME" --owner-email you@acme.example
                                         a project, chat enabled, you its owner (password asked for)
  python -m parley.admin list-projects   id, name, owner email, created
  python -m parley.admin privacy export --project acme --phone "+7 900 111-22-33" [--output f.json]
  python -m parley.admin privacy erase --project acme --email maria@example.com [--yes]
                                         a person's data: export, or erase for good (issue 20)
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from parley import kafka, migrate_services, privacy_cli
from parley.config import env, resolve_path
from parley.http import Rejected
from parley.schemas import load_topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    topics = commands.add_parser("create-topics", help="create missing topics (idempotent)")
    topics.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP_SERVERS"))
    migrate = commands.add_parser("migrate", help="migrate every service's schema (idempotent)")
    migrate.add_argument("--database-url", default=env("DATABASE_URL"))
    create = commands.add_parser("create-project", help="create a project with its owner, chat enabled")
    create.add_argument("--id", required=True, help="the snippet's data-project: letters, digits, '.', '_', '-'")
    create.add_argument("--name", required=True, help="the project's name")
    create.add_argument("--owner-email", required=True, help="the owner's login")
    create.add_argument("--owner-password", help="asked for (twice) when not given")
    create.add_argument("--owner-name", default="Owner", help="the name visitors see (default: Owner)")
    create.add_argument("--language", default="en", help="the widget's language: en or ru (default: en)")
    create.add_argument("--database-url", default=env("DATABASE_URL"))
    listing = commands.add_parser("list-projects", help="every project: id, name, owner email, created")
    listing.add_argument("--database-url", default=env("DATABASE_URL"))
    privacy_cli.add_arguments(commands)
    args = parser.parse_args(argv)
    if args.command == "privacy":
        try:
            return privacy_cli.run(args)
        except Rejected as e:
            print(f"privacy {args.action} refused ({e.code}): {e.message}", file=sys.stderr)
            return 1
    if args.command in ("create-project", "list-projects"):
        if not args.database_url:
            parser.error("set DATABASE_URL or pass --database-url")
        return create_project(args) if args.command == "create-project" else list_projects(args)
    if args.command == "migrate":
        if not args.database_url:
            parser.error("set DATABASE_URL or pass --database-url")
        applied = asyncio.run(migrate_services.migrate_all(args.database_url))
        for schema, names in applied.items():
            print(f"{schema}: {', '.join(names) if names else 'up to date'}")
        return 0
    if not args.bootstrap:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap")
    declared = load_topics(resolve_path(env("PARLEY_SCHEMAS_DIR")) / "asyncapi.yaml")
    created = asyncio.run(kafka.create_topics(args.bootstrap, declared))
    print(f"topics: {len(declared)} declared, created now: {', '.join(created) or 'none'}")
    return 0


def create_project(args: argparse.Namespace) -> int:
    from operator_registry import domain, projects_admin
    password = args.owner_password
    if password is None:
        password = getpass.getpass("Owner password: ")
        if getpass.getpass("Owner password again: ") != password:
            print("create-project: the two passwords differ; nothing was created.", file=sys.stderr)
            return 1
    try:
        project = asyncio.run(projects_admin.create_project(
            args.database_url, args.id, name=args.name, owner_name=args.owner_name, owner_email=args.owner_email,
            owner_password=password, language=args.language))
    except domain.DomainError as e:
        print(f"create-project refused ({e.code}): {e.message} Nothing was created.", file=sys.stderr)
        return 1
    print(f"created project {project['id']} ({project['name']}), owner {project['owner_email']}, chat enabled.\n"
          f"Log in to the operator app with project {project['id']}; the widget's snippet is under "
          "Settings -> Chat & snippet.")
    return 0


def list_projects(args: argparse.Namespace) -> int:
    from operator_registry import projects_admin
    projects = asyncio.run(projects_admin.list_projects(args.database_url))
    rows = [("ID", "NAME", "OWNER EMAIL", "CREATED")] + [
        (p["id"], p["name"], p["owner_email"], p["created"].isoformat(timespec="seconds") if p["created"] else "")
        for p in projects]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    if not projects:
        print("(no project yet: create one with create-project, or open the gateway's /setup page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
