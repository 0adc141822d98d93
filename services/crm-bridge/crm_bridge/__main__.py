from pathlib import Path

from parley import key_ring
from parley.config import env
from parley.consumer import GATHER_MS
from parley.service import ConsumerSpec, ServiceSpec, main

from crm_bridge import api, deliveries

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
                                                             "lead.requested"))],
    routes=api.add_routes,
    loops=[("deliveries", deliveries.delivery_loop)],
)

if __name__ == "__main__":
    main(SPEC)
