"""Running registry commands: load a stream, decide, append, and update the registry's
tables in the same transaction. Used by the HTTP API, the start-up seeding, the first-run page and
`python -m parley.admin create-project`."""
from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable

import asyncpg

from parley import audit
from parley.contract import operator_stream, project_stream
from parley.envelope import Event, new_event
from parley.eventstore import Decision, EventStore, Outcome

from operator_registry import accounts, audit_log, domain, projection
from operator_registry.domain import Actor

Extra = Callable[[asyncpg.Connection, list[Event]], Awaitable[None]]

IDEMPOTENCY_KEY_MIN, IDEMPOTENCY_KEY_MAX = 8, 100


def idempotent_command_id(actor: Actor | None, method: str, path: str, key: str) -> str | None:
    """The command id for a client's Idempotency-Key, or None when it sent none (or one
    too short or too long to be a real key). Scoped to the project and the operator who
    sends it, and to the request's method and path: the same key from someone else is
    another command, never a replay of theirs."""
    if not IDEMPOTENCY_KEY_MIN <= len(key) <= IDEMPOTENCY_KEY_MAX:
        return None
    who = f"{actor.project_id}/{actor.operator_id}" if actor else "anonymous"
    return f"{who} {method} {path} {key}"


def operator_event(type: str, operator, data: dict[str, Any]) -> Event:
    """An event of an operator's stream (`operator`: its `id` and `project_id`)."""
    return new_event(type, operator_stream(operator["id"]), data, project_id=operator["project_id"])


async def run(store: EventStore, command_id: str, stream_id: str, evolve, decide: Callable[[Any], list[Event]],
              *, password_hash: str | None = None, extra: Extra | None = None, by: str | None = None) -> Outcome:
    """A retried command id returns the first outcome, whose result names the stream it wrote.
    `by`: the operator acting; what the audit trail records of the events goes with them."""
    def decide_on(history: list[Event]) -> Decision:
        return Decision(decide(domain.fold(evolve, history)), {"stream_id": stream_id})

    async def effects(conn: asyncpg.Connection, events: list[Event]) -> None:
        for event in events:
            await projection.apply(conn, event, password_hash=password_hash)
        if extra is not None:
            await extra(conn, events)
        if by is not None:
            for entry in audit_log.entries_for(events, by):
                await audit.append(store, conn, entry, beside=stream_id)

    return await store.execute(command_id, stream_id, decide_on, effects=effects)


async def create_project(store: EventStore, command_id: str, project_id: str, *, name: str, owner_name: str,
                         owner_email: str, owner_password: str, language: str, owner_operator_id: str,
                         extra: Extra | None = None) -> Outcome:
    password_hash = await accounts.hash_password(domain.check_password(owner_password))
    return await run(store, command_id, project_stream(project_id), domain.evolve_project,
                     lambda p: domain.decide_create_project(p, project_id, name, owner_name, owner_email, language,
                                                            owner_operator_id),
                     password_hash=password_hash, extra=extra)


# Held until commit by a transaction creating the installation's first project.
_FIRST_PROJECT_LOCK = "select pg_advisory_xact_lock(hashtext('parley_first_project:' || current_schema()))"


def _only_project(project_id: str) -> Extra:
    """Runs in the creating transaction, after its projects row is written: two first-run
    setups racing (different ids, so different streams, perhaps different shards) take
    this lock in turn, and the second, seeing the first's committed row, is refused and
    rolled back. Exactly one project comes out of /setup, across every gateway."""
    async def check(conn: asyncpg.Connection, events: list[Event]) -> None:
        await conn.execute(_FIRST_PROJECT_LOCK)
        if await conn.fetchval("select exists (select 1 from projects where id <> $1)", project_id):
            raise domain.setup_already_done()
    return check


async def open_project(store: EventStore, project_id: Any, *, name: Any, owner_name: Any, owner_email: Any,
                       owner_password: Any, language: str = "en", first_only: bool = False,
                       owner_operator_id: str | None = None, command_prefix: str | None = None) -> str:
    """The one way a project comes to be - the demo seed, `python -m parley.admin
    create-project` and the first-run page: created, its chat enabled, its owner the
    first operator (an admin) with the given password. Each field is checked first, with
    a code naming it (domain.check_new_project). `first_only`: refused with 409
    `setup_already_done` unless it is the installation's first project. Returns the
    owner's operator id."""
    domain.check_new_project(project_id, name, owner_name, owner_email, owner_password)
    owner_id = owner_operator_id or str(uuid.uuid4())
    prefix = command_prefix or f"open:{uuid.uuid4()}"
    await create_project(store, f"{prefix}:create", project_id, name=name, owner_name=owner_name,
                         owner_email=owner_email, owner_password=owner_password, language=language,
                         owner_operator_id=owner_id, extra=_only_project(project_id) if first_only else None)
    await enable_chat(store, f"{prefix}:enable", Actor(owner_id, project_id, True, True))
    return owner_id


async def enable_chat(store: EventStore, command_id: str, owner: Actor, *, audited: bool = False) -> Outcome:
    """The first enabling makes the owner an operator and admin, with the owner's own credentials."""
    async def add_owner_operator(conn: asyncpg.Connection, events: list[Event]) -> None:
        if not events or await conn.fetchval("select 1 from operators where id = $1", owner.operator_id):
            return
        p = await conn.fetchrow("select * from projects where id = $1", owner.project_id)
        added = domain.decide_add_operator(owner, owner.operator_id, p["owner_name"], p["owner_email"], True,
                                           is_owner=True)
        await store.append(added, expected_version=0, conn=conn)
        await projection.apply(conn, added[0], password_hash=p["owner_password"])

    return await run(store, command_id, project_stream(owner.project_id), domain.evolve_project,
                     lambda p: domain.decide_enable_chat(p, owner), extra=add_owner_operator,
                     by=owner.operator_id if audited else None)


async def seed_demo_project(store: EventStore, project_id: str, owner_email: str, owner_password: str) -> None:
    """`make run`'s demo project, chat enabled, owned by PARLEY_OWNER_EMAIL. Idempotent."""
    if await store.load(project_stream(project_id)):
        return
    await open_project(store, project_id, name="Demo", owner_name="Owner", owner_email=owner_email,
                       owner_password=owner_password, language="en", command_prefix=f"seed:{project_id}",
                       owner_operator_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"parley:{project_id}:owner")))
