from pathlib import Path

from aiohttp import web

from parley.service import ServiceSpec, main

from conversation import auto_assign, erasure_requests, key_routes, rating_routes, routes, search_projection


def add_routes(app: web.Application) -> None:
    routes.add_routes(app)
    auto_assign.setup(app)
    rating_routes.add_routes(app)
    key_routes.add_routes(app)
    erasure_requests.add_routes(app)


SPEC = ServiceSpec(
    name="conversation",
    schema="conversation",
    default_port=8081,
    migrations=Path(__file__).parent / "migrations",
    routes=add_routes,
    seals_personal_data=True,
    consumers=[search_projection.CONSUMER],
    loops=[("offers:sweep", auto_assign.sweep_loop), ("privacy:erasures", erasure_requests.loop)],
)

if __name__ == "__main__":
    main(SPEC)
