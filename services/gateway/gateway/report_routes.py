"""`GET /api/reports` (issue 24, item 4): forwarded to the scheduler, which keeps the
report rows and the working hours they are counted in (scheduler/reports.py). Admins
only: refused here before any upstream call, and again by the scheduler. The CSV comes
back as a download (Content-Disposition relayed)."""
from __future__ import annotations

from aiohttp import web

from parley.http import Rejected
from parley.service_client import path

from gateway import auth
from gateway.upstreams import as_operator, relay, scheduler

QUERY = ("from", "to", "group", "format")


async def reports(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    if me.get("is_admin") is not True:
        raise Rejected(403, "admin_only", "Only an admin may see reports.")
    params = {k: request.query[k] for k in QUERY if k in request.query}
    answer = await scheduler(request.app).call("GET", path("api", "reports"), params=params,
                                               headers=as_operator(request, me))
    return relay(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/reports", reports)
