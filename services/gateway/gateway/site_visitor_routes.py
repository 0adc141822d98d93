"""`GET /api/visitors/live` and `POST /api/visitors/{visitor_id}/invite` (issue 24,
items 2 and 3): the visitors on the project's site now (live/site_visitors.py), and an
operator's invitation to one of them.

Every operator of the project sees its live visitors (a visit is not a conversation:
it holds no messages). An invitation goes to a visitor on the site who is not chatting,
while the chat is open; the widget opens with the operator's words, and the visitor's
answer starts a conversation assigned to that operator, with the invitation as its
first message (conversation/domain.py, decide_invited)."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from aiohttp import web

from parley.http import Rejected, ok, read_json, unavailable

from gateway import auth
from gateway.live import availability, site_visitors, site_visits
from gateway.rate_limits import limits

LIST_MAX = 1000


async def live_visitors(request: web.Request) -> web.Response:
    """The project's live visitors, the newest visit first (at most LIST_MAX; `total`
    counts them all). The app keeps the list current from `visitors` frames."""
    me = await auth.current_operator(request)
    visits = sorted(site_visitors.table(request.app).of_project(me["project"]),
                    key=lambda v: v["started_at"], reverse=True)
    return ok({"visitors": visits[:LIST_MAX], "total": len(visits), "now": int(time.time() * 1000)})


async def invite(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    visitor_id = request.match_info["visitor_id"]
    body = await read_json(request)
    try:
        words = site_visits.invitation_text(body.get("text"))
    except ValueError as e:
        raise Rejected(422, str(e), f"Write the invitation: 1-{site_visits.INVITATION_TEXT_MAX} characters.")
    live = site_visitors.table(request.app)
    known = live.known.get(visitor_id)
    if known is None or known.visit["project_id"] != me["project"]:
        raise Rejected(404, "visitor_not_here", "This visitor is no longer on the site.")
    if known.visit["chatting"]:
        raise Rejected(409, "visitor_chatting", "This visitor is chatting already: answer in their conversation.")
    is_open, next_open_at = await availability.now_open(request.app, me["project"])
    if not is_open:
        raise Rejected(409, "chat_closed", f"The chat is closed now (working hours); it opens at {next_open_at}.")
    if not limits(request.app).invites_per_operator.allow(me["id"]):
        raise Rejected(429, "rate_limited", "Too many invitations at once; wait a minute.",
                       headers={"Retry-After": "60"})
    now = datetime.now(timezone.utc)
    invitation = {"id": str(uuid.uuid4()), "operator_id": me["id"], "operator_name": me["name"],
                  "operator_avatar_url": me.get("avatar_url"), "text": words,
                  "at": now.isoformat(timespec="milliseconds"),
                  "expires_at": int(now.timestamp() * 1000) + site_visitors.INVITATION_SECONDS * 1000}
    sent = await site_visitors.send_invitation(request.app, visitor_id, me["project"], invitation)
    if not sent and visitor_id not in live.here:   # held by another gateway, which could not be told
        raise unavailable("The message broker")
    return ok({"invitation": {k: v for k, v in invitation.items() if k != "expires_at"}}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/visitors/live", live_visitors)
    app.router.add_post("/api/visitors/{visitor_id}/invite", invite)
