"""`python -m parley.admin privacy export|erase|migrate`: a data subject's export and
erasure from the command line (issue 20), for an operations engineer with the services'
environment (compose: `docker compose run --rm migrate python -m parley.admin ...`), and
the one-time rewrite of topics written before sealing (parley/topic_sealing.py).

The same work as Settings › Privacy: signed calls to the conversation service (and
crm-bridge for the leads of an export) as an admin of the project named, so the one
set of rules in the conversation service applies. An erasure prints its progress until
it is done, and the CRM leads to erase there."""
from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

import orjson

from parley import internal_auth, migrate_services, topic_sealing
from parley.audit import COMMAND_LINE, COMMAND_LINE_NAME
from parley.config import env, resolve_path
from parley.contract import ACTOR_HEADER
from parley.schemas import load_topics
from parley.service_client import ServiceClient, new_session, path

SUBJECTS = ("conversation_id", "visitor_id", "phone", "email")


def add_arguments(commands) -> None:
    privacy = commands.add_parser("privacy", help="export or erase everything Parley holds about a person")
    actions = privacy.add_subparsers(dest="action", required=True)
    for action, text in (("export", "print the JSON document (or write it with --output)"),
                         ("erase", "erase for good, then wait until it is done")):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--project", required=True, help="the project's id")
        which = sub.add_mutually_exclusive_group(required=True)
        for subject in SUBJECTS:
            which.add_argument(f"--{subject.replace('_', '-')}", dest=subject)
        if action == "export":
            sub.add_argument("--output", help="a file to write instead of printing")
        else:
            sub.add_argument("--yes", action="store_true", help="do not ask before erasing")
            sub.add_argument("--key", help="an idempotency key: the same key is the same erasure (default: new)")
    migrate = actions.add_parser("migrate", help="rewrite topics written before personal data was sealed "
                                                 "(stop the services first; resumable)")
    migrate.add_argument("--database-url", default=env("DATABASE_URL"))
    migrate.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP_SERVERS"))


def _headers(project: str) -> dict[str, str]:
    actor = {"id": COMMAND_LINE, "project": project, "name": COMMAND_LINE_NAME, "is_admin": True,
             "avatar_url": None, "email": None}
    return {ACTOR_HEADER: orjson.dumps(actor).decode()}


def _client(session, name: str, variable: str) -> ServiceClient:
    return ServiceClient(name, env(variable).rstrip("/"), session, internal_auth.secret())


def _subject(args: argparse.Namespace) -> dict[str, str]:
    return {k: getattr(args, k) for k in SUBJECTS if getattr(args, k)}


async def export(args: argparse.Namespace) -> dict[str, Any]:
    async with new_session() as session:
        conversation = _client(session, "conversation", "PARLEY_CONVERSATION_URL")
        document = await conversation.checked("GET", path("api", "project", "privacy", "export"),
                                              params=_subject(args), headers=_headers(args.project))
        crm = _client(session, "crm-bridge", "PARLEY_CRM_BRIDGE_URL")
        for c in document["conversations"]:
            c["leads"] = (await crm.checked("GET", path("api", "conversations", c["id"], "leads"),
                                            headers=_headers(args.project)))["leads"]
        return document


async def erase(args: argparse.Namespace, say=print) -> dict[str, Any]:
    async with new_session() as session:
        conversation = _client(session, "conversation", "PARLEY_CONVERSATION_URL")
        headers = {**_headers(args.project), "Idempotency-Key": args.key or str(uuid.uuid4())}
        erasure = await conversation.checked("POST", path("api", "project", "privacy", "erasures"),
                                             json=_subject(args), headers=headers)
        say(f"erasure {erasure['id']}: {erasure['conversations']} conversation(s)")
        while erasure["status"] != "done":
            await asyncio.sleep(1)
            erasure = await conversation.checked("GET", path("api", "project", "privacy", "erasures", erasure["id"]),
                                                 headers=_headers(args.project))
            done = erasure["parts_done"]
            say(f"  erasing: {done['conversation']}/{erasure['conversations']} here, "
                f"files {done['files']}, crm-bridge {done['crm']}")
        return erasure


async def migrate(args: argparse.Namespace, say=print) -> dict[str, str]:
    """Every schema migrated first (the stages' table is in them), then the topics."""
    specs = migrate_services.service_specs()
    await migrate_services.migrate_all(args.database_url, specs)
    [keeper] = [s for s in specs if s.seals_personal_data]
    topics = [t for t in load_topics(resolve_path(env("PARLEY_SCHEMAS_DIR")) / "asyncapi.yaml")
              if t.stream_categories]
    return await topic_sealing.migrate(args.database_url, keeper.schema, args.bootstrap, topics,
                                       [s.schema for s in specs], say=say)


def run(args: argparse.Namespace) -> int:
    if args.action == "migrate":
        if not args.database_url or not args.bootstrap:
            print("privacy migrate: set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (or pass --database-url and "
                  "--bootstrap)", file=sys.stderr)
            return 2
        try:
            outcome = asyncio.run(migrate(args))
        except topic_sealing.Refused as e:
            print(f"privacy migrate refused: {e}", file=sys.stderr)
            return 1
        for topic, what in outcome.items():
            print(f"{topic}: {what}")
        return 0
    if args.action == "export":
        document = asyncio.run(export(args))
        raw = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        if args.output:
            with open(args.output, "wb") as out:
                out.write(raw)
            print(f"exported {len(document['conversations'])} conversation(s) to {args.output}")
        else:
            sys.stdout.write(raw.decode() + "\n")
        return 0
    if not args.yes:
        answer = input(f"Erase everything about {_subject(args)} in project {args.project} for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing was erased")
            return 1
    erasure = asyncio.run(erase(args))
    erased = erasure["erased"]
    print(f"done: {erased['conversations']} conversation(s), {erased['messages']} message(s), "
          f"{erased['files']} file(s) erased")
    for lead in erasure["crm_leads"]:
        print(f"  in the CRM, outside Parley - erase it there: lead {lead['lead_id']} {lead.get('url') or ''}")
    return 0
