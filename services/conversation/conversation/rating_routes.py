"""CSAT over HTTP (ratings.py decides): the widget's rating of a closed conversation,
and the admins' summary per operator and per week, a query over the `ratings` table
(projection.py fills it from chat.rated)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from parley import call_batches
from parley.contract import canonical_uuid
from parley.http import Rejected, ok
from parley.service import POOL, STORE

from conversation import commands, handlers, ratings
from conversation.routes import operator_of

WEEKS_MAX = 52
RECENT = 20


async def visitor_rating(app: web.Application, body: dict[str, Any]) -> dict[str, Any]:
    """POST /internal/visitor/rating {project_id, visitor_id, conversation_id, rating,
    comment, rating_id}: `rating_id` is the widget's id for the rating, so a resend
    returns the first answer and a second rating is refused (409 already_rated)."""
    project_id, visitor_id = handlers.visitor_of(body)
    conversation_id = canonical_uuid(body.get("conversation_id"))
    if conversation_id is None:
        raise Rejected(404, "not_found", "Conversation not found.")
    rating_id = body.get("rating_id")
    if not handlers.text(rating_id, handlers.MESSAGE_ID_MAX):
        raise Rejected(422, "rating_id_required", "Every rating carries the widget's id for it.")
    await commands.run(app[STORE], f"rating:{project_id}:{visitor_id}:{rating_id}", conversation_id,
                       lambda s: ratings.decide_rating(s if s is None or s.project_id == project_id else None, visitor_id,
                                                       body.get("rating"), body.get("comment")))
    return {"conversation_id": conversation_id, "rated": True}


async def summary(request: web.Request) -> web.Response:
    """GET /api/ratings?weeks=N (admins): per operator and ISO week (Monday, UTC) the
    number of ratings and their average, the same per operator over the whole period,
    and the latest ratings with their comments."""
    me = operator_of(request)
    if not me.is_admin:
        raise Rejected(403, "forbidden", "Only admins see the ratings.")
    try:
        weeks = int(request.query.get("weeks", "8"))
    except ValueError:
        weeks = 0
    if not 1 <= weeks <= WEEKS_MAX:
        raise Rejected(422, "weeks_invalid", f"weeks is 1-{WEEKS_MAX}.")
    pool = request.app[POOL]
    since = "date_trunc('week', now() at time zone 'utc') - make_interval(weeks => $2 - 1)"
    by_week = await pool.fetch(
        f"""select to_char(date_trunc('week', rated_at at time zone 'utc'), 'YYYY-MM-DD') as week,
                   operator_id::text, max(operator_name) as operator_name, count(*) as ratings,
                   round(avg(rating), 2)::float as average
            from ratings where project_id = $1 and rated_at at time zone 'utc' >= {since}
            group by 1, 2 order by 1 desc, 3 nulls last""", me.project_id, weeks)
    by_operator = await pool.fetch(
        f"""select operator_id::text, max(operator_name) as operator_name, count(*) as ratings,
                   round(avg(rating), 2)::float as average
            from ratings where project_id = $1 and rated_at at time zone 'utc' >= {since}
            group by 1 order by 2 nulls last""", me.project_id, weeks)
    recent = await pool.fetch(
        """select conversation_id::text, operator_name, rating, comment, rated_at from ratings
           where project_id = $1 order by rated_at desc limit $2""", me.project_id, RECENT)
    return ok({"weeks": weeks, "by_week": [dict(r) for r in by_week], "by_operator": [dict(r) for r in by_operator],
               "recent": [{**dict(r), "rated_at": r["rated_at"].isoformat()} for r in recent]})


def add_routes(app: web.Application) -> None:
    call_batches.add_command(app, "/internal/visitor/rating", visitor_rating)
    app.router.add_get("/api/ratings", summary)
