"""Calls to the conversation service."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import ClientError, web

from parley.config import env
from parley.http import Rejected

from gateway.upstream import HTTP

ACTOR_HEADER = "X-Parley-Actor"


def conversation_url() -> str:
    return env("PARLEY_CONVERSATION_URL").rstrip("/")


async def call(app: web.Application, method: str, path: str, *, json: Any = None, params: dict | None = None,
               operator: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, body). Raises Rejected 503 when the service does not answer."""
    headers = dict(headers or {})
    if operator is not None:
        headers[ACTOR_HEADER] = orjson.dumps(operator).decode()
    try:
        async with app[HTTP].request(method, conversation_url() + path, json=json, params=params,
                                     headers=headers) as r:
            return r.status, await r.json(loads=orjson.loads)
    except (ClientError, TimeoutError):
        raise Rejected(503, "service_unavailable", "The conversation service is not answering; try again.")


async def checked(app: web.Application, method: str, path: str, **kwargs) -> Any:
    """The body of a 2xx answer; a refusal is passed on as it is."""
    status, body = await call(app, method, path, **kwargs)
    if status >= 300:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise Rejected(status, error.get("code", "upstream_error"), error.get("message", "Refused."))
    return body
