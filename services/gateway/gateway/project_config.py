"""A project's public widget configuration (enabled, language, texts, sites), cached
for a few seconds, and the origin rule: the widget is used only from the project's
sites (or from the gateway's own pages, such as /demo)."""
from __future__ import annotations

import time
from collections import OrderedDict
from urllib.parse import urlsplit

from aiohttp import web

from parley.http import Rejected, unavailable
from parley.service_client import path

from gateway.upstreams import registry

TTL_SECONDS = 5.0
MAX_CACHED = 1000
CONFIGS = web.AppKey("project_configs", OrderedDict)


def setup(app: web.Application) -> None:
    app[CONFIGS] = OrderedDict()


async def get(app: web.Application, project_id: object) -> dict:
    if not isinstance(project_id, str) or not project_id:
        raise Rejected(400, "project_required", "Which project? Send {\"project\": \"...\"}.")
    cache = app[CONFIGS]
    cached = cache.get(project_id)
    if cached and time.monotonic() - cached[0] < TTL_SECONDS:
        return cached[1]
    answer = await registry(app).call("GET", path("api", "widget", "config"), params={"project": project_id})
    if answer.status in (404, 422):
        raise Rejected(404, "project_not_found", "No such project.")
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise unavailable("operator-registry")
    cache[project_id] = (time.monotonic(), answer.body)
    cache.move_to_end(project_id)
    while len(cache) > MAX_CACHED:  # only projects that exist are cached, and not too many
        cache.popitem(last=False)
    return answer.body


def origin_allowed(request: web.Request, config: dict) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser; the token still binds it to its own conversation
    return urlsplit(origin).netloc == request.host or origin.rstrip("/") in config.get("sites", [])


def require_allowed_origin(request: web.Request, config: dict) -> None:
    if not origin_allowed(request, config):
        raise Rejected(403, "origin_forbidden", "This site is not among the project's sites.")
