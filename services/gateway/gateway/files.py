"""Attachments: size-limited, type-checked by content against an allow-list, stored
under generated names, served as downloads only to that conversation's participants.

An upload streams to a temporary file while its bytes are counted - the limit holds
for chunked bodies too, and a body arriving in many packets is stored whole - and is
renamed into place only when complete and accepted; a refused upload leaves nothing.
Each uploader may hold a bounded number (and size) of files not yet sent in a message,
and such files are deleted after UNATTACHED_TTL."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import web

from parley.config import env, resolve_path
from parley.http import Rejected, ok
from parley.service import POOL

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024
UNATTACHED_PER_UPLOADER = 20
UNATTACHED_BYTES_PER_UPLOADER = 50 * 1024 * 1024
UNATTACHED_TTL_HOURS = 24
_FILE_ID = re.compile(r"^[a-f0-9]{32}$")
_CHUNK = 64 * 1024

# By content, never by name: (magic prefix, content type).
_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),  # also docx/xlsx/pptx/odt, which are zip files
]
_SNIFF_BYTES = 64 * 1024


def sniff(head: bytes, *, complete: bool = True) -> str | None:
    """The content type of a file from its first bytes. `complete` says whether `head`
    is the whole file (a multi-byte character may be cut at the end of a partial head)."""
    for magic, content_type in _SIGNATURES:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as e:
            if not complete and e.start >= len(head) - 3 and e.reason == "unexpected end of data":
                return "text/plain"
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


def too_large(limit: int) -> Rejected:
    return Rejected(413, "file_too_large", f"Files are limited to {limit // (1024 * 1024)} MiB.")


async def receive(request: web.Request, target: Path, limit: int) -> int:
    """Stream the body into `target`, counting real bytes; 413 (and nothing kept) above `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    size = 0
    try:
        with open(target, "wb") as out:
            async for chunk in request.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                out.write(chunk)
        return size
    except BaseException:
        target.unlink(missing_ok=True)
        raise


async def _check_quota(request: web.Request, uploaded_by: str) -> None:
    row = await request.app[POOL].fetchrow(
        "select count(*) as n, coalesce(sum(size), 0) as bytes from files "
        "where uploaded_by = $1 and conversation_id is null", uploaded_by)
    if row["n"] >= UNATTACHED_PER_UPLOADER or row["bytes"] >= UNATTACHED_BYTES_PER_UPLOADER:
        raise Rejected(429, "upload_quota", "Too many files uploaded and not sent yet: send or wait for them to "
                                            f"expire ({UNATTACHED_TTL_HOURS} h).", headers={"Retry-After": "3600"})


async def store_upload(request: web.Request, project_id: str, uploaded_by: str) -> dict:
    await _check_quota(request, uploaded_by)
    file_id = secrets.token_hex(16)
    folder = files_dir()
    partial = folder / f".{file_id}.part"
    size = await receive(request, partial, MAX_FILE_BYTES)
    try:
        if size == 0:
            raise Rejected(422, "file_empty", "The file is empty.")
        with open(partial, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        content_type = sniff(head, complete=size <= _SNIFF_BYTES)
        if content_type is None:
            raise Rejected(415, "file_type_not_allowed",
                           "Send images (PNG, JPEG, GIF, WebP), PDF, text or office documents.")
        name = clean_name(request.headers.get("X-File-Name", ""))
        os.replace(partial, folder / file_id)
    finally:
        partial.unlink(missing_ok=True)
    await request.app[POOL].execute(
        "insert into files (id, project_id, name, size, content_type, uploaded_by) values ($1, $2, $3, $4, $5, $6)",
        file_id, project_id, name, size, content_type, uploaded_by)
    return {"file_id": file_id, "url": f"/files/{file_id}", "name": name, "size": size,
            "content_type": content_type}


async def attachment_for(request: web.Request, file_id, project_id: str, uploaded_by: str) -> dict | None:
    """The attachment a message may carry: only a file its sender uploaded, not yet sent elsewhere."""
    if file_id is None:
        return None
    if not isinstance(file_id, str) or not _FILE_ID.match(file_id):
        raise Rejected(422, "attachment_unknown", "Upload the file first, then send it.")
    row = await request.app[POOL].fetchrow(
        "select id, name, size, content_type from files where id = $1 and project_id = $2 and uploaded_by = $3",
        file_id, project_id, uploaded_by)
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


async def delete_expired(pool, older_than_hours: float = UNATTACHED_TTL_HOURS) -> int:
    """Delete files never sent in a message within the TTL (rows first, then bytes)."""
    rows = await pool.fetch(
        "delete from files where conversation_id is null and created_at < now() - make_interval(secs => $1) "
        "returning id", float(older_than_hours) * 3600)
    folder = files_dir()
    for row in rows:
        (folder / row["id"]).unlink(missing_ok=True)
    if rows:
        log.info("expired unsent uploads deleted", extra={"count": len(rows)})
    return len(rows)


def expiry_loop(app: web.Application):
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await delete_expired(app[POOL])
            try:
                await asyncio.wait_for(stop.wait(), 600)
            except asyncio.TimeoutError:
                pass
    return run
