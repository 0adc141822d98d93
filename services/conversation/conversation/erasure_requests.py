"""Data rights (issue 20): erasure requests, retention and export.

Erasure: an owner or admin asks for a data subject's erasure, by
one of conversation_id, visitor_id, phone or email; this service finds the
conversations at once, keeps which ones (not the phone or email asked for), answers
202, and finishes the work in the background:

- its own part per conversation (erasure.erase_conversation: `chat.conversation_erased`
  with the conversation's file ids, the key wiped, the rows scrubbed);
- the gateway deletes those files and crm-bridge scrubs its copies of the lead
  requests and its client cards; each tells this service when its part of a
  conversation is done (`POST /internal/privacy/erasures/{id}/parts`);
- the erasure is `done` when every conversation has all three parts.

Every step is idempotent and the loop picks pending erasures up again after a
restart, so a crash of any service halfway delays an erasure, never loses it. Two
replicas may work on one erasure at once: their commands and scrubs agree.
By phone or email, the same person's conversations from other browsers go too: every
conversation of every visitor who gave that phone or email. Another project's
conversations never do.

Retention: a project's `erase_after_days` turns each closed conversation whose last
message is older into an erasure of kind `retention` (one per conversation, `retain`),
which the same loop carries out. Export: everything held about a subject, from this
service's own store (the gateway adds crm-bridge's leads)."""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg
from aiohttp import web

from parley import audit
from parley.contract import canonical_uuid
from parley.http import Rejected, id_in_path, ok, read_json
from parley.service import POOL, STORE

from conversation import erasure, identities
from conversation.routes import operator_of
from conversation.domain import DomainError, check_email, normalise_phone

log = logging.getLogger(__name__)

KINDS = ("conversation_id", "visitor_id", "phone", "email")
PARTS = ("conversation", "files", "crm")
LOOP_SECONDS = 0.5
NAMESPACE = uuid.UUID("7b1d0c8e-3f7a-4c55-9a51-0e6c2f1d9b40")

_BY_VISITORS_OF = """
select id from conversations where project_id = $1 and visitor_id in (
    select visitor_id from conversations where project_id = $1 and {match})
"""


def _admin(request: web.Request):
    me = operator_of(request)
    if not me.is_admin:
        raise Rejected(403, "admin_only", "Only the owner or an admin may export or erase a visitor's data.")
    return me


def subject_of(body: Any) -> tuple[str, str]:
    """(kind, value) of a request naming exactly one of KINDS; refusals say which is wrong."""
    if not isinstance(body, dict):
        raise Rejected(422, "subject_required", f"Name the data subject by one of {', '.join(KINDS)}.")
    given = [k for k in KINDS if body.get(k) not in (None, "")]
    if len(given) != 1 or set(body) - set(KINDS):
        raise Rejected(422, "subject_required", f"Name the data subject by exactly one of {', '.join(KINDS)}.")
    kind, value = given[0], body[given[0]]
    if not isinstance(value, str) or len(value) > 254:
        raise Rejected(422, f"{kind}_invalid", f"{kind} must be text.")
    try:
        if kind == "conversation_id":
            value = canonical_uuid(value) or ""
            if not value:
                raise Rejected(422, "conversation_id_invalid", "conversation_id is a conversation's id (a UUID).")
        elif kind == "phone":
            value = normalise_phone(value)
        elif kind == "email":
            value = check_email(value.strip()).lower()
    except DomainError as e:
        raise Rejected(422, e.code, e.message)
    return kind, value


async def conversations_of(db: asyncpg.Pool | asyncpg.Connection, project_id: str, kind: str,
                           value: str) -> list[str]:
    """The project's conversations of the subject (ids as text, oldest first)."""
    if kind == "conversation_id":
        rows = await db.fetch("select id from conversations where project_id = $1 and id = $2::uuid", project_id,
                              value)
    elif kind == "visitor_id":
        rows = await db.fetch("select id from conversations where project_id = $1 and visitor_id = $2", project_id,
                              value)
    elif kind == "phone":
        rows = await db.fetch(_BY_VISITORS_OF.format(match="contacts->>'phone' = $2"), project_id, value)
    else:
        rows = await db.fetch(_BY_VISITORS_OF.format(match="lower(contacts->>'email') = $2"), project_id, value)
    return sorted({str(r["id"]) for r in rows})


async def request_erasure(request: web.Request) -> web.Response:
    """POST /api/project/privacy/erasures: 202 {id, status}. With an Idempotency-Key the
    same request is the same erasure."""
    me = _admin(request)
    kind, value = subject_of(await read_json(request))
    pool = request.app[POOL]
    ids = await conversations_of(pool, me.project_id, kind, value)
    key = request.headers.get("Idempotency-Key")
    erasure_id = str(uuid.uuid5(NAMESPACE, f"{me.project_id}:{me.id}:{key}")) if key else str(uuid.uuid4())
    async with pool.acquire() as conn, conn.transaction():
        made = await conn.fetchval(
            """insert into erasures (id, project_id, kind, requested_by, conversation_ids, status, finished_at)
               values ($1, $2, $3, $4, $5::uuid[], case when $6 then 'done' else 'pending' end,
                       case when $6 then now() end)
               on conflict (id) do nothing returning true""", erasure_id, me.project_id, kind, me.id, ids, not ids)
        if made:   # the subject's kind, never its value: the trail holds no personal data
            await audit.record(request.app[STORE], conn, me.project_id, me.id, "privacy.erasure_requested",
                               erasure_id, subject=kind, conversations=len(ids))
    log.info("erasure requested", extra={"erasure_id": erasure_id, "kind": kind, "conversations": len(ids)})
    return await _status(pool, me.project_id, erasure_id, status=202)


async def erasure_status(request: web.Request) -> web.Response:
    me = _admin(request)
    erasure_id = id_in_path(request, "No such erasure.")
    return await _status(request.app[POOL], me.project_id, erasure_id)


async def _status(pool, project_id: str, erasure_id: str, status: int = 200) -> web.Response:
    row = await pool.fetchrow("select * from erasures where id = $1 and project_id = $2", erasure_id, project_id)
    if row is None:
        raise Rejected(404, "not_found", "No such erasure.")
    parts = await pool.fetch("select part, result from erasure_parts where erasure_id = $1", erasure_id)
    done = {p: sum(1 for r in parts if r["part"] == p) for p in PARTS}
    leads = [lead for r in parts if r["part"] == "crm" for lead in (r["result"] or {}).get("leads", [])]
    return ok({"id": str(row["id"]), "status": row["status"], "kind": row["kind"],
               "requested_at": row["requested_at"].isoformat(),
               "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
               "conversations": len(row["conversation_ids"]),
               "erased": {"conversations": done["conversation"],
                          "messages": sum((r["result"] or {}).get("messages", 0) for r in parts
                                          if r["part"] == "conversation"),
                          "files": sum((r["result"] or {}).get("files", 0) for r in parts if r["part"] == "files")},
               "parts_done": done,
               # Leads already in the CRM are outside Parley: erase them there.
               "crm_leads": leads}, status=status)


async def part_done(request: web.Request) -> web.Response:
    """POST /internal/privacy/erasures/{id}/parts {conversation_id, part, result}: the
    gateway's and crm-bridge's report (signed calls only)."""
    erasure_id = canonical_uuid(request.match_info["id"])
    body = await read_json(request)
    cid = canonical_uuid(body.get("conversation_id"))
    if erasure_id is None or cid is None or body.get("part") not in ("files", "crm"):
        raise Rejected(422, "part_invalid", "Send {conversation_id, part: files | crm, result}.")
    result = body.get("result") if isinstance(body.get("result"), dict) else {}
    pool = request.app[POOL]
    if not await pool.fetchval("select exists (select 1 from erasures where id = $1)", erasure_id):
        return ok({"recorded": False})    # an erasure of another installation's topic, or retention's own
    await pool.execute("""insert into erasure_parts (erasure_id, conversation_id, part, result)
                          values ($1, $2, $3, $4) on conflict do nothing""", erasure_id, cid, body["part"], result)
    await _finish_if_done(pool, erasure_id)
    return ok({"recorded": True})


async def _finish_if_done(pool, erasure_id: str) -> None:
    await pool.execute(
        """update erasures e set status = 'done', finished_at = now()
           where id = $1 and status = 'pending'
             and (select count(*) from erasure_parts p where p.erasure_id = e.id)
                 >= cardinality(e.conversation_ids) * $2""", erasure_id, len(PARTS))


# ---- retention (issue 20, item 4) ------------------------------------------------------

RETENTION_DAYS = (1, 3650)
RETENTION_BATCH = 100
# Closed, not erased, last message (or start) older than the project's setting.
_DUE_FOR_RETENTION = """
select c.id::text, c.project_id from conversations c join retention_settings r using (project_id)
where c.status = 'closed' and c.erased_at is null
  and coalesce(c.last_message_at, c.started_at) < now() - make_interval(days => r.erase_after_days)
order by coalesce(c.last_message_at, c.started_at)
limit $1
"""


async def get_retention(request: web.Request) -> web.Response:
    me = _admin(request)
    days = await request.app[POOL].fetchval(
        "select erase_after_days from retention_settings where project_id = $1", me.project_id)
    return ok({"erase_after_days": days})


async def put_retention(request: web.Request) -> web.Response:
    """PUT /api/project/privacy/retention {"erase_after_days": N (1-3650) | null (keep)}."""
    me = _admin(request)
    body = await read_json(request)
    days = body.get("erase_after_days") if isinstance(body, dict) else None
    if set(body) - {"erase_after_days"} or "erase_after_days" not in body or (days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not RETENTION_DAYS[0] <= days <= RETENTION_DAYS[1])):
        raise Rejected(422, "erase_after_days_invalid", f"erase_after_days is a whole number of days from "
                       f"{RETENTION_DAYS[0]} to {RETENTION_DAYS[1]}, or null to keep conversations.")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if days is None:
            await conn.execute("delete from retention_settings where project_id = $1", me.project_id)
        else:
            await conn.execute("""insert into retention_settings (project_id, erase_after_days, updated_by)
                                  values ($1, $2, $3) on conflict (project_id) do update
                                  set erase_after_days = excluded.erase_after_days,
                                      updated_by = excluded.updated_by, updated_at = now()""",
                               me.project_id, days, me.id)
        await audit.record(request.app[STORE], conn, me.project_id, me.id, "settings.retention", "retention",
                           erase_after_days=days)
    log.info("retention set", extra={"project_id": me.project_id, "erase_after_days": days})
    return ok({"erase_after_days": days})


def retention_erasure_id(conversation_id: str) -> str:
    """One retention erasure per conversation, the same id on every pass and replica."""
    return str(uuid.uuid5(NAMESPACE, f"retention:{conversation_id}"))


async def retain(pool) -> int:
    """Erasures (kind retention) for the conversations the projects' retention has reached."""
    rows = await pool.fetch(_DUE_FOR_RETENTION, RETENTION_BATCH)
    if rows:
        await pool.executemany(
            """insert into erasures (id, project_id, kind, conversation_ids)
               values ($1, $2, 'retention', array[$3::uuid]) on conflict (id) do nothing""",
            [(retention_erasure_id(r["id"]), r["project_id"], r["id"]) for r in rows])
    return len(rows)


async def work(app: web.Application) -> int:
    """One pass: retention's new erasures, then this service's part of every pending
    erasure; how many conversations it erased."""
    pool, store = app[POOL], app[STORE]
    await retain(pool)
    erased = 0
    for row in await pool.fetch(
            """select e.id::text, e.kind, array(select c::text from unnest(e.conversation_ids) c
                                       where not exists (select 1 from erasure_parts p where p.erasure_id = e.id
                                                         and p.conversation_id = c and p.part = 'conversation'))
                      as left_
               from erasures e where status = 'pending' order by requested_at limit 20"""):
        for cid in row["left_"]:
            messages = await pool.fetchval("select count(*) from conversation_messages where conversation_id = $1",
                                           cid)
            await erasure.erase_conversation(store, cid, row["id"],
                                             "retention" if row["kind"] == "retention" else "request")
            if row["kind"] in ("visitor_id", "phone", "email"):   # the person: who they are goes too
                await pool.execute(
                    """delete from verified_identities i using conversations c
                       where c.id = $1 and i.project_id = c.project_id and i.visitor_id = c.visitor_id""", cid)
            await pool.execute("""insert into erasure_parts (erasure_id, conversation_id, part, result)
                                  values ($1, $2, 'conversation', $3) on conflict do nothing""",
                               row["id"], cid, {"messages": messages})
            erased += 1
        await _finish_if_done(pool, row["id"])
    return erased


def loop(app: web.Application):
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await work(app)
            except Exception:   # the database away, a conflict: every step is idempotent, the next pass goes on
                log.exception("erasure pass failed; the next one goes on")
            try:
                await asyncio.wait_for(stop.wait(), LOOP_SECONDS)
            except asyncio.TimeoutError:
                pass
    return run


# ---- export (issue 20, item 2) --------------------------------------------------------

_EXPORT_ROW = """select id::text, visitor_id, status, started_at, erased_at, assignee_name, contacts, custom_params
                 from conversations where id = any($1::uuid[]) order by started_at"""


def transcript_of(events) -> tuple[list[dict], list[str], list[dict], dict | None]:
    """(transcript with notes marked as the operators', the pages in order, the files, the
    rating) of a conversation's events as stored."""
    said, pages, files, rating = [], [], [], None
    for e in events:
        d = e.data
        if e.type in ("chat.conversation_started", "chat.page_visited") and d.get("page_url"):
            pages.append(d["page_url"])
        elif e.type in ("chat.visitor_message_posted", "chat.operator_replied", "chat.note_added"):
            who = {"chat.visitor_message_posted": "visitor", "chat.operator_replied": "operator"}.get(e.type,
                                                                                                     "operator_note")
            said.append({"at": e.occurred_at, "from": who, "operator": d.get("operator_name"), "text": d.get("text"),
                         "attachment": d.get("attachment")})
            if isinstance(d.get("attachment"), dict):
                files.append({**d["attachment"], "url": f"/files/{d['attachment']['file_id']}"})
        elif e.type == "chat.rated":
            rating = {"rating": d["rating"], "comment": d.get("comment"), "at": e.occurred_at}
    return said, pages, files, rating


async def export(request: web.Request) -> web.Response:
    """GET /api/project/privacy/export?<one of conversation_id, visitor_id, phone, email>:
    every matching conversation with its transcript (notes marked as the operators'),
    contacts, params, pages, rating and files, and a verified visitor's identity. The
    gateway adds the leads crm-bridge sent (its privacy_routes.py)."""
    me = _admin(request)
    kind, value = subject_of(dict(request.query))
    pool, store = request.app[POOL], request.app[STORE]
    ids = await conversations_of(pool, me.project_id, kind, value)
    conversations = []
    for row in await pool.fetch(_EXPORT_ROW, ids):
        said, pages, files, rating = transcript_of(await store.load(f"conversation-{row['id']}"))
        identity = await identities.lookup(pool, me.project_id, row["visitor_id"]) if not row["erased_at"] else {}
        conversations.append({
            "id": row["id"], "status": row["status"], "started_at": row["started_at"].isoformat(),
            "erased_at": row["erased_at"].isoformat() if row["erased_at"] else None,
            "operator": row["assignee_name"], "contacts": row["contacts"], "custom_params": row["custom_params"],
            "verified_identity": identity or None, "pages": pages, "transcript": said, "files": files,
            "rating": rating})
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(store, conn, me.project_id, me.id, "privacy.exported", None, subject=kind,
                           conversations=len(conversations))
    log.info("personal data exported", extra={"kind": kind, "conversations": len(conversations)})
    return ok({"subject": {"kind": kind}, "exported_at": datetime.now(timezone.utc).isoformat(),
               "conversations": conversations})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/project/privacy/retention", get_retention)
    app.router.add_put("/api/project/privacy/retention", put_retention)
    app.router.add_get("/api/project/privacy/export", export)
    app.router.add_post("/api/project/privacy/erasures", request_erasure)
    app.router.add_get("/api/project/privacy/erasures/{id}", erasure_status)
    app.router.add_post("/internal/privacy/erasures/{id}/parts", part_done)
