"""CSAT at the edge: the widget's rating of a closed conversation (`{"type": "rate", id,
conversation_id, rating, comment}`, answered `rated` or an `error` with the same id) and
the admins' summary (`GET /api/ratings`), both decided by the conversation service
(ratings.py, rating_routes.py)."""
from __future__ import annotations

from aiohttp import web

from parley.http import Rejected, ok
from parley.service_client import path

from gateway import auth
from gateway.rate_limits import limits
from gateway.upstreams import as_operator, conversation


async def from_visitor(app: web.Application, socket, data: dict) -> None:
    if not limits(app).messages_per_visitor.allow(socket.visitor_id):
        raise Rejected(429, "rate_limited", "You are sending too fast; wait a moment.")
    conversation_id = data.get("conversation_id") or socket.conversation_id
    if not isinstance(conversation_id, str):
        raise Rejected(404, "not_found", "Conversation not found.")
    body = await conversation(app).command(path("internal", "visitor", "rating"), {
        "project_id": socket.project_id, "visitor_id": socket.visitor_id, "conversation_id": conversation_id,
        "rating_id": data.get("id"), "rating": data.get("rating"), "comment": data.get("comment")})
    await socket.send({"type": "rated", "id": data.get("id"), "conversation_id": body["conversation_id"]})


async def summary(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    params = {"weeks": request.query["weeks"]} if "weeks" in request.query else None
    return ok(await conversation(request.app).checked("GET", path("api", "ratings"), params=params,
                                                      headers=as_operator(request, me)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/ratings", summary)
