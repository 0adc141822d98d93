"""Running registry commands: load a stream, decide, append, and update the registry's
tables in the same transaction. Used by the HTTP API and by the start-up seeding."""
from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable

import asyncpg

from parley.contract import project_stream
from parley.envelope import Event
from parley.eventstore import Decision, EventStore, Outcome

from operator_registry import accounts, domain, projection
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


async def run(store: EventStore, command_id: str, stream_id: str, evolve, decide: Callable[[Any], list[Event]],
              *, password_hash: str | None = None, extra: Extra | None = None) -> Outcome:
    """A retried command id returns the first outcome, whose result names the stream it wrote."""
    def decide_on(history: list[Event]) -> Decision:
        return Decision(decide(domain.fold(evolve, history)), {"stream_id": stream_id})

    async def effects(conn: asyncpg.Connection, events: list[Event]) -> None:
        for event in events:
            await projection.apply(conn, event, password_hash=password_hash)
        if extra is not None:
            await extra(conn, events)

    return await store.execute(command_id, stream_id, decide_on, effects=effects)


async def create_project(store: EventStore, command_id: str, project_id: str, *, name: str, owner_name: str,
                         owner_email: str, owner_password: str, language: str, owner_operator_id: str) -> Outcome:
    password_hash = await accounts.hash_password(domain.check_password(owner_password))
    return await run(store, command_id, project_stream(project_id), domain.evolve_project,
                     lambda p: domain.decide_create_project(p, project_id, name, owner_name, owner_email, language,
                                                            owner_operator_id),
                     password_hash=password_hash)


async def enable_chat(store: EventStore, command_id: str, owner: Actor) -> Outcome:
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
                     lambda p: domain.decide_enable_chat(p, owner), extra=add_owner_operator)


async def seed_demo_project(store: EventStore, project_id: str, owner_email: str, owner_password: str) -> None:
    """`make run`'s demo project, chat enabled, owned by PARLEY_OWNER_EMAIL. Idempotent."""
    if await store.load(project_stream(project_id)):
        return
    owner_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"parley:{project_id}:owner"))
    await create_project(store, f"seed:{project_id}:create", project_id, name="Demo", owner_name="Owner",
                         owner_email=owner_email, owner_password=owner_password, language="en",
                         owner_operator_id=owner_id)
    await enable_chat(store, f"seed:{project_id}:enable", Actor(owner_id, project_id, True, True))
