"""How conversations are assigned (admins only): `GET|PUT /api/project/assignment`,
forwarded to the conversation service with the operator in the signed actor header. The
gateway refuses non-admins before any upstream call; the conversation service checks
again and owns the rules (offers.parse_settings: 422 `<field>_invalid`)."""
from __future__ import annotations

from aiohttp import web

from parley.http import MAX_JSON_BYTES, Rejected, read_body
from parley.service_client import path

from gateway import auth
from gateway.upstreams import as_operator, conversation, relay


async def forward(request: web.Request) -> web.Response:
    me = await auth.current_operator(request)
    if me.get("is_admin") is not True:
        raise Rejected(403, "admin_only", "Only an admin may see or change how conversations are assigned.")
    body = await read_body(request, MAX_JSON_BYTES) if request.can_read_body else b""
    answer = await conversation(request.app).call(request.method, path("api", "project", "assignment"), body=body,
                                                  headers=as_operator(request, me),
                                                  content_type=request.headers.get("Content-Type") if body else None)
    return relay(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/project/assignment", forward)
    app.router.add_put("/api/project/assignment", forward)
