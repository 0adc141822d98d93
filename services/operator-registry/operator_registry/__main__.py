from pathlib import Path

from aiohttp import web

from parley.config import env
from parley.service import STORE, ConsumerSpec, ServiceSpec, main

from operator_registry import (admin_commands, audit_log, audit_routes, commands, first_run, identity_secrets, presence,
                               routes, sessions_routes, two_factor_routes)

DEMO_PROJECT = "demo"


def add_routes(app: web.Application) -> None:
    routes.add_routes(app)
    first_run.add_routes(app)
    for method, route, handler in (presence.ROUTES + identity_secrets.ROUTES + audit_routes.ROUTES
                                   + two_factor_routes.ROUTES + sessions_routes.ROUTES):
        app.router.add_route(method, route, handler)

    async def seed(app: web.Application) -> None:
        await commands.seed_demo_project(app[STORE], DEMO_PROJECT, env("PARLEY_OWNER_EMAIL"),
                                         env("PARLEY_OWNER_PASSWORD"))
    # Only `make run` and the tests want a demo: a real installation starts with no
    # project, at the gateway's /setup page (or `python -m parley.admin create-project`).
    if env("PARLEY_SEED_DEMO") == "1":
        app.on_startup.append(seed)


SPEC = ServiceSpec(
    name="operator-registry",
    schema="operator_registry",
    default_port=8082,
    migrations=Path(__file__).parent / "migrations",
    consumers=[ConsumerSpec("operator-registry.audit", ["audit.events"], audit_log.on_audit_event,
                            reset=audit_log.reset)],
    routes=add_routes,
    loops=[("presence:sweep", presence.sweep_loop)],
    admin=admin_commands.add_commands,
)

if __name__ == "__main__":
    main(SPEC)
