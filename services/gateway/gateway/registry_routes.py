"""The public REST routes that operator-registry owns, forwarded one by one.

Each route is listed with its method; an `{id}` (every path parameter) must be a UUID before anything is sent
upstream, and the upstream path is rebuilt from quoted segments - never pasted from the
request - so no encoded `../`, `?` or CR/LF can reach another route. The registry
authenticates the session token and applies its permission rules; the gateway adds
the client's address and owns the session cookie (set on login and rotation, cleared
on logout)."""
from __future__ import annotations

from aiohttp import web

from parley.contract import canonical_uuid
from parley.http import MAX_JSON_BYTES, Rejected, read_body
from parley.service_client import path

from gateway import auth
from gateway.upstreams import as_caller, registry, relay

# (method, public path); the upstream path is the same with `{id}` checked and quoted.
ROUTES = [
    ("POST", "/api/session"),
    ("GET", "/api/session"),
    ("DELETE", "/api/session"),
    ("GET", "/api/project"),
    ("POST", "/api/project/chat/enable"),
    ("POST", "/api/project/chat/disable"),
    ("PUT", "/api/project/widget"),
    ("PUT", "/api/project/sites"),
    ("PUT", "/api/project/triggers"),
    ("GET", "/api/widget/texts"),
    ("GET", "/api/operators"),
    ("POST", "/api/operators"),
    ("GET", "/api/operators/{id}"),
    ("PATCH", "/api/operators/{id}"),
    ("DELETE", "/api/operators/{id}"),
    ("POST", "/api/operators/{id}/deactivate"),
    ("POST", "/api/operators/{id}/reactivate"),
    ("GET", "/api/templates"),
    ("POST", "/api/templates"),
    ("PATCH", "/api/templates/{id}"),
    ("DELETE", "/api/templates/{id}"),
    ("GET", "/api/presence"),
    ("PUT", "/api/presence"),
    ("GET", "/api/project/identity-secret"),
    ("POST", "/api/project/identity-secret/rotate"),
    ("GET", "/api/project/audit"),
    ("GET", "/api/me/two-factor"),
    ("POST", "/api/me/two-factor/enrol"),
    ("POST", "/api/me/two-factor/confirm"),
    ("DELETE", "/api/me/two-factor"),
    ("POST", "/api/operators/{id}/two-factor/reset"),
    ("GET", "/api/project/two-factor"),
    ("PUT", "/api/project/two-factor"),
    ("GET", "/api/me/sessions"),
    ("POST", "/api/me/sessions/end-others"),
    ("DELETE", "/api/me/sessions/{session_id}"),
    ("GET", "/api/operators/{id}/sessions"),
    ("DELETE", "/api/operators/{id}/sessions/{session_id}"),
]
_QUERY_PARAMS = {"/api/templates": ("q",), "/api/project/audit": ("after", "limit")}
# GET /api/widget/config is visitor_api.widget_config: the registry's answer plus the working hours.


def upstream_path(template: str, request: web.Request) -> str:
    segments = []
    for segment in template.strip("/").split("/"):
        if segment.startswith("{"):   # every path parameter here is an id: {id}, {session_id}
            segment = canonical_uuid(request.match_info[segment[1:-1]])
            if segment is None:
                raise Rejected(404, "not_found", "No such resource: ids are UUIDs.")
        segments.append(segment)
    return path(*segments)


def forwarder(template: str):
    async def forward(request: web.Request) -> web.Response:
        upstream = upstream_path(template, request)
        body = await read_body(request, MAX_JSON_BYTES) if request.can_read_body else b""
        login = template == "/api/session" and request.method == "POST"
        # A login acts for nobody yet: an older session the client still holds is not sent
        # (the registry would rotate it, and its token would replace the new login's).
        token = None if login else auth.session_token(request)[0]
        params = {k: request.query[k] for k in _QUERY_PARAMS.get(template, ()) if k in request.query}
        answer = await registry(request.app).call(
            request.method, upstream, body=body, params=params or None, headers=as_caller(request, token),
            content_type=request.headers.get("Content-Type") if body else None)
        response = relay(answer)
        if login:
            if answer.status == 201:
                auth.set_session_cookie(request, response, answer.body["token"])
        else:
            auth.take_rotation(request, answer)
        if template == "/api/session" and request.method == "DELETE" and answer.status < 300:
            request[auth.SESSION_CLEARED] = True
            auth.clear_session_cookie(request, response)
        return response
    return forward


def add_routes(app: web.Application) -> None:
    for method, template in ROUTES:
        app.router.add_route(method, template, forwarder(template))
