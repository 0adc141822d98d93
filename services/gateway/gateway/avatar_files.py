"""Operator avatars: upload (validated by content, stored under a generated name) and
serving the widget-sized copy."""
from __future__ import annotations

import re
import secrets
from pathlib import Path

from aiohttp import web

from parley.config import env, resolve_path
from parley.contract import canonical_uuid
from parley.http import Rejected, ok, read_body
from parley.service_client import path, refusal

from gateway import auth
from gateway.avatars import MAX_AVATAR_BYTES, AvatarRejected, validate_avatar
from gateway.upstreams import as_caller, registry

_AVATAR_NAME = re.compile(r"^[a-f0-9]{32}$")


def avatars_dir() -> Path:
    path_ = resolve_path(env("PARLEY_FILES_DIR")) / "avatars"
    path_.mkdir(parents=True, exist_ok=True)
    return path_


async def upload(request: web.Request) -> web.Response:
    """PUT /api/operators/{id}/avatar with the image as the request body."""
    operator_id = canonical_uuid(request.match_info["id"])
    if operator_id is None:
        raise Rejected(404, "not_found", "Operator not found.")
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
    folder = avatars_dir()
    (folder / f"{avatar_id}.png").write_bytes(avatar.widget)
    (folder / f"{avatar_id}.original.{'png' if avatar.format == 'png' else 'jpg'}").write_bytes(avatar.original)
    try:
        stored = await client.call("PUT", path("internal", "operators", operator_id, "avatar"),
                                   json={"avatar_id": avatar_id}, headers=headers)
        auth.take_rotation(request, stored)
        if stored.status >= 300:
            raise refusal(stored)
    except Rejected:
        for f in folder.glob(f"{avatar_id}.*"):
            f.unlink(missing_ok=True)
        raise
    return ok(stored.body)


async def serve(request: web.Request) -> web.StreamResponse:
    """GET /avatars/{name}.png - the 96 px copy shown in the widget and the app."""
    name = request.match_info["name"]
    file = avatars_dir() / f"{name}.png"
    if not _AVATAR_NAME.match(name) or not file.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(file, headers={"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "public, max-age=31536000, immutable"})
