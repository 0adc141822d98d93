"""Operator avatars: upload (validated by content, stored under a generated name) and
serving the widget-sized copy."""
from __future__ import annotations

import re
import secrets
from pathlib import Path

from aiohttp import ClientError, web

from parley.config import env, resolve_path
from parley.http import error_response

from gateway.avatars import MAX_AVATAR_BYTES, AvatarRejected, validate_avatar
from gateway.upstream import HTTP, forwarded_headers, registry_url, unavailable

_AVATAR_NAME = re.compile(r"^[a-f0-9]{32}$")


def avatars_dir() -> Path:
    path = resolve_path(env("PARLEY_FILES_DIR")) / "avatars"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def upload(request: web.Request) -> web.Response:
    """PUT /api/operators/{id}/avatar with the image as the request body."""
    operator_id = request.match_info["id"]
    http, headers = request.app[HTTP], forwarded_headers(request)
    # Permission first: nobody stores a file for an operator they may not edit.
    try:
        async with http.get(f"{registry_url()}/internal/operators/{operator_id}/avatar-permission",
                            headers=headers) as allowed:
            if allowed.status != 204:
                return web.Response(status=allowed.status, body=await allowed.read(),
                                    content_type="application/json")
    except (ClientError, TimeoutError):
        return unavailable("operator-registry")
    data = await request.content.read(MAX_AVATAR_BYTES + 1)
    try:
        avatar = validate_avatar(data)
    except AvatarRejected as e:
        return error_response(422, e.code, e.message)
    avatar_id = secrets.token_hex(16)
    folder = avatars_dir()
    (folder / f"{avatar_id}.png").write_bytes(avatar.widget)
    (folder / f"{avatar_id}.original.{'png' if avatar.format == 'png' else 'jpg'}").write_bytes(avatar.original)
    try:
        async with http.put(f"{registry_url()}/api/operators/{operator_id}/avatar", json={"avatar_id": avatar_id},
                            headers={k: v for k, v in headers.items() if k != "Content-Type"}) as done:
            body = await done.read()
            status = done.status
    except (ClientError, TimeoutError):
        status, body = 503, b""
    if status != 200:
        for f in folder.glob(f"{avatar_id}.*"):
            f.unlink(missing_ok=True)
        return web.Response(status=status, body=body, content_type="application/json") if body else unavailable("operator-registry")
    return web.Response(status=200, body=body, content_type="application/json")


async def serve(request: web.Request) -> web.StreamResponse:
    """GET /avatars/{name}.png - the 96 px copy shown in the widget and the app."""
    name = request.match_info["name"]
    path = avatars_dir() / f"{name}.png"
    if not _AVATAR_NAME.match(name) or not path.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "public, max-age=31536000, immutable"})
