"""The working-hours routes (admins only), forwarded to the scheduler with the operator
in the signed actor header. The gateway refuses non-admins before any upstream call;
the scheduler checks the admin flag again and owns the rules (422 `<field>_invalid`)."""
from __future__ import annotations

from aiohttp import web

from parley.http import MAX_JSON_BYTES, Rejected, read_body
from parley.service_client import path

from gateway import auth
from gateway.upstreams import as_operator, relay, scheduler


async def forward(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    if me.get("is_admin") is not True:
        raise Rejected(403, "admin_only", "Only an admin may see or change the working hours.")
    body = await read_body(request, MAX_JSON_BYTES) if request.can_read_body else b""
    answer = await scheduler(request.app).call(request.method, path("api", "project", "schedule"), body=body,
                                               headers=as_operator(request, me),
                                               content_type=request.headers.get("Content-Type") if body else None)
    return relay(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/project/schedule", forward)
    app.router.add_put("/api/project/schedule", forward)
