"""crm-bridge's part of an erasure (issue 20): when a conversation is erased
(`chat.conversation_erased` on conversation.events, the leads consumer), its lead
requests' copies in `deliveries` lose their personal fields (transcript, contacts,
params, page: parley/personal.py's erased values) and their last error, and the client
cards cached for its phones and emails go. The leads already made in the CRM are outside
Parley: they are reported with the erasure (id and link), for the owner to erase there."""
from __future__ import annotations

import asyncpg

from parley import personal
from parley.config import env
from parley.contract import id_of
from parley.envelope import Event
from parley.erasure_reports import report


async def on_conversation_erased(conn: asyncpg.Connection, event: Event) -> None:
    cid = id_of(event.stream_id)
    rows = await conn.fetch("select request_id, requested, lead_id, lead_url from deliveries where conversation_id = $1"
                            " for update", cid)
    phones, emails = set(), set()
    for r in rows:
        contacts = (r["requested"] or {}).get("contacts") or {}
        phones |= {contacts["phone"]} if contacts.get("phone") else set()
        emails |= {contacts["email"].strip().lower()} if contacts.get("email") else set()
    if rows:
        await conn.executemany(
            "update deliveries set requested = $2, last_error = null where request_id = $1",
            [(r["request_id"], personal.erase_event(Event("lead.requested", event.stream_id, r["requested"])).data)
             for r in rows])
    if phones or emails:
        await conn.execute(
            """delete from client_lookups where project_id = $1
               and (split_part(lookup_key, E'\\n', 1) = any($2::text[])
                    or split_part(lookup_key, E'\\n', 2) = any($3::text[]))""",
            event.project_id, sorted(phones), sorted(emails))
    leads = [{"lead_id": r["lead_id"], "url": r["lead_url"]} for r in rows if r["lead_id"]]
    await report(env("PARLEY_CONVERSATION_URL"), "crm", event, {"leads": leads, "lead_requests": len(rows)})
