"""The CRM's side of the returning client's card: their earlier leads, found by phone or
email (`CrmAdapter.client_leads`; Bitrix24: crm.duplicate.findbycomm, then crm.lead.get).

The card must never wait on, or fail with, the CRM: an answer is kept in
`client_lookups` and served while fresh (FRESH_SECONDS, or until the settings change);
a refresh asks the CRM again, for at most LOOKUP_TIMEOUT seconds; when the CRM cannot
answer, the last answer (or none) is served marked `stale`, with the reason.

Asking the CRM about a phone or email is a look-up of a person's records (issue 23): the
gateway sends only contacts an operator entered or confirmed, each question the CRM is
actually asked goes in the audit trail (`crm.client_lookup`: the conversation and which
kinds of contact, never the contact itself), and an operator may ask at most
LOOKUPS_PER_OPERATOR per LOOKUP_WINDOW_SECONDS; past that, the card is served from what
is kept, marked stale with the reason."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from parley import audit
from parley.service import POOL, STORE
from parley.sliding_window import SlidingWindow

from crm_bridge import deliveries
from crm_bridge.crm import ClientLead, CrmError

FRESH_SECONDS = 300
LOOKUP_TIMEOUT = 5.0
LOOKUPS_PER_OPERATOR = 30
LOOKUP_WINDOW_SECONDS = 600.0
LOOKUPS = web.AppKey("client_lookups_by_operator", SlidingWindow)


def setup(app: web.Application) -> None:
    app[LOOKUPS] = SlidingWindow(LOOKUPS_PER_OPERATOR, LOOKUP_WINDOW_SECONDS, max_keys=10_000)


def lead_view(lead: ClientLead) -> dict[str, Any]:
    return {"lead_id": lead.lead_id, "title": lead.title, "status": lead.status, "created_at": lead.created_at,
            "url": lead.url}


def lookup_key(phone: str | None, email: str | None) -> str:
    return f"{phone or ''}\n{(email or '').strip().lower()}"


def _answer(kind: str, leads: list, fetched_at: datetime | None, *, stale: bool = False,
            error: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "leads": leads, "fetched_at": fetched_at.isoformat() if fetched_at else None,
            "stale": stale, "error": error}


async def crm_leads(app: web.Application, project_id: str, phone: str | None, email: str | None,
                    *, by: str, conversation_id: str | None, refresh: bool = False) -> dict[str, Any]:
    """{"kind", "leads", "fetched_at", "stale", "error"} for the card, asked for by the
    operator `by` from the conversation `conversation_id`."""
    pool = app[POOL]
    settings = await deliveries.load_settings(pool, project_id)
    if settings is None or settings.kind == "none":
        return _answer("none", [], None)
    if not phone and not email:
        return _answer(settings.kind, [], None)
    key = lookup_key(phone, email)
    cached = await pool.fetchrow(
        "select leads, fetched_at from client_lookups where project_id = $1 and lookup_key = $2 and settings_at = $3",
        project_id, key, settings.updated_at)
    now = deliveries.now()
    if cached is not None and not refresh and now - cached["fetched_at"] < timedelta(seconds=FRESH_SECONDS):
        return _answer(settings.kind, cached["leads"], cached["fetched_at"])
    if not app[LOOKUPS].allow(f"{project_id}\n{by}"):
        return _answer(settings.kind, cached["leads"] if cached else [], cached["fetched_at"] if cached else None,
                       stale=True, error=f"You have asked the CRM about {LOOKUPS_PER_OPERATOR} clients in the last "
                                         f"{LOOKUP_WINDOW_SECONDS / 60:.0f} minutes; try again later.")
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(app[STORE], conn, project_id, by, "crm.client_lookup", conversation_id,
                           by_phone=bool(phone), by_email=bool(email), refresh=refresh)
    try:
        adapter = await deliveries.adapter_for(app, settings)
        found = await deliveries.call_crm(settings, asyncio.wait_for(adapter.client_leads(phone, email),
                                                                     LOOKUP_TIMEOUT))
    except CrmError as e:
        return _answer(settings.kind, cached["leads"] if cached else [], cached["fetched_at"] if cached else None,
                       stale=True, error=e.reason[:300])
    leads = [lead_view(lead) for lead in found]
    await pool.execute(
        """insert into client_lookups (project_id, lookup_key, settings_at, leads, fetched_at)
           values ($1, $2, $3, $4, $5)
           on conflict (project_id, lookup_key) do update set settings_at = excluded.settings_at,
               leads = excluded.leads, fetched_at = excluded.fetched_at""",
        project_id, key, settings.updated_at, leads, now)
    return _answer(settings.kind, leads, now)
