"""Attachments: size-limited, type-checked by content against an allow-list, stored
under generated names, served as downloads only to that conversation's participants."""
from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import web

from parley.config import env, resolve_path
from parley.http import Rejected, ok
from parley.service import POOL

MAX_FILE_BYTES = 10 * 1024 * 1024
_FILE_ID = re.compile(r"^[a-f0-9]{32}$")

# By content, never by name: (magic prefix, content type).
_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),  # also docx/xlsx/pptx/odt, which are zip files
]


def sniff(data: bytes) -> str | None:
    for magic, content_type in _SIGNATURES:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError:
            return None
    return None


def files_dir() -> Path:
    path = resolve_path(env("PARLEY_FILES_DIR")) / "attachments"
    path.mkdir(parents=True, exist_ok=True)
    return path


def clean_name(raw: str) -> str:
    name = unquote(raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or "file"


async def store_upload(request: web.Request, project_id: str, uploaded_by: str) -> dict:
    if request.content_length is not None and request.content_length > MAX_FILE_BYTES:
        raise Rejected(413, "file_too_large", f"Files are limited to {MAX_FILE_BYTES // (1024 * 1024)} MiB.")
    data = await request.content.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Rejected(413, "file_too_large", f"Files are limited to {MAX_FILE_BYTES // (1024 * 1024)} MiB.")
    if not data:
        raise Rejected(422, "file_empty", "The file is empty.")
    content_type = sniff(data)
    if content_type is None:
        raise Rejected(415, "file_type_not_allowed",
                       "Send images (PNG, JPEG, GIF, WebP), PDF, text or office documents.")
    file_id = secrets.token_hex(16)
    name = clean_name(request.headers.get("X-File-Name", ""))
    (files_dir() / file_id).write_bytes(data)
    await request.app[POOL].execute(
        "insert into files (id, project_id, name, size, content_type, uploaded_by) values ($1, $2, $3, $4, $5, $6)",
        file_id, project_id, name, len(data), content_type, uploaded_by)
    return {"file_id": file_id, "url": f"/files/{file_id}", "name": name, "size": len(data),
            "content_type": content_type}


async def attachment_for(request: web.Request, file_id, project_id: str, uploaded_by: str) -> dict | None:
    """The attachment a message may carry: only a file its sender uploaded, not yet sent elsewhere."""
    if file_id is None:
        return None
    row = await request.app[POOL].fetchrow(
        "select id, name, size, content_type from files where id = $1 and project_id = $2 and uploaded_by = $3",
        file_id if isinstance(file_id, str) else "", project_id, uploaded_by)
    if row is None:
        raise Rejected(422, "attachment_unknown", "Upload the file first, then send it.")
    return {"file_id": row["id"], "name": row["name"], "size": row["size"], "content_type": row["content_type"]}


async def link(request: web.Request, attachment: dict | None, conversation_id: str) -> None:
    if attachment:
        await request.app[POOL].execute(
            "update files set conversation_id = $2 where id = $1 and conversation_id is null",
            attachment["file_id"], conversation_id)


async def file_row(request: web.Request):
    file_id = request.match_info["id"]
    row = await request.app[POOL].fetchrow(
        "select id, project_id, name, size, content_type, uploaded_by, conversation_id::text from files where id = $1",
        file_id) if _FILE_ID.match(file_id) else None
    if row is None:
        raise web.HTTPNotFound()
    return row


def download(row) -> web.StreamResponse:
    return web.FileResponse(files_dir() / row["id"], headers={
        "Content-Type": row["content_type"] if row["content_type"].startswith("image/") else "application/octet-stream",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['name'])}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600"})


def uploaded(info: dict) -> web.Response:
    return ok(info, status=201)
