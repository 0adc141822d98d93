"""The widget's REST calls: its configuration, a visitor session (a signed visitor token)
and file uploads.

New visitor tokens are limited per client address: a token costs nothing to mint, and
every one can open sockets and upload files."""
from __future__ import annotations

from aiohttp import web

from parley.http import Rejected, ok, read_json
from parley.service_client import path

from gateway import auth, availability, files, presence, project_config, verified_visitors, visitor_tokens
from gateway.client_ip import client_ip
from gateway.rate_limits import limits
from gateway.upstreams import as_caller, registry, relay


async def widget_config(request: web.Request) -> web.Response:
    """The registry's widget configuration, plus whether the chat is open now and when
    it next opens (`open`, `next_open_at`: docs/working-hours.md) and whether an
    operator is online (`online`: presence.py)."""
    project_id = request.query.get("project")
    answer = await registry(request.app).call("GET", path("api", "widget", "config"), headers=as_caller(request),
                                              params={"project": project_id} if project_id is not None else None)
    if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("project"), str):
        return relay(answer)
    is_open, next_open_at = await availability.now_open(request.app, answer.body["project"])
    online = await presence.someone_online(request.app, answer.body["project"])
    return ok({**answer.body, "open": is_open, "next_open_at": next_open_at, "online": online})


async def visitor_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    project_id = body.get("project")
    config = await project_config.get(request.app, project_id)
    project_config.require_allowed_origin(request, config)
    if not config["enabled"]:
        raise Rejected(409, "chat_disabled", "The chat is switched off for this site.")
    previous = visitor_tokens.verify(body.get("visitor_token"))
    if previous and previous[0] != project_id:
        previous = None
    # Parley.identify (verified_visitors.py): a valid hash makes this the verified visitor;
    # anything else leaves the visitor anonymous and says why (never an error). A verified
    # visitor's token kept in a browser whose claim no longer verifies is not reused.
    verified, extra = None, {}
    if body.get("identity") is not None:
        verified, reason = await verified_visitors.check(request.app, project_id, body["identity"])
        extra = {"verified": verified is not None, **({"reason": reason} if reason else {})}
        if previous and previous[1] != verified and (verified or verified_visitors.is_verified(previous[1])):
            previous = None
        if verified:
            await verified_visitors.remember(request.app, project_id, verified, body["identity"])
    if previous:
        return ok({"visitor_token": body["visitor_token"], "visitor_id": previous[1], **extra}, status=201)
    if not limits(request.app).visitor_sessions_per_address.allow(client_ip(request)):
        raise Rejected(429, "rate_limited", "Too many new visitors from this address; wait a minute.",
                       headers={"Retry-After": "60"})
    token, visitor_id = visitor_tokens.issue(project_id, verified)
    return ok({"visitor_token": token, "visitor_id": visitor_id, **extra}, status=201)


async def visitor_attachment(request: web.Request) -> web.Response:
    project_id, visitor_id, _ = await auth.visitor(request, request.query.get("token"))
    if not limits(request.app).uploads_per_address.allow(client_ip(request)):
        raise Rejected(429, "rate_limited", "Too many uploads from this address; wait a minute.",
                       headers={"Retry-After": "60"})
    return files.uploaded(await files.store_upload(request, project_id, f"visitor:{visitor_id}"))
