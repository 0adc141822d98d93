"""The visitor side of the gateway: identity, `/ws/visitor`, attachments.

Protocol: docs/visitor-protocol.md. The socket is registered for live pushes before the
history is read, and every event is sent under one lock and only if its `seq` is above
the last one sent, so a reconnect with `after=<seq>` gets every visible event once, in
order, whatever arrives while the history is being read."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from parley.http import Rejected, error_response, ok, read_json

from gateway import audience, files, visitor_tokens
from gateway.client_ip import client_ip
from gateway.conversation_upstream import call, checked
from gateway.upstream import HTTP, registry_url

log = logging.getLogger(__name__)

MESSAGES_PER_MINUTE_PER_VISITOR = 30
MESSAGES_PER_MINUTE_PER_IP = 120
CONFIG_TTL = 5.0


@dataclass(eq=False)
class VisitorSocket:
    ws: web.WebSocketResponse
    project_id: str
    visitor_id: str
    conversation_id: str | None
    last_seq: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    params: dict = field(default_factory=dict)

    async def deliver(self, envelope: dict) -> None:
        view = audience.for_visitor(envelope)
        if view is None:
            return
        async with self.lock:
            await self._send_if_new(view)

    async def _send_if_new(self, view: dict) -> None:
        if view["seq"] > self.last_seq and not self.ws.closed:
            await self.ws.send_json(view)
            self.last_seq = view["seq"]

    async def catch_up(self, app: web.Application) -> None:
        """Everything visible after last_seq, from the conversation's history."""
        if self.conversation_id is None:
            return
        async with self.lock:
            body = await checked(app, "GET", f"/internal/conversations/{self.conversation_id}/events",
                                 params={"after": str(self.last_seq)})
            for envelope in body["events"]:
                view = audience.for_visitor(envelope)
                if view is not None:
                    await self._send_if_new(view)


@dataclass
class VisitorSockets:
    by_conversation: dict[str, set[VisitorSocket]] = field(default_factory=dict)
    everyone: set[VisitorSocket] = field(default_factory=set)

    def add(self, socket: VisitorSocket) -> None:
        self.everyone.add(socket)

    def bind(self, socket: VisitorSocket, conversation_id: str) -> None:
        socket.conversation_id = conversation_id
        self.by_conversation.setdefault(conversation_id, set()).add(socket)

    def discard(self, socket: VisitorSocket) -> None:
        self.everyone.discard(socket)
        sockets = self.by_conversation.get(socket.conversation_id or "", set())
        sockets.discard(socket)
        if not sockets:
            self.by_conversation.pop(socket.conversation_id or "", None)

VISITOR_SOCKETS = web.AppKey("visitor_sockets", VisitorSockets)
RATES = web.AppKey("visitor_rates", dict)
CONFIGS = web.AppKey("project_configs", dict)


def _allow(app: web.Application, key: str, per_minute: int) -> bool:
    """A sliding one-minute window per key."""
    now = time.monotonic()
    recent = [t for t in app[RATES].get(key, []) if now - t < 60]
    if len(recent) >= per_minute:
        app[RATES][key] = recent
        return False
    recent.append(now)
    app[RATES][key] = recent
    return True


async def project_config(app: web.Application, project_id: str) -> dict:
    cached = app[CONFIGS].get(project_id)
    if cached and time.monotonic() - cached[0] < CONFIG_TTL:
        return cached[1]
    async with app[HTTP].get(f"{registry_url()}/api/widget/config", params={"project": project_id}) as r:
        if r.status == 404:
            raise Rejected(404, "project_not_found", "No such project.")
        r.raise_for_status()
        config = await r.json()
    app[CONFIGS][project_id] = (time.monotonic(), config)
    return config


def origin_allowed(request: web.Request, config: dict) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser; the token still binds it to its own conversation
    parts = urlsplit(origin)
    return parts.netloc == request.host or origin.rstrip("/") in config.get("sites", [])


async def _visitor(request: web.Request, token: str | None) -> tuple[str, str, dict]:
    identity = visitor_tokens.verify(token)
    if identity is None:
        raise Rejected(401, "visitor_token_invalid", "Unknown visitor; start a new visitor session.")
    project_id, visitor_id = identity
    config = await project_config(request.app, project_id)
    if not origin_allowed(request, config):
        raise Rejected(403, "origin_forbidden", "This site is not among the project's sites.")
    return project_id, visitor_id, config


async def visitor_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    project_id = body.get("project")
    if not isinstance(project_id, str) or not project_id:
        raise Rejected(400, "project_required", "Which project? Send {\"project\": \"...\"}.")
    config = await project_config(request.app, project_id)
    if not origin_allowed(request, config):
        raise Rejected(403, "origin_forbidden", "This site is not among the project's sites.")
    if not config["enabled"]:
        raise Rejected(409, "chat_disabled", "The chat is switched off for this site.")
    previous = visitor_tokens.verify(body.get("visitor_token"))
    if previous and previous[0] == project_id:
        return ok({"visitor_token": body["visitor_token"], "visitor_id": previous[1]}, status=201)
    token, visitor_id = visitor_tokens.issue(project_id)
    return ok({"visitor_token": token, "visitor_id": visitor_id}, status=201)


async def visitor_attachment(request: web.Request) -> web.Response:
    project_id, visitor_id, _ = await _visitor(request, request.query.get("token"))
    return files.uploaded(await files.store_upload(request, project_id, f"visitor:{visitor_id}"))


async def visitor_file(request: web.Request, row) -> bool:
    identity = visitor_tokens.verify(request.query.get("token"))
    if identity is None or identity[0] != row["project_id"]:
        return False
    if row["uploaded_by"] == f"visitor:{identity[1]}":
        return True
    status, body = await call(request.app, "GET", "/internal/visitor/conversation",
                              params={"project_id": identity[0], "visitor_id": identity[1]})
    return status == 200 and body["conversation_id"] is not None and body["conversation_id"] == row["conversation_id"]


async def visitor_socket(request: web.Request) -> web.StreamResponse:
    try:
        project_id, visitor_id, config = await _visitor(request, request.query.get("token"))
        if not config["enabled"]:
            raise Rejected(409, "chat_disabled", "The chat is switched off for this site.")
        after = int(request.query.get("after", "0") or 0)
    except Rejected as e:
        return error_response(e.status, e.code, e.message)
    except ValueError:
        return error_response(400, "after_invalid", "after is the last seq the widget saw, a number.")
    status, body = await call(request.app, "GET", "/internal/visitor/conversation",
                              params={"project_id": project_id, "visitor_id": visitor_id})
    ws = web.WebSocketResponse(heartbeat=25, max_msg_size=64 * 1024)
    await ws.prepare(request)
    sockets = request.app[VISITOR_SOCKETS]
    socket = VisitorSocket(ws, project_id, visitor_id, None, after)
    sockets.add(socket)
    conversation_id = body.get("conversation_id") if status == 200 else None
    if conversation_id:
        sockets.bind(socket, conversation_id)  # registered before reading history: nothing falls between
    try:
        await ws.send_json({"type": "hello", "visitor_id": visitor_id, "conversation_id": conversation_id})
        await socket.catch_up(request.app)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = msg.json()
                if not isinstance(data, dict):
                    raise ValueError
            except ValueError:
                await ws.send_json({"type": "error", "code": "invalid_json", "message": "Send JSON objects."})
                continue
            await _on_visitor_message(request, socket, data)
    finally:
        sockets.discard(socket)
    return ws


async def _on_visitor_message(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    app, kind = request.app, data.get("type")
    try:
        if kind == "message":
            await _post_message(request, socket, data)
        elif kind == "params":
            params = data.get("params")
            if not isinstance(params, dict):
                raise Rejected(422, "params_invalid", "params must be an object of names to values.")
            if socket.conversation_id:
                await checked(app, "POST", "/internal/visitor/params", json={
                    "project_id": socket.project_id, "visitor_id": socket.visitor_id, "params": params})
            else:  # no conversation yet: they travel with the first message
                socket.params = {**socket.params, **params}
        elif kind == "contacts":
            await checked(app, "POST", "/internal/visitor/contacts", json={
                "project_id": socket.project_id, "visitor_id": socket.visitor_id,
                **{k: data.get(k) for k in ("name", "phone", "email")}})
        else:
            raise Rejected(422, "type_unknown", f"Unknown message type {kind!r}.")
    except Rejected as e:
        await socket.ws.send_json({"type": "error", "id": data.get("id"), "code": e.code, "message": e.message})


async def _post_message(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    app = request.app
    if not (_allow(app, f"visitor:{socket.visitor_id}", MESSAGES_PER_MINUTE_PER_VISITOR)
            and _allow(app, f"ip:{client_ip(request)}", MESSAGES_PER_MINUTE_PER_IP)):
        raise Rejected(429, "rate_limited", "You are sending messages too fast; wait a moment.")
    uploader = f"visitor:{socket.visitor_id}"
    attachment = await files.attachment_for(request, data.get("attachment"), socket.project_id, uploader)
    body = await checked(app, "POST", "/internal/visitor/messages", json={
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "message_id": data.get("id"),
        "text": data.get("text", ""), "attachment": attachment, "page_url": data.get("page_url"),
        "custom_params": socket.params})
    if socket.conversation_id is None:
        app[VISITOR_SOCKETS].bind(socket, body["conversation_id"])
    await files.link(request, attachment, body["conversation_id"])
    await socket.catch_up(app)  # our own message (and anything before it) before the ack
    await socket.ws.send_json({"type": "ack", "id": data.get("id"), "seq": body["seq"]})


async def close_all(app: web.Application) -> None:
    for socket in list(app[VISITOR_SOCKETS].everyone):
        await socket.ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway restarting")
