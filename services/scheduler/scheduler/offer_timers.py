"""Offer timers: the durable timeouts of auto-assignment's offers (issue 13, item 2;
the conversation service's offers.py and auto_assign.py).

- `assignment.offered` (conversation.events, the timers consumer) arms a row of kind
  `offer` with the offer's id, due `seconds` after the offer in wall time (an offer is
  about who is at their desk now, not about working hours); PARLEY_SCHEDULER_MINUTE_SECONDS
  scales it as every timer here (a second is a sixtieth of a timer minute).
- `assignment.accepted`, `.taken`, `.assigned` and the conversation closing disarm it;
  `assignment.offer_expired` disarms that offer's row (the next offer arms its own).
- Firing is the idle timer's lease (timers.fire_due): the row's due time moves a lease
  ahead, the call runs outside the transaction -
  `POST /internal/conversations/{id}/offers/{offer_id}/expire`, whose command id on the
  conversation side is the offer id - and its answer finishes the row. A scheduler
  killed mid-call, or a conversation service that does not answer, leaves the lease to
  bring the same idempotent call back: the offer expires, and moves on, exactly once."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from parley.contract import id_of
from parley.envelope import Event
from parley.http import Rejected
from parley.service_client import path

log = logging.getLogger(__name__)

DISARMED_BY = ("assignment.accepted", "assignment.taken", "assignment.assigned")


async def on_conversation_event(conn: asyncpg.Connection, event: Event, minute: float, tid: str) -> None:
    """`tid`: the id the row gets if this event arms one (timers.timer_id)."""
    conversation_id = id_of(event.stream_id)
    if event.type == "assignment.offered":
        d = event.data
        anchor = datetime.fromisoformat(event.occurred_at)
        await conn.execute(
            """insert into timers (id, project_id, conversation_id, kind, generation, anchor, due_at, offer_id)
               values ($1, $2, $3, 'offer', $4, $5, $6, $7) on conflict (id) do nothing""",
            tid, event.project_id, conversation_id,
            event.stream_version, anchor, anchor + timedelta(seconds=d["seconds"] * minute / 60), d["offer_id"])
    elif event.type in DISARMED_BY or (event.type == "status.changed" and event.data.get("status") == "closed"):
        await conn.execute(
            """update timers set status = 'cancelled', finished_at = now()
               where conversation_id = $1 and kind = 'offer' and status = 'pending'""", conversation_id)
    elif event.type == "assignment.offer_expired":
        await conn.execute(
            """update timers set status = 'cancelled', finished_at = now()
               where conversation_id = $1 and kind = 'offer' and status = 'pending' and offer_id = $2""",
            conversation_id, event.data["offer_id"])


async def expire(app: web.Application, client, row: asyncpg.Record) -> tuple[str, dict] | None:
    """Ask the conversation service to expire the row's offer: (status, outcome) to
    finish the row with, or None to leave it to the lease (no answer, or a 5xx)."""
    tid, cid = str(row["id"]), str(row["conversation_id"])
    try:
        answer = await client.call("POST", path("internal", "conversations", cid, "offers", str(row["offer_id"]),
                                                "expire"), json={}, headers={"Idempotency-Key": tid})
    except Rejected as e:
        log.warning("offer expiry not delivered; will retry", extra={"timer_id": tid, "error": e.message})
        return None
    if answer.status >= 500:
        log.warning("offer expiry failed; will retry", extra={"timer_id": tid, "status": answer.status})
        return None
    if answer.status == 200:
        body = answer.body or {}
        return "fired", {"outcome": "expired" if body.get("expired") else "unchanged",
                         "offered_to": body.get("offered_to")}
    return "cancelled", {"outcome": "refused", "status": answer.status, "error": (answer.body or {}).get("error")}
