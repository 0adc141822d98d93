"""/ws/operator: the operator app's live connection.

Authenticated by the session cookie (or `?token=`) through operator-registry. The
gateway follows `operator.events`: when an operator is deactivated or removed, changes
password or logs out, each of their open sockets is verified again and closed if its
session no longer stands - on every gateway, within moments of the event."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import ClientError, WSCloseCode, web

from parley.envelope import Event

from parley.http import error_response

from gateway.upstream import HTTP, registry_url, unavailable

log = logging.getLogger(__name__)

SESSION_COOKIE = "parley_session"
CLOSE_SESSION_REVOKED = 4401
ACCESS_EVENTS = {"operator.deactivated", "operator.removed", "operator.password_changed", "operator.logged_out"}


@dataclass(eq=False)
class OperatorSocket:
    ws: web.WebSocketResponse
    token: str
    operator: dict


@dataclass
class OperatorSockets:
    by_operator: dict[str, set[OperatorSocket]] = field(default_factory=dict)

    def add(self, socket: OperatorSocket) -> None:
        self.by_operator.setdefault(socket.operator["id"], set()).add(socket)

    def discard(self, socket: OperatorSocket) -> None:
        sockets = self.by_operator.get(socket.operator["id"], set())
        sockets.discard(socket)
        if not sockets:
            self.by_operator.pop(socket.operator["id"], None)

    def all(self) -> list[OperatorSocket]:
        return [s for sockets in self.by_operator.values() for s in sockets]


SOCKETS = web.AppKey("operator_sockets", OperatorSockets)


async def verify_token(app: web.Application, token: str) -> dict | None:
    """The session's operator, None if the session does not stand; raises if the registry is down."""
    async with app[HTTP].post(f"{registry_url()}/internal/sessions/verify", json={"token": token}) as r:
        if r.status == 401:
            return None
        r.raise_for_status()
        return await r.json()


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def operator_socket(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        return error_response(403, "origin_forbidden", "The operator app connects from its own origin only.")
    token = request.cookies.get(SESSION_COOKIE) or request.query.get("token", "")
    try:
        operator = await verify_token(request.app, token) if token else None
    except (ClientError, TimeoutError):
        return unavailable("operator-registry")
    if operator is None:
        return error_response(401, "unauthenticated", "Log in first.")
    ws = web.WebSocketResponse(heartbeat=25)
    await ws.prepare(request)
    socket = OperatorSocket(ws, token, operator)
    sockets = request.app[SOCKETS]
    sockets.add(socket)
    try:
        await ws.send_json({"type": "hello", "operator": operator})
        async for _ in ws:
            pass  # operators send commands over REST; the socket carries pushes
    finally:
        sockets.discard(socket)
    return ws


async def on_operator_event(app: web.Application, event: Event) -> None:
    if event.type not in ACCESS_EVENTS:
        return
    operator_id = event.stream_id.removeprefix("operator-")
    for socket in list(app[SOCKETS].by_operator.get(operator_id, ())):
        try:
            still_valid = await verify_token(app, socket.token) is not None
        except (ClientError, TimeoutError):
            continue  # cannot tell now; the next access event or reconnect decides
        if not still_valid:
            log.info("closing a revoked operator socket", extra={"operator_id": operator_id, "cause": event.type})
            await socket.ws.send_json({"type": "session_revoked", "reason": event.type})
            await socket.ws.close(code=CLOSE_SESSION_REVOKED, message=b"session revoked")


async def close_all(app: web.Application) -> None:
    for socket in app[SOCKETS].all():
        await socket.ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway shutting down")
