"""Operator presence at the edge (issue 13, item 1; the registry keeps it: see
operator_registry/presence.py).

- Heartbeats: every third of the grace period (and at once when an operator opens their
  first app socket here) this gateway tells the registry which operators have an app
  socket open on it. A closed tab simply stops being reported; an operator with a tab
  open on any gateway stays present.
- `operator.presence_changed` (operator.events, followed live by every gateway) is
  pushed to the project's admins and to the operator's own sockets as
  `{"type": "presence", "operator_id", "status", "name"}`.
- The widget is told whether someone is online (`online` in widget/config and in the
  `availability` frame): each project's online operators are kept from those events,
  asked of the registry on a miss and trusted for TTL_SECONDS. When the registry cannot
  answer, the project counts as online: a helper down never hides the chat."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web

from parley.envelope import Event
from parley.http import Rejected
from parley.presence import heartbeat_seconds
from parley.service_client import path

from gateway.live.operator_sockets import SOCKETS
from gateway.live.send_queue import serialize
from gateway.upstreams import registry

log = logging.getLogger(__name__)

TTL_SECONDS = 30.0
RETRY_SECONDS = 5.0
MAX_CACHED = 10_000


@dataclass
class Presence:
    online: dict[str, tuple[float, set[str]]] = field(default_factory=dict)   # project -> (until, ids)


PRESENCE = web.AppKey("presence", Presence)


def setup(app: web.Application) -> None:
    app[PRESENCE] = Presence()


async def report(app: web.Application) -> None:
    ids = sorted(app[SOCKETS].by_operator)
    if not ids:
        return
    try:
        answer = await registry(app).call("POST", path("internal", "presence", "heartbeats"), json={"operators": ids})
        if answer.status != 200:
            log.warning("presence heartbeat refused", extra={"status": answer.status})
    except Rejected as e:
        log.warning("presence heartbeat not delivered", extra={"error": e.message})


def report_loop(app: web.Application):
    async def run(stop: asyncio.Event) -> None:
        arrived = app[SOCKETS].someone_arrived   # an operator's first socket here: report at once
        while not stop.is_set():
            arrived.clear()
            await report(app)
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(arrived.wait())]
            await asyncio.wait(waits, timeout=heartbeat_seconds(), return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
    return run


async def online_ids(app: web.Application, project_id: str) -> set[str] | None:
    """The project's online operators; None when the registry cannot say."""
    cache = app[PRESENCE].online
    cached = cache.get(project_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        answer = await registry(app).call("GET", path("internal", "presence", project_id))
    except Rejected:
        answer = None
    if answer is None or answer.status != 200 or not isinstance(answer.body, dict):
        return None
    ids = {o["id"] for o in answer.body.get("operators", [])}
    if len(cache) >= MAX_CACHED:
        cache.clear()
    cache[project_id] = (time.monotonic() + TTL_SECONDS, ids)
    return ids


async def someone_online(app: web.Application, project_id: str) -> bool:
    ids = await online_ids(app, project_id)
    return True if ids is None else bool(ids)


async def on_operator_event(app: web.Application, event: Event) -> bool:
    """`operator.presence_changed`: pushed to the project's admins and the operator's own
    sockets, and kept in the online cache. True when it flips whether anyone in the project
    is online (visitor_availability.py then tells the visitors)."""
    if event.type != "operator.presence_changed":
        return False
    d, project_id = event.data, event.project_id
    frame = serialize({"type": "presence", "operator_id": d["operator_id"], "status": d["status"],
                       "name": d.get("operator_name")})
    for socket in app[SOCKETS].all():
        if socket.operator["project"] == project_id and (socket.operator.get("is_admin") is True
                                                         or socket.operator["id"] == d["operator_id"]):
            socket.out.push(frame)
    cached = app[PRESENCE].online.get(project_id)
    if cached is None:
        return False   # nobody here asked about this project's visitors yet
    was = bool(cached[1])
    (cached[1].add if d["status"] == "online" else cached[1].discard)(d["operator_id"])
    return was != bool(cached[1])
