"""The gateway's upstream services, one client each (parley.service_client: signed,
no cookie jar, paths from quoted segments, one error handling).

    registry(app).checked("GET", path("api", "operators", operator_id), headers=...)

`as_operator(request, operator)` and `as_caller(request)` give the headers a call
carries: who acts, from which address, with which credentials (all of them signed)."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from parley import internal_auth
from parley.config import env
from parley.contract import ACTOR_HEADER, CLIENT_ADDRESS_HEADER
from parley.http import Rejected, unavailable
from parley.service_client import Answer, ServiceClient, new_session, path

from gateway.client_ip import client_ip

REGISTRY = web.AppKey("registry", ServiceClient)
CONVERSATION = web.AppKey("conversation", ServiceClient)
CRM = web.AppKey("crm", ServiceClient)
SCHEDULER = web.AppKey("scheduler", ServiceClient)


async def clients(app: web.Application):
    """Cleanup context: one HTTP session (no cookie jar) shared by the clients."""
    key = internal_auth.secret()
    async with new_session() as session:
        app[REGISTRY] = ServiceClient("operator-registry", env("PARLEY_OPERATOR_REGISTRY_URL").rstrip("/"),
                                      session, key)
        app[CONVERSATION] = ServiceClient("conversation", env("PARLEY_CONVERSATION_URL").rstrip("/"), session, key)
        app[CRM] = ServiceClient("crm-bridge", env("PARLEY_CRM_BRIDGE_URL").rstrip("/"), session, key)
        app[SCHEDULER] = ServiceClient("scheduler", env("PARLEY_SCHEDULER_URL").rstrip("/"), session, key)
        yield


def registry(app: web.Application) -> ServiceClient:
    return app[REGISTRY]


def conversation(app: web.Application) -> ServiceClient:
    return app[CONVERSATION]


def crm(app: web.Application) -> ServiceClient:
    return app[CRM]


def scheduler(app: web.Application) -> ServiceClient:
    return app[SCHEDULER]


def as_caller(request: web.Request, token: str | None = None) -> dict[str, str]:
    """Headers for a call made on behalf of this request's client: its address, its
    session token (from the cookie or the bearer header), its idempotency key."""
    headers = {CLIENT_ADDRESS_HEADER: client_ip(request)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for name in ("Idempotency-Key", "X-Correlation-Id", "Accept-Language", "User-Agent"):
        value = request.headers.get(name)
        if value is None:
            continue
        if not (value.isascii() and value.isprintable()):  # it could not be signed nor sent on
            if name == "Idempotency-Key":
                raise Rejected(422, "idempotency_key_invalid", "Idempotency-Key is printable ASCII characters.")
            continue
        headers[name] = value
    return headers


def as_operator(request: web.Request, operator: dict[str, Any]) -> dict[str, str]:
    """Headers for a call made by an authenticated operator."""
    actor = {k: operator.get(k) for k in ("id", "project", "name", "is_admin", "avatar_url", "email")}
    return {**as_caller(request), ACTOR_HEADER: orjson.dumps(actor).decode()}


_RELAYED_HEADERS = ("Content-Type", "Retry-After", "Content-Disposition")


def relay(answer: Answer) -> web.Response:
    """An upstream answer passed on to the client as it is (status, body, type, Retry-After)."""
    response = web.Response(status=answer.status, body=answer.raw)
    for name in _RELAYED_HEADERS:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    return response


async def conversation_summary(app: web.Application, conversation_id: str) -> dict | None:
    """Who may see a conversation (`project_id`, `assignee_id`), None if there is none;
    503 if the conversation service cannot say."""
    answer = await conversation(app).call("GET", path("internal", "conversations", conversation_id, "summary"))
    if answer.status >= 500:
        raise unavailable("The conversation service")
    return answer.body if answer.status == 200 else None
