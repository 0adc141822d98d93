"""Typing indicators: ephemeral, across gateways, never in the event store.

A visitor on gateway A types; the operator's socket is on gateway B. The gateway that
hears "typing" produces a signal on the `typing.signals` topic (schemas/asyncapi.yaml:
short retention, no stream category, so the event store can never route to it), and
every gateway follows that topic from the end with no consumer group, as it follows
the conversation events, and pushes the signal to the sockets it holds:
- the visitor's typing to the operators who may see the conversation (audience.py's rule),
- an operator's typing to the conversation's visitor sockets.
The sender never gets its own signal back.

Throttled on both ends: the widget and the app send at most one every THROTTLE_SECONDS
while someone types, and the gateway drops what comes faster per conversation and side
(a script hammering the socket costs one Kafka message per 2 s, not one per frame).
A signal means "typing now"; the receiving side shows it for a few seconds or until
that side's message arrives. Losing one is harmless, so the producer does not wait for
more than the leader's acknowledgement."""
from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from parley.http import Rejected, id_in_path

from gateway import auth
from gateway.live import audience, conversation_audience, signal_producer
from gateway.live.operator_sockets import SOCKETS as OPERATOR_SOCKETS
from gateway.live.send_queue import serialize
from gateway.upstreams import conversation_summary
from gateway.live.visitor_sockets import VISITOR_SOCKETS

TOPIC = "typing.signals"
THROTTLE_SECONDS = 2.0
NAME_MAX = 80
SIDES = ("visitor", "operator")
LAST_SENT = web.AppKey("typing_last_sent", OrderedDict)
MAX_REMEMBERED = 50_000


async def remembered(app: web.Application):
    """Cleanup context: who signalled when, for the throttle."""
    app[LAST_SENT] = OrderedDict()
    yield


def signal(conversation_id: str, project_id: str, side: str, name: str | None = None) -> dict[str, Any]:
    """The message on typing.signals (schemas/signals/typing.v1.schema.json)."""
    if side not in SIDES:
        raise ValueError(side)
    return {"type": "typing", "conversation_id": conversation_id, "project_id": project_id, "side": side,
            "name": (name or None) and name[:NAME_MAX],
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}


def throttled(app: web.Application, conversation_id: str, side: str, now: float | None = None) -> bool:
    """True when this side of this conversation signalled less than THROTTLE_SECONDS ago
    (a per-gateway count; with N gateways behind a balancer at most N per 2 s)."""
    now = time.monotonic() if now is None else now
    last_sent = app[LAST_SENT]
    key = f"{conversation_id}:{side}"
    if now - last_sent.get(key, -THROTTLE_SECONDS) < THROTTLE_SECONDS:
        return True
    last_sent[key] = now
    last_sent.move_to_end(key)
    while len(last_sent) > MAX_REMEMBERED:
        last_sent.popitem(last=False)
    return False


async def publish(app: web.Application, conversation_id: str, project_id: str, side: str,
                  name: str | None = None) -> bool:
    """Send a typing signal (the caller has throttled it); False when it could not go."""
    return await signal_producer.publish(app, TOPIC, conversation_id,
                                         signal(conversation_id, project_id, side, name))


async def from_operator(request: web.Request, operator: dict[str, Any], conversation_id: str) -> None:
    """`POST /api/conversations/{id}/typing`: only who may reply (the assignee, or an admin
    of the project) signals typing to the visitor. Throttled before anything is asked, so
    a chatty client costs one lookup per THROTTLE_SECONDS."""
    if throttled(request.app, conversation_id, f"operator:{operator['id']}"):
        return
    summary = await conversation_summary(request.app, conversation_id)
    if summary is None or not audience.may_see(summary["project_id"], summary["assignee_id"], operator):
        raise Rejected(404, "not_found", "Conversation not found.")
    if summary["assignee_id"] != operator["id"] and not operator.get("is_admin"):
        raise Rejected(409, "not_taken", "Take the conversation into work first.")
    await publish(request.app, conversation_id, summary["project_id"], "operator", operator.get("name"))


async def from_visitor(app: web.Application, project_id: str, conversation_id: str | None) -> None:
    """The widget's `{"type": "typing"}` frame: only once the visitor has a conversation
    (before the first message nobody could see it anyway)."""
    if conversation_id and not throttled(app, conversation_id, "visitor"):
        await publish(app, conversation_id, project_id, "visitor")


def decode(raw: bytes) -> dict[str, Any] | None:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if (not isinstance(message, dict) or message.get("type") != "typing" or message.get("side") not in SIDES
            or not isinstance(message.get("conversation_id"), str) or not isinstance(message.get("project_id"), str)):
        return None
    return message


async def on_signal(app: web.Application, message: dict[str, Any]) -> None:
    """A signal from any gateway (this one included) to the sockets this gateway holds."""
    cid = message["conversation_id"]
    if message["side"] == "operator":
        frame = {"type": "typing", "operator": {"name": message.get("name")}}
        for socket in list(app[VISITOR_SOCKETS].by_conversation.get(cid, ())):
            socket.out.push(frame)
        return
    sockets = app[OPERATOR_SOCKETS].all()
    if not sockets:
        return
    summary = await conversation_audience.summary(app, cid, message["project_id"])
    frame = None
    for socket in sockets:
        if socket.out.open and audience.may_see(summary.project_id, summary.assignee_id, socket.operator):
            frame = frame or serialize({"type": "typing", "conversation_id": cid, "side": "visitor",
                                        "at": message.get("at")})
            socket.out.push(frame)


async def operator_typing(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    await from_operator(request, me, id_in_path(request, "Conversation not found."))
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(remembered)
    app.router.add_post("/api/conversations/{id}/typing", operator_typing)
