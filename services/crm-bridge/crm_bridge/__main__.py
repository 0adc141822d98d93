from pathlib import Path

from aiohttp import web

from parley import key_ring
from parley.config import env
from parley.consumer import GATHER_MS
from parley.service import ConsumerSpec, ServiceSpec, main

from crm_bridge import api, deliveries, email_deliveries


def routes(app: web.Application) -> None:
    api.add_routes(app)
    email_deliveries.add_routes(app)


SPEC = ServiceSpec(
    name="crm-bridge",
    schema="crm_bridge",
    default_port=8083,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=True,
    consumers=[ConsumerSpec("crm-bridge.leads", ["conversation.events"], deliveries.on_conversation_event,
                           gather_ms=GATHER_MS,    # no one waits on it: fetched in batches
                           types=deliveries.EVENT_TYPES,
                           # a lead request's transcript and contacts travel sealed
                           opener=key_ring.conversation_keys(lambda: env("PARLEY_CONVERSATION_URL"),
                                                             "lead.requested")),
               # Transcripts by email: the outbox rows (the address is asked for when sending).
               ConsumerSpec("crm-bridge.emails", ["conversation.events"], email_deliveries.on_conversation_event,
                            gather_ms=GATHER_MS, types=email_deliveries.EVENT_TYPES)],
    routes=routes,
    loops=[("deliveries", deliveries.delivery_loop), ("emails", email_deliveries.mail_loop)],
)

if __name__ == "__main__":
    main(SPEC)
