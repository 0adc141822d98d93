"""Operator avatars: upload (validated by content, stored under a generated name in
PostgreSQL, like attachments, so every gateway replica serves them) and serving the
widget-sized copy."""
from __future__ import annotations

import re
import secrets

from aiohttp import web

from parley.http import Rejected, id_in_path, ok, read_body
from parley.service import POOL
from parley.service_client import path, refusal

from gateway import auth
from gateway.avatars import MAX_AVATAR_BYTES, AvatarRejected, validate_avatar
from gateway.upstreams import as_caller, registry

_AVATAR_NAME = re.compile(r"^[a-f0-9]{32}$")


async def upload(request: web.Request) -> web.Response:
    """PUT /api/operators/{id}/avatar with the image as the request body."""
    operator_id = id_in_path(request, "Operator not found.")
    token, _ = auth.session_token(request)
    if token is None:
        raise Rejected(401, "unauthenticated", "Log in first: this needs an operator session.")
    client, headers = registry(request.app), as_caller(request, token)
    # Permission first: nobody stores a file for an operator they may not edit.
    allowed = await client.call("GET", path("internal", "operators", operator_id, "avatar-permission"),
                                headers=headers)
    auth.take_rotation(request, allowed)
    if allowed.status != 204:
        raise refusal(allowed)
    try:
        data = await read_body(request, MAX_AVATAR_BYTES)
    except Rejected:
        raise Rejected(413, "avatar_file_too_large",
                       f"The avatar file must be at most 10 MiB ({MAX_AVATAR_BYTES} bytes).")
    try:
        avatar = validate_avatar(data)
    except AvatarRejected as e:
        raise Rejected(422, e.code, e.message)
    avatar_id = secrets.token_hex(16)
    pool = request.app[POOL]
    await pool.execute("insert into avatars (id, widget, original, original_type) values ($1, $2, $3, $4)",
                       avatar_id, avatar.widget, avatar.original,
                       "image/png" if avatar.format == "png" else "image/jpeg")
    try:
        stored = await client.call("PUT", path("internal", "operators", operator_id, "avatar"),
                                   json={"avatar_id": avatar_id}, headers=headers)
        auth.take_rotation(request, stored)
        if stored.status >= 300:
            raise refusal(stored)
    except Rejected:
        await pool.execute("delete from avatars where id = $1", avatar_id)
        raise
    return ok(stored.body)


async def serve(request: web.Request) -> web.StreamResponse:
    """GET /avatars/{name}.png - the 96 px copy shown in the widget and the app."""
    name = request.match_info["name"]
    widget = await request.app[POOL].fetchval("select widget from avatars where id = $1", name) \
        if _AVATAR_NAME.match(name) else None
    if widget is None:
        raise web.HTTPNotFound()
    return web.Response(body=widget, headers={"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "public, max-age=31536000, immutable"})
