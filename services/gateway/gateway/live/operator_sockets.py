"""/ws/operator: the operator app's live connection.

Authenticated like every operator request (auth.py: the session cookie, or a bearer
token in the Authorization header; never in the URL, which proxies log). A token that
rotates at the upgrade is set as the cookie on the upgrade response and sent as the
socket's first message, so the next authentication uses it.

The gateway follows `operator.events`: when an operator is deactivated or removed,
changes password or logs out, the registry is asked whether each of their open
sockets' sessions still stands (by session id: the token itself may have rotated since,
on a REST call) and the socket is closed if not - on every gateway, within moments.
A change of role applies to the open sockets at once (`_apply_role`).

Pushes go through the socket's bounded send queue (send_queue.py): they never wait on
the network, and an app that stops reading is closed with 4408 once its queue is full
(it reconnects and resyncs its views, as after any reconnect)."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from parley.contract import SESSION_COOKIE, TWO_FACTOR_ENROLMENT_REQUIRED, id_of
from parley.envelope import Event
from parley.http import Rejected, error_response, unavailable
from parley.service_client import path

from gateway import auth
from gateway.live import send_queue, socket_metrics
from gateway.live.send_queue import SendQueue
from gateway.upstreams import registry

log = logging.getLogger(__name__)

CLOSE_SESSION_REVOKED = 4401
CLOSE_ROLE_CHANGED = 4403
ACCESS_EVENTS = {"operator.deactivated", "operator.removed", "operator.password_changed", "operator.logged_out"}


@dataclass(eq=False, slots=True)
class OperatorSocket:
    ws: web.WebSocketResponse
    operator: dict
    out: SendQueue | None = None   # every frame to the app goes through it
    watching_visitors: bool = False   # the app shows the live visitors: it gets their changes (site_visitors.py)

    def __post_init__(self) -> None:
        if self.out is None:
            self.out = SendQueue(self.ws)


@dataclass
class OperatorSockets:
    by_operator: dict[str, set[OperatorSocket]] = field(default_factory=dict)
    # Set when an operator's first socket here opens: presence.py reports them at once.
    someone_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, socket: OperatorSocket) -> None:
        if socket.operator["id"] not in self.by_operator:
            self.someone_arrived.set()
        self.by_operator.setdefault(socket.operator["id"], set()).add(socket)

    def discard(self, socket: OperatorSocket) -> None:
        sockets = self.by_operator.get(socket.operator["id"], set())
        sockets.discard(socket)
        if not sockets:
            self.by_operator.pop(socket.operator["id"], None)

    def all(self) -> list[OperatorSocket]:
        return [s for sockets in self.by_operator.values() for s in sockets]


SOCKETS = web.AppKey("operator_sockets", OperatorSockets)


async def operator_socket(request: web.Request) -> web.StreamResponse:
    if not auth.same_origin(request):
        return error_response(403, "origin_forbidden", "The operator app connects from its own origin only.")
    token, _ = auth.session_token(request)
    try:
        operator, rotated = await auth.verify(request, token) if token else (None, None)
    except Rejected as e:
        return error_response(e.status, e.code, e.message, e.headers)
    if operator is None:
        return error_response(401, "unauthenticated", "Log in first.")
    if auth.must_enrol(operator):
        return error_response(403, *TWO_FACTOR_ENROLMENT_REQUIRED)
    ws = web.WebSocketResponse(heartbeat=25)
    if rotated and request.cookies.get(SESSION_COOKIE):
        auth.set_session_cookie(request, ws, rotated)
    await ws.prepare(request)
    socket = OperatorSocket(ws, operator, SendQueue(ws, request.transport))
    sockets = request.app[SOCKETS]
    sockets.add(socket)
    socket_metrics.opened("operator")
    try:
        await socket.out.send({"type": "hello", "operator": operator})
        if rotated:
            await socket.out.send({"type": "session_rotated", "token": rotated})
        async for msg in ws:
            # Operators send commands over REST; the socket carries pushes, and the one
            # thing the app says on it is whether it shows the live visitors now.
            if msg.type == WSMsgType.TEXT:
                _on_app_frame(socket, msg.data)
    finally:
        sockets.discard(socket)
        socket.out.stop()
        socket_metrics.closed("operator")
    return ws


def _on_app_frame(socket: OperatorSocket, raw: str) -> None:
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    if isinstance(frame, dict) and frame.get("type") == "watch_visitors" and isinstance(frame.get("on"), bool):
        socket.watching_visitors = frame["on"]


async def session_stands(app: web.Application, session_id: str) -> bool:
    answer = await registry(app).call("GET", path("internal", "sessions", session_id))
    if answer.status == 404:
        return False
    if answer.status != 200:
        raise unavailable("operator-registry")
    return bool(answer.body.get("active"))


def _apply_role(app: web.Application, operator_id: str, is_admin: bool) -> None:
    """A role change reaches open sockets at once (issue 23: a demoted admin's socket kept
    receiving other operators' conversations). The socket's operator is what audience.py
    asks, so the next push already follows the new role; the socket is then closed with
    CLOSE_ROLE_CHANGED so the app reloads with its new role and resyncs its views."""
    for socket in list(app[SOCKETS].by_operator.get(operator_id, ())):
        if socket.operator.get("is_admin") == is_admin:
            continue
        socket.operator["is_admin"] = is_admin
        log.info("role changed on an open operator socket", extra={"operator_id": operator_id, "is_admin": is_admin})
        socket.out.push({"type": "role_changed", "is_admin": is_admin})
        socket.out.finish(CLOSE_ROLE_CHANGED, "role changed")


async def on_operator_event(app: web.Application, event: Event) -> None:
    if event.type == "operator.role_changed":
        _apply_role(app, id_of(event.stream_id), bool(event.data["is_admin"]))
        return
    if event.type not in ACCESS_EVENTS:
        return
    operator_id = id_of(event.stream_id)
    for socket in list(app[SOCKETS].by_operator.get(operator_id, ())):
        try:
            still_valid = await session_stands(app, socket.operator["session_id"])
        except Rejected:
            continue  # cannot tell now; the next access event or reconnect decides
        if not still_valid:
            log.info("closing a revoked operator socket", extra={"operator_id": operator_id, "cause": event.type})
            socket.out.push({"type": "session_revoked", "reason": event.type})
            socket.out.finish(CLOSE_SESSION_REVOKED, "session revoked")


async def close_all(app: web.Application) -> None:
    await send_queue.close_all([s.out for s in app[SOCKETS].all()], WSCloseCode.GOING_AWAY, "gateway shutting down")
