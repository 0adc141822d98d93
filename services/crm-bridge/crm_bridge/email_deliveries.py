"""Transcripts by email (issue 24, item 5): settings, the outbox, the sender, the log.

- Settings per project (`email_settings`; `GET|PUT /api/project/email`, admins;
  `POST /api/project/email/test` sends a test email now and says what the server
  answered). The password is write-only (email_rules.view).
- The consumer `crm-bridge.emails` of conversation.events inserts one row per
  `chat.transcript_requested` (the visitor asked from the widget) and per close of a
  conversation whose project sends transcripts on close, keyed by the event's id, in the
  transaction that stores its offset: a redelivered event inserts nothing.
- The sender claims due rows with a lease (`FOR UPDATE SKIP LOCKED`, as the CRM
  deliveries), asks the conversation service for the transcript as it stood at the
  event (`/internal/conversations/{id}/email-transcript`: messages both ways, never
  notes, and the address), sends it with aiosmtplib outside any transaction, and records
  the outcome only if its claim still holds. A process that dies mid-attempt leaves its
  lease to lapse; another takes the row up again. An SMTP server down, or a 4xx answer,
  is tried again with backoff (the CRM's), up to MAX_ATTEMPTS; a 5xx answer (a refused
  recipient) fails for good. A conversation erased, or with no email left, is skipped.
- `GET /api/project/email/deliveries` (admins): the last 50, without addresses.

Sent once: a row is marked sent in the transaction that checks its claim, right after
the server accepted the message. Only a crash between the server's acceptance and that
commit sends it again - with the same Message-ID (email_rules)."""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import aiosmtplib
import asyncpg
from aiohttp import web
from prometheus_client import Counter

from parley import actor, internal_auth
from parley.config import env
from parley.envelope import Event
from parley.http import Rejected, ok, read_json
from parley.service import POOL
from parley.service_client import ServiceClient, new_session, path

from crm_bridge import domain, email_rules, outbound
from crm_bridge.crm import CrmError
from crm_bridge.deliveries import TUNING
from crm_bridge.outbound import OutboundRefused

log = logging.getLogger(__name__)

SENT = Counter("parley_email_deliveries_total", "Transcript emails by outcome", ["outcome"])
EVENT_TYPES = frozenset({"chat.transcript_requested", "status.changed"})
MAX_ATTEMPTS = domain.MAX_ATTEMPTS
SMTP_TIMEOUT = 30.0
LOG_SIZE = 50
NO_SETTINGS = "Email is not set up for this project: Settings › Email."
CONVERSATIONS = web.AppKey("email_conversations", dict)   # {"client": ServiceClient}


def now() -> datetime:
    return datetime.now(timezone.utc)


async def load_settings(db: asyncpg.Pool | asyncpg.Connection, project_id: str) -> dict[str, Any] | None:
    return await db.fetchval("select settings from email_settings where project_id = $1", project_id)


# ---- the consumer ----------------------------------------------------------------------

async def on_conversation_event(conn: asyncpg.Connection, event: Event) -> None:
    if not event.project_id or not event.stream_id.startswith("conversation-"):
        return
    if event.type == "chat.transcript_requested":
        reason = "requested"
    elif event.type == "status.changed" and event.data.get("status") == "closed":
        settings = await load_settings(conn, event.project_id)
        if not settings or not settings.get("on_close"):
            return
        reason = "closed"
    else:
        return
    await conn.execute(
        """insert into email_deliveries (id, project_id, conversation_id, upto, reason, next_attempt_at)
           values ($1, $2, $3, $4, $5, now()) on conflict (id) do nothing""",
        event.id, event.project_id, event.stream_id.removeprefix("conversation-"), event.stream_version, reason)


# ---- sending ---------------------------------------------------------------------------

class SendFailed(Exception):
    def __init__(self, reason: str, *, final: bool):
        super().__init__(reason)
        self.reason, self.final = reason, final


async def smtp_send(settings: dict[str, Any], message) -> None:
    """One message through the project's server; SendFailed says whether to try again."""
    try:
        await outbound.guard_host(settings["host"], settings["port"])
    except OutboundRefused as e:
        raise SendFailed(e.reason, final=True) from None
    except CrmError as e:
        raise SendFailed(e.reason, final=False) from None
    try:
        await aiosmtplib.send(message, hostname=settings["host"], port=settings["port"],
                              username=settings.get("user") or None, password=settings.get("password") or None,
                              use_tls=settings["security"] == "tls",
                              start_tls=True if settings["security"] == "starttls" else False,
                              timeout=SMTP_TIMEOUT)
    except aiosmtplib.SMTPRecipientsRefused as e:
        raise SendFailed(f"The server refused the recipient: {_answer(e)}", final=True) from None
    except aiosmtplib.SMTPAuthenticationError as e:
        raise SendFailed(f"The server refused the user and password ({e.code})", final=False) from None
    except aiosmtplib.SMTPResponseException as e:
        raise SendFailed(f"The server answered {e.code}: {e.message[:200]}", final=500 <= e.code < 600) from None
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as e:
        raise SendFailed(f"Could not reach the SMTP server ({type(e).__name__})", final=False) from None


def _answer(e: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{r.code} {r.message[:100]}" for r in e.recipients)[:300] or "refused"


def _conversations(app: web.Application) -> ServiceClient:
    held = app[CONVERSATIONS]
    if held.get("client") is None or held["client"].session.closed:
        held["client"] = ServiceClient("conversation", env("PARLEY_CONVERSATION_URL").rstrip("/"),
                                       new_session(), internal_auth.secret())
    return held["client"]


class Mailer:
    """Attempts run as tasks beside the claiming loop (at most a batch at once): one that
    hangs on a server until its timeout holds up nothing else."""

    def __init__(self, app: web.Application):
        self.app = app
        self.running: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once() if len(self.running) < self.app[TUNING].batch else 0
            except (OSError, asyncpg.PostgresError) as e:   # the database away: the next round tries again
                log.warning("email round failed", extra={"error": type(e).__name__})
                done = 0
            if not done:
                try:
                    await asyncio.wait_for(stop.wait(), self.app[TUNING].poll_interval)
                except asyncio.TimeoutError:
                    pass
        for task in self.running:
            task.cancel()

    async def run_once(self) -> int:
        tuning, token = self.app[TUNING], str(uuid.uuid4())
        async with self.app[POOL].acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """select * from email_deliveries where status = 'pending' and next_attempt_at <= now()
                   order by next_attempt_at limit $1 for update skip locked""", tuning.batch - len(self.running))
            if rows:
                await conn.execute(
                    """update email_deliveries set claim_token = $2, attempts = attempts + 1,
                              next_attempt_at = now() + make_interval(secs => $3) where id = any($1::uuid[])""",
                    [r["id"] for r in rows], token, tuning.lease)
        for row in rows:
            task = asyncio.create_task(self.guarded(dict(row), token))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        return len(rows)

    async def guarded(self, row: dict[str, Any], token: str) -> None:
        try:
            await self.attempt(row, token)
        except (OSError, asyncpg.PostgresError) as e:   # the outcome not recorded: the lease lapses, it is tried again
            log.warning("email attempt not recorded", extra={"delivery": str(row["id"]), "error": type(e).__name__})

    async def attempt(self, row: dict[str, Any], token: str) -> None:
        tuning, attempts = self.app[TUNING], row["attempts"] + 1
        status, error, retry_at = "sent", None, None
        try:
            settings = await load_settings(self.app[POOL], row["project_id"])
            if settings is None:
                raise SendFailed(NO_SETTINGS, final=True)
            answer = await _conversations(self.app).call(
                "GET", path("internal", "conversations", str(row["conversation_id"]), "email-transcript"),
                params={"upto": str(row["upto"])})
            if answer.status == 404 or (answer.status == 200 and (answer.body["erased"] or not answer.body["email"])):
                status, error = "skipped", ("The conversation is gone or erased." if answer.status == 404 or
                                            answer.body["erased"] else "The visitor left no email.")
            elif answer.status != 200:
                raise SendFailed("The conversation service is not answering", final=False)
            else:
                message = email_rules.transcript_email(settings, answer.body, answer.body["email"], str(row["id"]))
                await smtp_send(settings, message)
        except (SendFailed, Rejected) as e:   # Rejected: the conversation service away, tried again
            error = e.reason if isinstance(e, SendFailed) else e.message
            if isinstance(e, SendFailed) and (e.final or attempts >= MAX_ATTEMPTS):
                status = "failed"
            else:
                status = "pending"
                retry_at = now() + timedelta(seconds=domain.backoff(attempts, tuning.rand, base=tuning.backoff_base))
        await self.record(row["id"], token, status, error, retry_at)

    async def record(self, delivery_id, token: str, status: str, error: str | None, retry_at: datetime | None) -> None:
        done = await self.app[POOL].execute(
            """update email_deliveries set status = $3, last_error = $4, next_attempt_at = $5, claim_token = null,
                      sent_at = case when $3 = 'sent' then now() else sent_at end
               where id = $1 and claim_token = $2 and status = 'pending'""",
            delivery_id, token, status, error, retry_at)
        if done == "UPDATE 0":
            log.warning("an email's claim was lost before its outcome was recorded", extra={"delivery": str(delivery_id)})
            return
        SENT.labels(status).inc()
        log.info("transcript email attempt", extra={"delivery": str(delivery_id), "outcome": status, "error": error})


def mail_loop(app: web.Application):
    return Mailer(app).run


# ---- the API ---------------------------------------------------------------------------

def _admin(request: web.Request) -> actor.Actor:
    return actor.admin_of(request, "Only an admin may see or change the email settings.")


def _invalid(e: email_rules.SettingsInvalid) -> Rejected:
    return Rejected(422, e.code, str(e))


async def get_settings(request: web.Request) -> web.Response:
    me = _admin(request)
    return ok(email_rules.view(await load_settings(request.app[POOL], me.project_id)))


async def put_settings(request: web.Request) -> web.Response:
    me = _admin(request)
    body = await read_json(request)
    pool = request.app[POOL]
    stored = await load_settings(pool, me.project_id)
    try:
        settings = email_rules.clean_settings(body, (stored or {}).get("password"))
    except email_rules.SettingsInvalid as e:
        raise _invalid(e) from None
    await pool.execute("""insert into email_settings (project_id, settings) values ($1, $2)
                          on conflict (project_id) do update set settings = excluded.settings, updated_at = now()""",
                       me.project_id, settings)
    return ok(email_rules.view(settings))


async def test_settings(request: web.Request) -> web.Response:
    """Sends a test email now with the stored settings: {sent: true}, or {sent: false,
    error} with what the server said (a result to show, not a fault of this call)."""
    me = _admin(request)
    body = await read_json(request)
    try:
        to = email_rules.email_address(body.get("to"))
    except email_rules.SettingsInvalid as e:
        raise _invalid(e) from None
    settings = await load_settings(request.app[POOL], me.project_id)
    if settings is None:
        raise Rejected(409, "email_not_configured", NO_SETTINGS)
    try:
        await smtp_send(settings, email_rules.test_email(settings, to))
    except SendFailed as e:
        return ok({"sent": False, "error": e.reason})
    return ok({"sent": True})


async def list_deliveries(request: web.Request) -> web.Response:
    me = _admin(request)
    rows = await request.app[POOL].fetch(
        """select id, conversation_id, reason, status, attempts, last_error, created_at, sent_at, next_attempt_at
           from email_deliveries where project_id = $1 order by created_at desc, id limit $2""",
        me.project_id, LOG_SIZE)
    return ok({"deliveries": [{**{k: (str(v) if k in ("id", "conversation_id") else v) for k, v in r.items()
                                  if k not in ("created_at", "sent_at", "next_attempt_at")},
                               **{k: r[k].isoformat() if r[k] else None
                                  for k in ("created_at", "sent_at", "next_attempt_at")}} for r in rows]})


def add_routes(app: web.Application) -> None:
    app[CONVERSATIONS] = {"client": None}

    async def close(app: web.Application) -> None:
        client = app[CONVERSATIONS].get("client")
        if client is not None:
            await client.session.close()
    app.on_cleanup.append(close)
    app.router.add_get("/api/project/email", get_settings)
    app.router.add_put("/api/project/email", put_settings)
    app.router.add_post("/api/project/email/test", test_settings)
    app.router.add_get("/api/project/email/deliveries", list_deliveries)
