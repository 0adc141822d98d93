"""The handoff: `lead.requested` in, a lead in the CRM and `lead.created`/`lead.failed` out.

- The consumer (`on_conversation_event`) inserts one delivery row per lead.requested
  event, keyed by the event id, in the transaction that stores its Kafka offset: a
  redelivered event inserts nothing.
- The delivery loop claims due rows (`FOR UPDATE SKIP LOCKED`, a lease), calls the
  project's CRM adapter outside any transaction, then records the outcome with a check
  that its claim still holds; the outcome event is appended through the event store in
  that same transaction, so the relay publishes it on `lead.events`.
- Calls to one portal are rate limited per process (Bitrix24 ~2/s after a burst of 50,
  amoCRM 7/s); the CRM's own 429 / QUERY_LIMIT_EXCEEDED come back as retryable errors.

Secrets never leave `crm_settings`: errors are scrubbed of them before they are stored,
published or logged, and exceptions other than CrmError are logged by class only (an
HTTP client's message can carry the webhook URL)."""
from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client import Counter

from parley.config import env
from parley.envelope import Event
from parley.service import POOL, STORE

from crm_bridge import domain, erasures
from crm_bridge.crm import CreatedLead, CrmAdapter, CrmError, Manager, match_manager

log = logging.getLogger(__name__)

OUTCOMES = Counter("parley_crm_deliveries_total", "Lead delivery outcomes", ["outcome"])
ATTEMPTS = Counter("parley_crm_attempts_total", "CRM delivery attempts", ["result"])

AdapterFactory = Callable[[str, dict, dict, aiohttp.ClientSession], CrmAdapter]
SECRET_FIELDS = {"bitrix24": ("webhook_url",), "webhook": ("secret",), "amocrm": ("token",)}
MASK = "•••"


def default_adapter_factory(kind: str, settings: dict, secrets: dict, session: aiohttp.ClientSession) -> CrmAdapter:
    from crm_bridge import adapters  # the adapters module, written against crm.py
    return adapters.adapter_for(kind, settings, secrets, session)


@dataclass
class Tuning:
    backoff_base: float = domain.BACKOFF_BASE_SECONDS
    lease: float = domain.LEASE_SECONDS
    poll_interval: float = 0.5
    batch: int = 20
    managers_ttl: float = 60.0
    crm_timeout: float = 15.0
    rand: Callable[[], float] = random.random
    adapter_factory: AdapterFactory = default_adapter_factory

    @classmethod
    def from_env(cls) -> "Tuning":
        """The defaults, with the lease from PARLEY_CRM_LEASE_SECONDS (the crash test
        shortens it; a bad value stops the service at start, saying which)."""
        name = "PARLEY_CRM_LEASE_SECONDS"
        try:
            lease = float(env(name) or domain.LEASE_SECONDS)
        except ValueError:
            lease = 0.0
        if not 0 < lease <= 86_400:
            raise SystemExit(f"{name} must be a number of seconds above 0 (default {domain.LEASE_SECONDS:g}),"
                             f" not {env(name)!r}")
        return cls(lease=lease)


TUNING = web.AppKey("crm_tuning", Tuning)


class Http:
    """The session adapters call CRMs with (no cookie jar), made on first use."""

    def __init__(self, timeout: Callable[[], float]):
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            from crm_bridge import outbound  # connect-time address checks, no cookies kept
            self._session = outbound.create_session(timeout=aiohttp.ClientTimeout(total=self.timeout()))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


HTTP = web.AppKey("crm_http", Http)
LIMITS = web.AppKey("crm_limits", object)
MANAGERS = web.AppKey("crm_managers", dict)


def app_url() -> str:
    return env("PARLEY_PUBLIC_URL") or "http://localhost:8080"


def lead_stream(request_id: str) -> str:
    return f"lead-{request_id}"


# ---- settings ------------------------------------------------------------------------

@dataclass(frozen=True)
class CrmSettings:
    project_id: str
    kind: str
    config: dict[str, Any]
    secrets: dict[str, Any]
    default_responsible: str | None
    source_name: str | None
    updated_at: datetime | None = None

    def adapter_settings(self) -> dict[str, Any]:
        return {**self.config, "default_responsible": self.default_responsible, "source_name": self.source_name}

    def portal(self) -> str:
        """The rate-limit key: the CRM host (one portal, whichever project uses it)."""
        url = self.secrets.get("webhook_url") or self.config.get("base_url") or self.config.get("url") or ""
        try:
            return f"{self.kind}:{urlsplit(url).netloc.lower()}"
        except ValueError:
            return f"{self.kind}:{self.project_id}"

    def scrub(self, text: str) -> str:
        for value in self.secrets.values():
            if isinstance(value, str) and value:
                text = text.replace(value, MASK)
                secret_part = _bitrix_secret(value)
                if secret_part:
                    text = text.replace(secret_part, MASK)
        return text


def _bitrix_secret(webhook_url: str) -> str | None:
    parts = [p for p in urlsplit(webhook_url).path.split("/") if p] if "://" in webhook_url else []
    return parts[2] if len(parts) >= 3 and parts[0] == "rest" and len(parts[2]) >= 4 else None


async def load_settings(db: asyncpg.Pool | asyncpg.Connection, project_id: str) -> CrmSettings | None:
    row = await db.fetchrow("select * from crm_settings where project_id = $1", project_id)
    if row is None:
        return None
    return CrmSettings(row["project_id"], row["kind"], row["config"], row["secrets"], row["default_responsible"],
                       row["source_name"], row["updated_at"])


# ---- rate limits per portal ----------------------------------------------------------

class PortalLimits:
    """Token buckets per portal: (requests per second, burst)."""
    RATES = {"bitrix24": (2.0, 50), "amocrm": (7.0, 7), "webhook": (10.0, 10)}

    def __init__(self) -> None:
        self.buckets: dict[str, list[float]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, kind: str, portal: str) -> None:
        rate, burst = self.RATES.get(kind, (5.0, 5))
        lock = self.locks.setdefault(portal, asyncio.Lock())
        async with lock:
            bucket = self.buckets.setdefault(portal, [float(burst), time.monotonic()])
            while True:
                now = time.monotonic()
                bucket[0] = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
                bucket[1] = now
                if bucket[0] >= 1:
                    bucket[0] -= 1
                    return
                await asyncio.sleep((1 - bucket[0]) / rate)


class _Limited:
    """An adapter whose every call waits for its portal's rate limit."""

    def __init__(self, adapter: CrmAdapter, limits: PortalLimits, settings: CrmSettings):
        self.adapter, self.limits, self.settings = adapter, limits, settings

    async def _call(self, name: str, *args):
        await self.limits.acquire(self.settings.kind, self.settings.portal())
        return await getattr(self.adapter, name)(*args)

    async def managers(self) -> list[Manager]:
        return await self._call("managers")

    async def create_lead(self, draft) -> CreatedLead:
        return await self._call("create_lead", draft)

    async def find_lead(self, request_id: str) -> CreatedLead | None:
        return await self._call("find_lead", request_id)

    async def client_leads(self, phone: str | None, email: str | None) -> list:
        return await self._call("client_leads", phone, email)

    async def check(self) -> str:
        return await self._call("check")


async def adapter_for(app: web.Application, settings: CrmSettings) -> _Limited:
    async def build() -> CrmAdapter:
        return app[TUNING].adapter_factory(settings.kind, {**settings.adapter_settings(),
                                                           "timeout_seconds": app[TUNING].crm_timeout},
                                           dict(settings.secrets), app[HTTP].session())
    return _Limited(await call_crm(settings, build()), app[LIMITS], settings)


async def call_crm(settings: CrmSettings, call):
    """Run an adapter call; anything but a CrmError becomes a retryable, secret-free one."""
    try:
        return await call
    except CrmError as e:
        raise CrmError(settings.scrub(e.reason or "CRM error"), retryable=e.retryable, ambiguous=e.ambiguous) from None
    except ValueError as e:  # the adapter refused the settings
        raise CrmError(settings.scrub(str(e))[:domain.REASON_MAX] or "Invalid CRM settings", retryable=False) from None
    except asyncio.TimeoutError:
        raise CrmError("The CRM did not answer in time", retryable=True, ambiguous=True) from None
    except (ImportError, AttributeError, NotImplementedError) as e:
        log.warning("CRM adapter unavailable", extra={"error": e.__class__.__name__})
        raise CrmError(f"The {settings.kind} adapter is not available", retryable=True) from None
    except Exception as e:
        log.warning("unexpected error from the CRM adapter", extra={"error": e.__class__.__name__})
        raise CrmError(f"Unexpected error talking to the CRM ({e.__class__.__name__})", retryable=True,
                       ambiguous=True) from None


# ---- the consumer --------------------------------------------------------------------

# What the consumer acts on; every other event only moves its offset (ConsumerSpec.types).
EVENT_TYPES = frozenset({"lead.requested", "chat.conversation_erased"})


async def on_conversation_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.type == "chat.conversation_erased":
        await erasures.on_conversation_erased(conn, event)
        return
    if event.type != "lead.requested":
        return
    await conn.execute(
        """insert into deliveries (request_id, project_id, conversation_id, correlation_id, requested,
                                   max_attempts, next_attempt_at)
           values ($1, $2, $3, $4, $5, $6, now()) on conflict (request_id) do nothing""",
        event.id, event.project_id or "", event.data["conversation_id"], event.correlation_id, event.data,
        domain.MAX_ATTEMPTS)


# ---- rows <-> domain -------------------------------------------------------------------

_STATE_COLUMNS = ("status", "attempts", "max_attempts", "in_flight", "look_up_first", "next_attempt_at",
                  "last_error", "lead_id", "lead_url", "responsible", "retryable")


def delivery_of(row: asyncpg.Record) -> domain.Delivery:
    return domain.Delivery(request_id=str(row["request_id"]), project_id=row["project_id"],
                           conversation_id=str(row["conversation_id"]),
                           **{c: row[c] for c in _STATE_COLUMNS})


async def save(conn: asyncpg.Connection, d: domain.Delivery, *, claim_token: str | None = None,
               expect_token: str | None = None) -> bool:
    """Write a delivery's state; with expect_token, only if that claim still holds."""
    values = [getattr(d, c) for c in _STATE_COLUMNS]
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(_STATE_COLUMNS))
    n = len(_STATE_COLUMNS) + 2
    query = f"update deliveries set {sets}, claim_token = ${n}, updated_at = now() where request_id = $1"
    args = [d.request_id, *values, claim_token]
    if expect_token is not None:
        query += f" and claim_token = ${n + 1} and status = 'pending'"
        args.append(expect_token)
    return (await conn.execute(query, *args)) != "UPDATE 0"


async def append_outcome(app: web.Application, conn: asyncpg.Connection, d: domain.Delivery,
                         outcome: domain.Outcome, correlation_id: str | None) -> None:
    stream = lead_stream(d.request_id)
    version = await conn.fetchval("select coalesce(max(stream_version), 0) from events where stream_id = $1", stream)
    event = Event(type=outcome.type, stream_id=stream, data=outcome.data, correlation_id=correlation_id
                  or str(uuid.uuid4()), causation_id=d.request_id, project_id=d.project_id)
    await app[STORE].append([event], version, conn=conn)


# ---- the delivery loop ---------------------------------------------------------------

def now() -> datetime:
    return datetime.now(timezone.utc)


class Deliverer:
    def __init__(self, app: web.Application):
        self.app = app
        self.pool: asyncpg.Pool = app[POOL]
        self.tuning: Tuning = app[TUNING]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            done = await self.run_once()
            if not done:
                try:
                    await asyncio.wait_for(stop.wait(), self.tuning.poll_interval)
                except asyncio.TimeoutError:
                    pass

    async def run_once(self) -> int:
        token = str(uuid.uuid4())
        claimed: list[tuple[domain.Delivery, dict, str | None]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """select * from deliveries where status = 'pending' and next_attempt_at <= now()
                   order by next_attempt_at limit $1 for update skip locked""", self.tuning.batch)
            for row in rows:
                d = domain.claim(delivery_of(row), now(), self.tuning.lease)
                await save(conn, d, claim_token=token)
                claimed.append((d, row["requested"], row["correlation_id"]))
        if claimed:
            await asyncio.gather(*(self.attempt(d, requested, correlation, token)
                                   for d, requested, correlation in claimed))
        return len(claimed)

    async def attempt(self, d: domain.Delivery, requested: dict, correlation_id: str | None, token: str) -> None:
        settings = await load_settings(self.pool, d.project_id)
        outcome: domain.Outcome | None
        if settings is None or settings.kind == "none":
            d, outcome = domain.not_configured(d)
        else:
            try:
                d, outcome = await self.deliver(d, requested, settings)
                ATTEMPTS.labels("ok").inc()
            except CrmError as e:
                ATTEMPTS.labels("retryable" if e.retryable else "final").inc()
                log.info("CRM attempt failed", extra={"request_id": d.request_id, "attempt": d.attempts,
                                                       "reason": e.reason, "retryable": e.retryable,
                                                       "ambiguous": e.ambiguous})
                d, outcome = domain.errored(d, e, now(), self.tuning.rand, base=self.tuning.backoff_base)
        await self.record(d, outcome, correlation_id, token)

    async def deliver(self, d: domain.Delivery, requested: dict, settings: CrmSettings):
        adapter = await adapter_for(self.app, settings)
        managers = await self.managers(adapter, settings)
        responsible_id, manager = domain.pick_responsible(managers, requested.get("operator_email"),
                                                          settings.default_responsible, match_manager)
        if d.look_up_first:
            found = await call_crm(settings, adapter.find_lead(d.request_id))
            if found is not None:
                return domain.created(d, found, manager)
        draft = domain.draft_for(d.request_id, requested, responsible_id=responsible_id,
                                 source_name=settings.source_name, app_url=app_url())
        lead = await call_crm(settings, asyncio.wait_for(adapter.create_lead(draft), 2 * self.tuning.crm_timeout))
        return domain.created(d, lead, manager)

    async def managers(self, adapter: _Limited, settings: CrmSettings) -> list[Manager]:
        cache = self.app[MANAGERS]
        key = (settings.project_id, settings.updated_at)
        hit = cache.get(settings.project_id)
        if hit and hit[0] == key and hit[1] > time.monotonic():
            return hit[2]
        found = await call_crm(settings, adapter.managers())
        cache[settings.project_id] = (key, time.monotonic() + self.tuning.managers_ttl, found)
        return found

    async def record(self, d: domain.Delivery, outcome: domain.Outcome | None, correlation_id: str | None,
                     token: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if not await save(conn, d, expect_token=token):
                log.warning("a delivery's claim was lost before its outcome was recorded",
                            extra={"request_id": d.request_id})
                return
            if d.status == "delivered":
                await conn.execute("update deliveries set delivered_at = now() where request_id = $1", d.request_id)
            if outcome is not None:
                await append_outcome(self.app, conn, d, outcome, correlation_id)
                OUTCOMES.labels(outcome.type).inc()
                log.info("lead delivery finished", extra={"request_id": d.request_id, "outcome": outcome.type,
                                                          "attempts": d.attempts})


def delivery_loop(app: web.Application):
    return Deliverer(app).run


def setup(app: web.Application) -> None:
    """The app's CRM plumbing: tuning (tests replace it before start), the per-portal
    limits, the managers cache and the HTTP session, closed on cleanup."""
    app[TUNING] = Tuning.from_env()
    app[LIMITS] = PortalLimits()
    app[MANAGERS] = {}
    app[HTTP] = Http(lambda: app[TUNING].crm_timeout)

    async def close(app: web.Application) -> None:
        await app[HTTP].close()
    app.on_cleanup.append(close)
