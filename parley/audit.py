"""The audit trail: who did what, and when, to a project's administration.

Each service that makes an administrative change (operators and roles, settings,
exports, erasures) appends one `audit.recorded` event in the change's own transaction,
so an act is in the trail exactly when it happened. One entry is one stream,
`audit-<event id>`: concurrent acts never conflict, and only the service that made the
change writes it. The operator-registry projects the topic into the log the app shows
(operator_registry/audit_log.py).

An entry names operators by id and settings by name. It never holds what a visitor
typed or who a visitor is: an erasure or an export records the kind of subject
("phone"), never the phone."""
from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import asyncpg

from parley.envelope import Event, new_event
from parley.eventstore import EventStore

# Who an act from `python -m parley.admin` is by: the command line, not an operator.
COMMAND_LINE = "4b7e3f0a-2c1d-4e8f-9a6b-5d0c1e2f3a4b"
COMMAND_LINE_NAME = "python -m parley.admin"


def entry(project_id: str, by: str, action: str, target: str | None = None, **detail: Any) -> Event:
    """An `audit.recorded` event (its schema lists the actions and what detail may hold)."""
    return new_event("audit.recorded", f"audit-{uuid.uuid4()}",
                     {"action": action, "by": str(by), "target": target, "detail": detail}, project_id=project_id)


async def record(store: EventStore, conn: asyncpg.Connection, project_id: str, by: str, action: str,
                 target: str | None = None, *, beside: str | None = None, **detail: Any) -> None:
    """Append the entry in `conn`'s transaction: the change and its record commit together."""
    await append(store, conn, entry(project_id, by, action, target, **detail), beside=beside)


async def append(store: EventStore, conn: asyncpg.Connection, event: Event, *, beside: str | None = None) -> None:
    """`beside`: a stream the transaction appends to as well. The entry's stream is then
    picked in that stream's shard, so the transaction takes one shard lock, not two that
    another transaction could be taking in the other order (a deadlock)."""
    if beside is not None:
        wanted = await store.shard_for(beside, conn)
        while await store.shard_for(event.stream_id, conn) != wanted:
            event = replace(event, stream_id=f"audit-{uuid.uuid4()}")
    await store.append([event], 0, conn=conn)
