"""The widget's read receipts: `{"type": "read", "seq": N}` once it has shown the
operators' messages up to N to its visitor (the panel open, the page visible). Stored by
the conversation service as chat.read_by_visitor (receipts.py), which operators see as
"Seen" on their last reply. The operator side is `POST /api/conversations/{id}/read`
(conversations.py passes it on).

A socket passes on only a seq above the last one it passed on, so a widget (or a
script) repeating itself costs nothing upstream; the service ignores what does not
move forward anyway."""
from __future__ import annotations

from aiohttp import web

from parley.http import Rejected
from parley.service_client import path

from gateway.upstreams import conversation


async def from_visitor(app: web.Application, socket, data: dict) -> None:
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise Rejected(422, "seq_invalid", "seq is the last event the widget has shown, a whole number.")
    if socket.conversation_id is None or seq <= socket.read_upto:
        return
    socket.read_upto = seq
    await conversation(app).command(path("internal", "visitor", "read"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "conversation_id": socket.conversation_id,
        "seq": seq})
