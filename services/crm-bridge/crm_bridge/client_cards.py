"""The CRM's side of the returning client's card: their earlier leads, found by phone or
email (`CrmAdapter.client_leads`; Bitrix24: crm.duplicate.findbycomm, then crm.lead.get).

The card must never wait on, or fail with, the CRM: an answer is kept in
`client_lookups` and served while fresh (FRESH_SECONDS, or until the settings change);
a refresh asks the CRM again, for at most LOOKUP_TIMEOUT seconds; when the CRM cannot
answer, the last answer (or none) is served marked `stale`, with the reason."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from parley.service import POOL

from crm_bridge import deliveries
from crm_bridge.crm import ClientLead, CrmError

FRESH_SECONDS = 300
LOOKUP_TIMEOUT = 5.0


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
                    *, refresh: bool = False) -> dict[str, Any]:
    """{"kind", "leads", "fetched_at", "stale", "error"} for the card."""
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
