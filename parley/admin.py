"""Operations commands.

  python -m parley.admin create-topics   create the topics declared in schemas/asyncapi.yaml
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from parley import kafka
from parley.config import env, resolve_path
from parley.schemas import load_topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    topics = commands.add_parser("create-topics", help="create missing topics (idempotent)")
    topics.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap")
    declared = load_topics(resolve_path(env("PARLEY_SCHEMAS_DIR")) / "asyncapi.yaml")
    created = asyncio.run(kafka.create_topics(args.bootstrap, declared))
    print(f"topics: {len(declared)} declared, created now: {', '.join(created) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
