"""`/ws/visitor`: the widget's live connection (protocol: docs/visitor-protocol.md).

The socket (visitor_sockets.py) is registered for live pushes before the history is
read, so a reconnect with `after=<seq>` gets every visible event once, in order. A
visitor may hold a few sockets (tabs), not an unbounded number. A widget that stops
reading is closed with 4408 once its queue is full and resumes with `after=`.

Working hours (docs/working-hours.md): the hello is followed by an `availability` frame,
and every message, contacts and offline form carries `chat_open` as the gateway's
schedule says now; the conversation service refuses what would start or reopen a
conversation while closed (`chat_closed`), and the error frame adds `next_open_at`."""
from __future__ import annotations

import logging

from aiohttp import WSCloseCode, WSMsgType, web

from parley.http import Rejected, error_response
from parley.service_client import path

from gateway import auth, csat, files, read_receipts
from gateway.live import (availability, conversation_keys, site_visitors, socket_metrics, typing_signals,
                          visitor_availability)
from gateway.client_ip import client_ip
from gateway.rate_limits import limits
from gateway.live.send_queue import SendQueue
from gateway.upstreams import conversation
from gateway.live.visitor_sockets import VISITOR_SOCKETS, VisitorSocket

log = logging.getLogger(__name__)

MAX_SOCKETS_PER_VISITOR = 5
MAX_FRAME_BYTES = 64 * 1024


async def visitor_socket(request: web.Request) -> web.StreamResponse:
    try:
        token, config = await auth.visitor(request)
        project_id, visitor_id = token.project_id, token.visitor_id
        if not config["enabled"]:
            raise Rejected(409, "chat_disabled", "The chat is switched off for this site.")
        try:
            after = max(0, int(request.query.get("after", "0") or 0))
        except ValueError:
            raise Rejected(400, "after_invalid", "after is the last seq the widget saw, a number.")
        sockets = request.app[VISITOR_SOCKETS]
        if sockets.count(visitor_id) >= MAX_SOCKETS_PER_VISITOR:
            raise Rejected(429, "too_many_sockets", f"At most {MAX_SOCKETS_PER_VISITOR} open chats per visitor; "
                                                    "close another tab.", headers={"Retry-After": "10"})
        body = await conversation(request.app).checked("GET", path("internal", "visitor", "conversation"),
                                                       params={"project_id": project_id, "visitor_id": visitor_id})
    except Rejected as e:
        return error_response(e.status, e.code, e.message, e.headers)
    ws = web.WebSocketResponse(heartbeat=25, max_msg_size=MAX_FRAME_BYTES, protocols=(auth.WS_PROTOCOL,))
    await ws.prepare(request)
    socket = VisitorSocket(ws, project_id, visitor_id, None, after, out=SendQueue(ws, request.transport),
                           token=token)
    sockets.add(socket)
    socket_metrics.opened("visitor")
    conversation_id = body.get("conversation_id")
    chatting = bool(conversation_id) and body.get("status") != "closed"
    del body, config   # this frame lives as long as the socket: keep only what it needs
    if conversation_id:
        sockets.bind(socket, conversation_id)  # registered before reading history: nothing falls between
    site_visitors.arrived(request.app, socket, chatting)   # on the live list (its page comes next)
    try:
        await socket.send({"type": "hello", "visitor_id": visitor_id, "conversation_id": conversation_id})
        await socket.send(await visitor_availability.frame(request.app, project_id))   # open, next_open_at, online
        await socket.catch_up(request.app)
        invitation = None if chatting else site_visitors.table(request.app).invitation(visitor_id)
        if invitation is not None:   # invited on an earlier page: still shown until answered
            await socket.send(site_visitors.invitation_frame(invitation))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = msg.json()
                if not isinstance(data, dict):
                    raise ValueError
            except ValueError:
                await socket.send({"type": "error", "code": "invalid_json", "message": "Send JSON objects."})
                continue
            await _on_visitor_message(request, socket, data)
    except Rejected as e:  # the history could not be read: the widget reconnects and resumes
        socket.out.finish(WSCloseCode.TRY_AGAIN_LATER, e.code)
        await socket.out.wait_closed()
    finally:
        sockets.discard(socket)
        site_visitors.departed(request.app, socket)
        socket.out.stop()
        socket_metrics.closed("visitor")
    return ws


async def _on_visitor_message(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    kind = data.get("type")
    client = conversation(request.app)
    message_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        if kind == "message":
            await _post_message(request, socket, data)
        elif kind == "params":
            params = data.get("params")
            if not isinstance(params, dict):
                raise Rejected(422, "params_invalid", "params must be an object of names to values.")
            if socket.conversation_id:
                await client.command(path("internal", "visitor", "params"), {
                    "project_id": socket.project_id, "visitor_id": socket.visitor_id, "params": params})
            else:  # no conversation yet: they travel with the first message
                socket.merge_params(params)
            site_visitors.params_set(request.app, socket, params)
        elif kind == "page":   # where the visitor is on the site (site_visits.py): never an error; a flood is dropped
            if limits(request.app).pages_per_visitor.allow(socket.visitor_id):
                site_visitors.paged(request.app, socket, data)
        elif kind == "contacts":
            await _post_contacts(request, socket, data)
        elif kind == "offline_message":
            await _post_offline(request, socket, data)
        elif kind == "typing":
            await typing_signals.from_visitor(request.app, socket.project_id, socket.conversation_id)
        elif kind == "read":
            await read_receipts.from_visitor(request.app, socket, data)
        elif kind == "rate":
            await csat.from_visitor(request.app, socket, data)
        elif kind == "email_transcript":
            await _email_transcript(request, socket, data)
        else:
            raise Rejected(422, "type_unknown", f"Unknown message type {str(kind)[:40]!r}.")
    except Rejected as e:
        frame = {"type": "error", "id": message_id, "code": e.code, "message": e.message}
        if e.headers.get("Retry-After", "").isdigit():  # busy, service_unavailable: when to resend
            frame["retry_after"] = int(e.headers["Retry-After"])
        if e.code == "chat_closed":
            frame["next_open_at"] = (await availability.now_open(request.app, socket.project_id))[1]
        await socket.send(frame)


async def _post_message(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    app = request.app
    if not (limits(app).messages_per_visitor.allow(socket.visitor_id)
            and limits(app).messages_per_address.allow(client_ip(request))):
        raise Rejected(429, "rate_limited", "You are sending messages too fast; wait a moment.")
    uploader = f"visitor:{socket.visitor_id}"
    attachment = await files.attachment_for(request, data.get("attachment"), socket.project_id, uploader,
                                            socket.conversation_id)
    # An operator's invitation the visitor answers: a conversation this message starts
    # begins with it and is that operator's (the conversation service ignores it otherwise).
    invitation = site_visitors.table(app).invitation(socket.visitor_id)
    body = await conversation(app).command(path("internal", "visitor", "messages"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "message_id": data.get("id"),
        "text": data.get("text", ""), "attachment": attachment, "page_url": data.get("page_url"),
        "custom_params": socket.params, "chat_open": (await availability.now_open(app, socket.project_id))[0],
        "after": socket.last_seq, "conversation_id": socket.conversation_id,
        **({"invitation": {k: v for k, v in invitation.items() if k != "expires_at"}} if invitation else {})})
    conversation_keys.keep_from(app, body)
    await _follow(app, socket, body["conversation_id"])
    if invitation is not None:
        site_visitors.answered_invitation(app, socket.visitor_id)
    await files.link(request, attachment, body["conversation_id"])
    # our own message (and anything before it) before the ack, as the answer brought them
    await socket.catch_up(app, body.get("events") if body["conversation_id"] == socket.conversation_id else None)
    await socket.send({"type": "ack", "id": data.get("id"), "seq": body["seq"], "conversation_id": body["conversation_id"]})


async def _post_contacts(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    """The contact form: stored (starting the conversation if the visitor has not written
    yet, with the params held on the socket), then `contacts_saved` to this socket only.
    Contacts are never an `event` for visitors (audience.for_visitor)."""
    app = request.app
    if not limits(app).messages_per_visitor.allow(socket.visitor_id):
        raise Rejected(429, "rate_limited", "You are sending too fast; wait a moment.")
    body = await conversation(app).command(path("internal", "visitor", "contacts"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "page_url": data.get("page_url"),
        "custom_params": socket.params, **{k: data.get(k) for k in ("name", "phone", "email")},
        "chat_open": (await availability.now_open(app, socket.project_id))[0]})
    conversation_keys.keep_from(app, body)
    await _follow(app, socket, body["conversation_id"])
    await socket.send({"type": "contacts_saved", "id": data.get("id") if isinstance(data.get("id"), str)
                               else None})


async def _post_offline(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    """The offline form: contacts and a message, stored as one command (a new conversation
    marked left_while_closed while the chat is closed, else into the visitor's own),
    answered by `offline_saved` with the frame's id; the message then shows as an event."""
    app = request.app
    if not (limits(app).messages_per_visitor.allow(socket.visitor_id)
            and limits(app).messages_per_address.allow(client_ip(request))):
        raise Rejected(429, "rate_limited", "You are sending too fast; wait a moment.")
    body = await conversation(app).command(path("internal", "visitor", "offline"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "message_id": data.get("id"),
        "text": data.get("text"), "page_url": data.get("page_url"), "custom_params": socket.params,
        **{k: data.get(k) for k in ("name", "phone", "email")},
        "chat_open": (await availability.now_open(app, socket.project_id))[0],
        "after": socket.last_seq, "conversation_id": socket.conversation_id})
    conversation_keys.keep_from(app, body)
    await _follow(app, socket, body["conversation_id"])
    await socket.send({"type": "offline_saved", "id": data.get("id"), "conversation_id": body["conversation_id"],
                       "seq": body["seq"]})
    await socket.catch_up(app, body.get("events"))


async def _email_transcript(request: web.Request, socket: VisitorSocket, data: dict) -> None:
    """"Email me this conversation" (crm-bridge sends it, without notes): stored as a
    request on the visitor's conversation, answered `transcript_requested` with the id."""
    if not limits(request.app).messages_per_visitor.allow(socket.visitor_id):
        raise Rejected(429, "rate_limited", "You are sending too fast; wait a moment.")
    await conversation(request.app).command(path("internal", "visitor", "transcript"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "email": data.get("email")})
    await socket.send({"type": "transcript_requested", "id": data.get("id") if isinstance(data.get("id"), str) else None})


async def _follow(app: web.Application, socket: VisitorSocket, conversation_id: str) -> None:
    """The socket follows the visitor's conversation: bound to it on the first command;
    moved to it when a command started the next one after a closed conversation
    (conversations end), telling the widget with a `conversation` frame before any of
    the new conversation's events - their seqs start again at 1. The live list then
    says they are chatting."""
    site_visitors.in_conversation(app, socket.visitor_id, conversation_id, True)
    if socket.conversation_id == conversation_id:
        return
    sockets = app[VISITOR_SOCKETS]
    if socket.conversation_id is None:
        sockets.bind(socket, conversation_id)
        socket.params = {}
        return
    async with socket.lock:
        sockets.discard(socket)   # off the closed conversation, onto the new one
        sockets.add(socket)
        socket.last_seq = socket.read_upto = 0
        sockets.bind(socket, conversation_id)
        socket.params = {}
        await socket.send({"type": "conversation", "conversation_id": conversation_id})
