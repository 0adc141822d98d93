"""HTTP conventions shared by every service: one error shape, JSON in and out.

A refusal is `Rejected(status, code, message)`, raised anywhere below a handler and
turned by `errors_middleware` into `{"error": {"code": ..., "message": ...}}`."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

MAX_JSON_BYTES = 64 * 1024


class Rejected(Exception):
    """A request refused: HTTP status, machine-readable code, human message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def ok(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except Rejected as e:
        return error_response(e.status, e.code, e.message)


async def read_json(request: web.Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise Rejected(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Rejected(400, "invalid_json", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise Rejected(400, "invalid_json", "The request body must be a JSON object.")
    return body
