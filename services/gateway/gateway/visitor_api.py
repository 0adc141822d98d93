"""The widget's REST calls: its configuration, a visitor session (a signed visitor token)
and file uploads.

New visitor tokens are limited per client address: a token costs nothing to mint, and
every one can open sockets and upload files."""
from __future__ import annotations

import time

from aiohttp import web

from parley.http import Rejected, ok, read_json
from parley.service_client import path

from gateway import auth, files, project_config, verified_visitors, visitor_tokens
from gateway.live import visitor_availability
from gateway.client_ip import client_ip
from gateway.rate_limits import limits
from gateway.upstreams import as_caller, registry, relay


async def widget_config(request: web.Request) -> web.Response:
    """The registry's widget configuration, plus whether the chat is open now and when
    it next opens (`open`, `next_open_at`: docs/working-hours.md) and whether an
    operator is online (`online`): the availability frame's fields (visitor_availability.py)."""
    project_id = request.query.get("project")
    answer = await registry(request.app).call("GET", path("api", "widget", "config"), headers=as_caller(request),
                                              params={"project": project_id} if project_id is not None else None)
    if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("project"), str):
        return relay(answer)
    available = await visitor_availability.frame(request.app, answer.body["project"])
    return ok({**answer.body, "open": available["open"], "next_open_at": available["next_open_at"],
               "online": available["online"]})


async def visitor_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    project_id = body.get("project")
    config = await project_config.get(request.app, project_id)
    project_config.require_allowed_origin(request, config)
    if not config["enabled"]:
        raise Rejected(409, "chat_disabled", "The chat is switched off for this site.")
    previous = visitor_tokens.verify(body.get("visitor_token"))
    if previous and (previous.project_id != project_id or not await verified_visitors.still_verified(
            request.app, previous)):
        previous = None
    # Parley.identify (verified_visitors.py): a valid hash makes this the verified visitor,
    # with a fresh token (the same visitor id, so their history follows); anything else
    # leaves the visitor anonymous and says why (never an error). A verified visitor's
    # token whose page no longer vouches for them (no identity: the user logged out, or
    # Parley.reset()) is not reused: the next person in that browser is someone else.
    extra: dict = {}
    if body.get("identity") is not None:
        verdict = await verified_visitors.check(request.app, project_id, body["identity"])
        extra = {"verified": verdict.visitor_id is not None, **({"reason": verdict.reason} if verdict.reason else {})}
        if verdict.visitor_id:
            await verified_visitors.remember(request.app, project_id, verdict.visitor_id, body["identity"])
            token, _ = visitor_tokens.issue(project_id, verdict.visitor_id, generation=verdict.generation,
                                            expires_at=time.time() + verified_visitors.VERIFIED_TOKEN_SECONDS)
            return ok({"visitor_token": token, "visitor_id": verdict.visitor_id, **extra}, status=201)
    if previous and not verified_visitors.is_verified(previous.visitor_id):
        return ok({"visitor_token": body["visitor_token"], "visitor_id": previous.visitor_id, **extra}, status=201)
    if not limits(request.app).visitor_sessions_per_address.allow(client_ip(request)):
        raise Rejected(429, "rate_limited", "Too many new visitors from this address; wait a minute.",
                       headers={"Retry-After": "60"})
    token, visitor_id = visitor_tokens.issue(project_id)
    return ok({"visitor_token": token, "visitor_id": visitor_id, **extra}, status=201)


async def visitor_attachment(request: web.Request) -> web.Response:
    token, _ = await auth.visitor(request)
    project_id, visitor_id = token.project_id, token.visitor_id
    if not limits(request.app).uploads_per_address.allow(client_ip(request)):
        raise Rejected(429, "rate_limited", "Too many uploads from this address; wait a minute.",
                       headers={"Retry-After": "60"})
    return files.uploaded(await files.store_upload(request, project_id, f"visitor:{visitor_id}"))
