"""Read receipts over HTTP (receipts.py decides): an operator opening a conversation,
the widget having shown the operators' messages. Both are commands on the conversation
that append at most one event, and nothing when the seq does not move forward."""
from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from parley import call_batches
from parley.contract import canonical_uuid
from parley.http import Rejected, read_json

from conversation import api, receipts


async def operator_read(request: web.Request) -> web.Response:
    """POST /api/conversations/{id}/read {"seq": N}: the operator shows it up to N."""
    body = await read_json(request)
    return await api._operator_command(request, "read",
                                       lambda s, me, _: receipts.decide_operator_read(s, me, body.get("seq")))


async def visitor_read(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """POST /internal/visitor/read {project_id, visitor_id, conversation_id, seq}."""
    project_id, visitor_id = api._visitor(body)
    conversation_id = canonical_uuid(body.get("conversation_id"))
    if conversation_id is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    outcome = await api.run(app, f"visitor-read:{uuid.uuid4()}", conversation_id,
                            lambda s: receipts.decide_visitor_read(
                                s if s is None or s.project_id == project_id else None, visitor_id, body.get("seq")))
    return {"conversation_id": conversation_id, "read": bool(outcome.events)}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/conversations/{id}/read", operator_read)
    call_batches.add_command(app, "/internal/visitor/read", visitor_read)
