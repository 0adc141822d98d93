"""HTTP conventions shared by every service: one error shape, JSON in and out.

A refusal is `Rejected(status, code, message)` (or a domain's DomainError), raised anywhere
below a handler and turned by `errors_middleware` into `{"error": {"code": ..., "message": ...}}`.
The same mapping (`rejection_of`) gives every other failure its final answer: bad input that only the
database or the event schema noticed is a 422, an outage of PostgreSQL, or a stream that
kept moving under a command, is a 503 with Retry-After (the only answers that ask the
client to try again), and aiohttp's own
refusals (404, 405, 413) take the same JSON shape."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from parley.contract import canonical_uuid
from parley.domain_error import STATUS_OF, DomainError
from parley.eventstore import ConcurrencyConflict
from parley.schemas import SchemaViolation

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = "2"


class Rejected(Exception):
    """A request refused: HTTP status, machine-readable code, human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def unavailable(what: str) -> Rejected:
    return Rejected(503, "service_unavailable", f"{what} is not answering; try again in a moment.",
                    headers={"Retry-After": RETRY_AFTER_SECONDS})


BUSY_RETRY_AFTER_SECONDS = "1"


def busy() -> Rejected:
    """Too much at once (admission control, an upstream's bulkhead): refused before
    anything was stored, so resending is safe."""
    return Rejected(503, "busy", "Parley is busy right now; send it again in a moment. Nothing was stored.",
                    headers={"Retry-After": BUSY_RETRY_AFTER_SECONDS})


def busy_storing() -> Rejected:
    """A stream that kept moving under a command (ConcurrencyConflict, retried already):
    nothing was stored, so resending is safe."""
    return Rejected(503, "busy", "Could not store this right now; send it again.",
                    headers={"Retry-After": RETRY_AFTER_SECONDS})


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers={"X-Content-Type-Options": "nosniff", **(headers or {})})


def ok(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# The database is down, restarting or out of connections: a fault, so "try again".
_OUTAGES = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError)

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
               415: "unsupported_media_type"}


def rejection_of(e: Exception) -> Rejected | None:
    """The final answer to a failure below a handler, or None for a bug (a 500).

    Input the handlers let through but the event contract or the database did not is
    final (422), never a fault; an outage of PostgreSQL is a 503 with Retry-After, the
    only answer that asks the client to try again."""
    if isinstance(e, Rejected):
        return e
    if isinstance(e, DomainError):
        return Rejected(STATUS_OF[e.kind], e.code, e.message)
    if isinstance(e, ConcurrencyConflict):
        return busy_storing()
    if isinstance(e, SchemaViolation):
        log.warning("refused by the event schema", extra={"reason": str(e)[:500]})
        return Rejected(422, "event_invalid", "The request holds a value Parley cannot store: " + str(e)[:300])
    if isinstance(e, asyncpg.DataError):
        return Rejected(422, "invalid_input", f"A value in the request cannot be stored: {e.__class__.__name__}.")
    if isinstance(e, _OUTAGES) and not (isinstance(e, OSError) and e.filename is not None):
        # (a file of ours that is missing is a bug, not an outage: a socket's errors carry no file name)
        log.warning("refused during an outage", extra={"error": repr(e)[:300]})
        return Rejected(503, "service_unavailable", "Parley's database is not answering; try again in a moment.",
                        headers={"Retry-After": RETRY_AFTER_SECONDS})
    return None


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        code = _HTTP_CODES.get(e.status, f"http_{e.status}")
        headers = {k: v for k, v in e.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(e.status, code, e.reason, headers)
    except Exception as e:
        rejected = rejection_of(e)
        if rejected is None:
            raise
        return error_response(rejected.status, rejected.code, rejected.message, rejected.headers)
    if not response.prepared:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however many packets it arrives in; 413 above `limit` bytes
    (counted on the bytes that arrive, so a chunked body cannot slip past it)."""
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    if limit > request.client_max_size:  # larger than the app reads at once (an avatar): stream it
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise Rejected(413, "body_too_large", f"Request body is larger than {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)
    try:
        raw = await request.read()  # loops until the end of the body; cached for later readers
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    if len(raw) > limit:
        raise Rejected(413, "body_too_large", f"Request body is larger than {limit} bytes.")
    return raw


def id_in_path(request: web.Request, message: str, name: str = "id") -> str:
    """The path parameter `name` as a canonical UUID; any other spelling (`urn:uuid:`,
    braces, bare hex) or anything else is 404 `not_found` with `message`."""
    found = canonical_uuid(request.match_info[name])
    if found is None:
        raise Rejected(404, "not_found", message)
    return found


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def read_json(request: web.Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The body as a JSON object. An empty body is `{}`; anything else must say it is JSON
    (a form a foreign page submits cannot), and no string in it may hold a NUL."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    if request.content_type != "application/json":
        raise Rejected(415, "json_required", "Send the body as JSON with Content-Type: application/json.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Rejected(400, "invalid_json", "The request body is not valid JSON.")
    return json_object(body)


def json_object(body: Any) -> dict[str, Any]:
    """`body` if it is a JSON object with no NUL in any string (a request's, or one call's of a batch)."""
    if not isinstance(body, dict):
        raise Rejected(400, "invalid_json", "The request body must be a JSON object.")
    if _has_nul(body):
        raise Rejected(422, "nul_character", "Text may not contain NUL characters.")
    return body
