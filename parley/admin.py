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
    privacy_cli.add_arguments(commands)
    for spec in migrate_services.service_specs():   # a service's own commands (create-project, ...)
        if spec.admin:
            spec.admin(commands, spec)
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        return args.run(args)
    if args.command == "privacy":
        try:
            return privacy_cli.run(args)
        except Rejected as e:
            print(f"privacy {args.action} refused ({e.code}): {e.message}", file=sys.stderr)
            return 1
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


if __name__ == "__main__":
    sys.exit(main())
