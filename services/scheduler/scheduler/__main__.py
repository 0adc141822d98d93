from pathlib import Path

from aiohttp import web

from parley.consumer import GATHER_MS
from parley.service import ConsumerSpec, ServiceSpec, main

from scheduler import report_rows, reports, schedules, timers


def routes(app: web.Application) -> None:
    timers.setup(app)
    schedules.add_routes(app)
    reports.add_routes(app)


SPEC = ServiceSpec(
    name="scheduler",
    schema="scheduler",
    default_port=8084,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=True,
    consumers=[ConsumerSpec("scheduler.timers", ["conversation.events"], timers.on_conversation_events,
                           # no one waits on it: fetched in batches; messages do not move timers
                           gather_ms=GATHER_MS, takes_batch=True, types=timers.EVENT_TYPES),
               # Reports: rows per conversation, replays change nothing (report_rows.evolve's versions).
               ConsumerSpec("scheduler.reports", ["conversation.events"], reports.on_conversation_events,
                            gather_ms=GATHER_MS, takes_batch=True, types=report_rows.EVENT_TYPES, idempotent=True)],
    routes=routes,
    loops=[("boundaries", schedules.boundary_loop), ("timers", timers.fire_loop)],
)

if __name__ == "__main__":
    main(SPEC)
