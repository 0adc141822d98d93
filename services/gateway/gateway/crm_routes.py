"""The CRM and email routes (admins only), forwarded to crm-bridge with the operator in
the signed actor header. The gateway refuses non-admins and bad ids before any upstream
call; crm-bridge checks the admin flag again and owns the rules and the secrets."""
from __future__ import annotations

from aiohttp import web

from parley.http import MAX_JSON_BYTES, Rejected, id_in_path, read_body
from parley.service_client import path

from gateway import auth
from gateway.upstreams import as_operator, crm, relay

async def _admin(request: web.Request) -> dict:
    me = await auth.current_operator(request)
    if me.get("is_admin") is not True:
        raise Rejected(403, "admin_only", "Only an admin may see or change the CRM and email settings.")
    return me


def forwarder(*segments: str, with_id: bool = False):
    async def forward(request: web.Request) -> web.Response:
        me = await _admin(request)
        upstream = list(segments)
        if with_id:
            request_id = id_in_path(request, "No such delivery.")
            upstream.insert(-1, request_id)
        body = await read_body(request, MAX_JSON_BYTES) if request.can_read_body else b""
        answer = await crm(request.app).call(request.method, path(*upstream), body=body,
                                             headers=as_operator(request, me),
                                             content_type=request.headers.get("Content-Type") if body else None)
        return relay(answer)
    return forward


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/project/crm", forwarder("api", "project", "crm"))
    app.router.add_put("/api/project/crm", forwarder("api", "project", "crm"))
    app.router.add_post("/api/project/crm/test", forwarder("api", "project", "crm", "test"))
    app.router.add_get("/api/project/crm/deliveries", forwarder("api", "project", "crm", "deliveries"))
    app.router.add_post("/api/project/crm/deliveries/{id}/retry",
                        forwarder("api", "project", "crm", "deliveries", "retry", with_id=True))
    # Transcripts by email (crm_bridge/email_deliveries.py).
    app.router.add_get("/api/project/email", forwarder("api", "project", "email"))
    app.router.add_put("/api/project/email", forwarder("api", "project", "email"))
    app.router.add_post("/api/project/email/test", forwarder("api", "project", "email", "test"))
    app.router.add_get("/api/project/email/deliveries", forwarder("api", "project", "email", "deliveries"))
