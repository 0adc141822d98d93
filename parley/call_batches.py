"""Commands that travel together (issue 21): one signed request carries many commands
for one service, and each is answered on its own.

Why: the gateway made one signed HTTP call per visitor message. At 900 messages/s a
third of its CPU, and a quarter of the conversation service's, went to those calls
(parsing, signing and checking the signature, logs and metrics per request). A batch
shares that cost, as the conversation service's transactions share theirs
(conversation/command_batch.py). The caller's side is `ServiceClient.command`.

The wire: `POST /internal/batch {"calls": [{"path": "/internal/visitor/messages",
"body": {...}, "correlation_id": "..."}, ...]}` answers `200 {"answers": [...]}`, one
per call and in order: `{"status": 200, "body": ...}` or `{"status": 4xx|5xx, "error":
{"code", "message"}, "retry_after"?: "1"}`.

- Only paths a service registers with `add_command` travel this way; each is also its
  own route, answered by the same handler, `handler(app, body) -> JSON`.
- Each call gets the answer its own route would give: the same checks of its body
  (parley.http.json_object), the same error shape (parley.http.rejection_of), its own
  correlation id in the logs, and its own place in admission (parley.admission): a
  batch of 50 is 50 commands, and the ones beyond the bound are answered `busy`.
- The calls of a batch run concurrently, so they meet in the service's next
  transaction; one refused or failing call fails only itself."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import Counter

from parley import logs
from parley.admission import ADMISSION
from parley.http import Rejected, json_object, ok, read_body, read_json, rejection_of

log = logging.getLogger(__name__)

BATCH_PATH = "/internal/batch"
# What one batch may carry: the calls of one round trip (the caller's Batcher takes at
# most this many) in the app's client_max_size (1 MiB), which the caller keeps under.
MAX_CALLS = 200

JsonHandler = Callable[[web.Application, dict[str, Any]], Awaitable[Any]]
COMMANDS = web.AppKey("batchable_commands", dict)
CALLS = Counter("parley_batch_calls_total", "Commands answered as calls of a batch", ["path", "status"])


def setup(app: web.Application) -> None:
    """The batch route of an internal service (parley.service, for every one)."""
    app[COMMANDS] = {}
    app.router.add_post(BATCH_PATH, _batch)


def add_command(app: web.Application, path: str, handler: JsonHandler) -> None:
    """`handler` answers `POST path` alone, and as a call of a batch."""
    app[COMMANDS][path] = handler

    async def route(request: web.Request) -> web.Response:
        return ok(await handler(request.app, await read_json(request)))

    app.router.add_post(path, route)


async def _batch(request: web.Request) -> web.Response:
    raw = await read_body(request, request.client_max_size)
    try:
        calls = orjson.loads(raw).get("calls")
    except (orjson.JSONDecodeError, AttributeError):
        calls = None
    if not isinstance(calls, list) or not 1 <= len(calls) <= MAX_CALLS or not all(isinstance(c, dict) for c in calls):
        raise Rejected(400, "batch_invalid", f'A batch is {{"calls": [{{"path", "body"}}, ...]}}, 1-{MAX_CALLS} calls.')
    answers = await asyncio.gather(*(_answer(request.app, call) for call in calls))
    return ok({"answers": answers})


async def _answer(app: web.Application, call: dict[str, Any]) -> dict[str, Any]:
    """One call's answer, as its own route would give it. Runs in its own task (gather),
    so the correlation id set here is this call's only."""
    path = call.get("path")
    handler = app[COMMANDS].get(path) if isinstance(path, str) else None
    logs.correlation_id.set(logs.correlation_id_from(call.get("correlation_id")))
    try:
        if handler is None:
            raise Rejected(404, "not_batchable", f"{str(path)[:100]!r} is not a command this service takes in a batch.")
        body = json_object(call.get("body"))
        async with app[ADMISSION]:
            answer: dict[str, Any] = {"status": 200, "body": await handler(app, body)}
    except Exception as e:
        rejected = rejection_of(e)
        if rejected is None:   # a bug: this call's 500, logged; the batch's other calls stand
            log.exception("a call of a batch failed", extra={"path": path})
            rejected = Rejected(500, "internal_error", "Parley failed on this request; it has been logged.")
        answer = {"status": rejected.status, "error": {"code": rejected.code, "message": rejected.message}}
        if "Retry-After" in rejected.headers:
            answer["retry_after"] = rejected.headers["Retry-After"]
    CALLS.labels(path if handler else "unknown", str(answer["status"])).inc()
    return answer
