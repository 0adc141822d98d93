"""Project settings only admins see or change, each owned by the service that applies
it, forwarded there with the operator in the signed actor header:

- `GET|PUT /api/project/schedule`: working hours, owned by the scheduler;
- `GET|PUT /api/project/assignment`: how conversations are assigned, owned by the
  conversation service (offers.parse_settings);
- `GET|PUT /api/project/privacy/retention`: after how many days closed conversations are
  erased, owned by the conversation service (erasure_requests.py).

The gateway refuses non-admins before any upstream call; the owning service checks the
admin flag again and owns the rules (422 `<field>_invalid`)."""
from __future__ import annotations

from typing import Callable

from aiohttp import web

from parley.http import MAX_JSON_BYTES, Rejected, read_body
from parley.service_client import ServiceClient, path

from gateway import auth
from gateway.upstreams import as_operator, conversation, relay, scheduler

# setting (the last path segment) -> (the service that owns it, what it is, for the 403)
SETTINGS: dict[str, tuple[Callable[[web.Application], ServiceClient], str]] = {
    "schedule": (scheduler, "the working hours"),
    "assignment": (conversation, "how conversations are assigned"),
    "privacy/retention": (conversation, "how long closed conversations are kept"),
}


def _forward(setting: str):
    upstream, what = SETTINGS[setting]

    async def forward(request: web.Request) -> web.Response:
        me = await auth.current_operator(request)
        if me.get("is_admin") is not True:
            raise Rejected(403, "admin_only", f"Only an admin may see or change {what}.")
        body = await read_body(request, MAX_JSON_BYTES) if request.can_read_body else b""
        answer = await upstream(request.app).call(request.method, path("api", "project", *setting.split("/")),
                                                  body=body, headers=as_operator(request, me),
                                                  content_type=request.headers.get("Content-Type") if body else None)
        return relay(answer)
    return forward


def add_routes(app: web.Application) -> None:
    for setting in SETTINGS:
        handler = _forward(setting)
        app.router.add_get(f"/api/project/{setting}", handler)
        app.router.add_put(f"/api/project/{setting}", handler)
