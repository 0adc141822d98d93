"""Attachments: size-limited, type-checked by content against an allow-list, stored
under generated names, served as downloads only to that conversation's participants.

An upload is read whole while its bytes are counted - the limit holds for chunked
bodies too, and a body arriving in many packets is stored whole - and is stored, row
and bytes in one insert, only when complete and accepted; a refused upload leaves
nothing. The bytes live in PostgreSQL (migration 002), so any gateway replica serves
any file and a pg_dump holds them. Files not yet sent in a message are bounded in number
and bytes per uploader, per client address and per project (a visitor token is free, so
a bound per uploader alone bounds nothing), and are deleted after UNATTACHED_TTL.

A message carries a file only when its sender uploaded it in the same project and it is
not yet linked to another conversation; no other command carries one (issue 23)."""
from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import quote, unquote

from aiohttp import web

from parley.http import Rejected, ok, read_body
from parley.loops import every
from parley.service import POOL

from gateway.client_ip import client_ip

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024
UNATTACHED_PER_UPLOADER = 20
UNATTACHED_BYTES_PER_UPLOADER = 50 * 1024 * 1024
UNATTACHED_TTL_HOURS = 24
# (files, bytes) not yet sent, per client address and per project, across every replica
UNATTACHED_PER_ADDRESS = (40, 100 * 1024 * 1024)
UNATTACHED_PER_PROJECT = (2_000, 1024 * 1024 * 1024)
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


def clean_name(raw: str) -> str:
    name = unquote(raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or "file"


def too_large(limit: int) -> Rejected:
    return Rejected(413, "file_too_large", f"Files are limited to {limit // (1024 * 1024)} MiB.")


_UNSENT = """
    select count(*) filter (where uploaded_by = $1) as mine,
           coalesce(sum(size) filter (where uploaded_by = $1), 0) as mine_bytes,
           count(*) filter (where uploaded_from = $2) as address,
           coalesce(sum(size) filter (where uploaded_from = $2), 0) as address_bytes,
           count(*) filter (where project_id = $3) as project,
           coalesce(sum(size) filter (where project_id = $3), 0) as project_bytes
    from files where conversation_id is null and (uploaded_by = $1 or uploaded_from = $2 or project_id = $3)"""


async def _check_quota(request: web.Request, project_id: str, uploaded_by: str, address: str) -> None:
    row = await request.app[POOL].fetchrow(_UNSENT, uploaded_by, address, project_id)
    if row["mine"] >= UNATTACHED_PER_UPLOADER or row["mine_bytes"] >= UNATTACHED_BYTES_PER_UPLOADER:
        raise Rejected(429, "upload_quota", "Too many files uploaded and not sent yet: send or wait for them to "
                                            f"expire ({UNATTACHED_TTL_HOURS} h).", headers={"Retry-After": "3600"})
    if row["address"] >= UNATTACHED_PER_ADDRESS[0] or row["address_bytes"] >= UNATTACHED_PER_ADDRESS[1]:
        raise Rejected(429, "upload_quota_address", "Too many files uploaded from this address and not sent yet; "
                                                    "send them or try again later.", headers={"Retry-After": "3600"})
    if row["project"] >= UNATTACHED_PER_PROJECT[0] or row["project_bytes"] >= UNATTACHED_PER_PROJECT[1]:
        log.warning("upload quota of project %s reached: %s files, %s bytes not sent",
                    project_id, row["project"], row["project_bytes"])
        raise Rejected(429, "upload_quota_project", "This chat holds too many files not sent yet; "
                                                    "try again later.", headers={"Retry-After": "3600"})


async def store_upload(request: web.Request, project_id: str, uploaded_by: str) -> dict:
    address = client_ip(request)
    await _check_quota(request, project_id, uploaded_by, address)
    try:
        data = await read_body(request, MAX_FILE_BYTES)
    except Rejected as e:
        raise too_large(MAX_FILE_BYTES) if e.status == 413 else e
    if not data:
        raise Rejected(422, "file_empty", "The file is empty.")
    content_type = sniff(data[:_SNIFF_BYTES], complete=len(data) <= _SNIFF_BYTES)
    if content_type is None:
        raise Rejected(415, "file_type_not_allowed",
                       "Send images (PNG, JPEG, GIF, WebP), PDF, text or office documents.")
    file_id = secrets.token_hex(16)
    name = clean_name(request.headers.get("X-File-Name", ""))
    await request.app[POOL].execute(
        "insert into files (id, project_id, name, size, content_type, uploaded_by, content, uploaded_from)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8)",
        file_id, project_id, name, len(data), content_type, uploaded_by, data, address)
    return {"file_id": file_id, "url": f"/files/{file_id}", "name": name, "size": len(data),
            "content_type": content_type}


async def attachment_for(request: web.Request, file_id, project_id: str, uploaded_by: str,
                         conversation_id: str | None) -> dict | None:
    """The attachment a message may carry: only a file its sender uploaded in this
    project, not yet sent in another conversation (a resend into the same one is fine)."""
    if file_id is None:
        return None
    if not isinstance(file_id, str) or not _FILE_ID.match(file_id):
        raise Rejected(422, "attachment_unknown", "Upload the file first, then send it.")
    row = await request.app[POOL].fetchrow(
        "select id, name, size, content_type from files where id = $1 and project_id = $2 and uploaded_by = $3"
        " and (conversation_id is null or conversation_id = $4::uuid)",
        file_id, project_id, uploaded_by, conversation_id)
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


async def download(request: web.Request, row) -> web.Response:
    """The file's bytes, read only once the caller may have them (file_row leaves them out)."""
    content = await request.app[POOL].fetchval("select content from files where id = $1", row["id"])
    if content is None:  # uploaded before the bytes moved into PostgreSQL (migration 002)
        raise web.HTTPNotFound()
    return web.Response(body=content, headers={
        "Content-Type": row["content_type"] if row["content_type"].startswith("image/") else "application/octet-stream",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['name'])}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600"})


def uploaded(info: dict) -> web.Response:
    return ok(info, status=201)


async def delete_expired(pool, older_than_hours: float = UNATTACHED_TTL_HOURS) -> int:
    """Delete files never sent in a message within the TTL (row and bytes together)."""
    deleted = await pool.fetchval(
        "with gone as (delete from files where conversation_id is null"
        " and created_at < now() - make_interval(secs => $1) returning 1) select count(*) from gone",
        float(older_than_hours) * 3600)
    if deleted:
        log.info("expired unsent uploads deleted", extra={"count": deleted})
    return deleted


async def _delete_expired(app: web.Application) -> None:
    await delete_expired(app[POOL])


expiry_loop = every(600, _delete_expired)
