from pathlib import Path

import orjson
import yaml
from aiohttp import web

from parley.live import LiveSubscriber
from parley.service import SETTINGS, ServiceSpec, main

from gateway import avatar_files, operator_sockets, upstream

OPENAPI = yaml.safe_load((Path(__file__).parent / "openapi.yaml").read_text())

# Public REST routes that operator-registry owns; the gateway forwards them.
REGISTRY_ROUTES = ["/api/session", "/api/project", "/api/project/{tail:.+}", "/api/widget/config",
                   "/api/operators", "/api/operators/{tail:.+}", "/api/templates", "/api/templates/{tail:.+}"]


async def openapi(_: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(OPENAPI), content_type="application/json")


def routes(app: web.Application) -> None:
    app.cleanup_ctx.append(upstream.http_client)
    app[operator_sockets.SOCKETS] = operator_sockets.OperatorSockets()
    app.on_shutdown.append(operator_sockets.close_all)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_put("/api/operators/{id}/avatar", avatar_files.upload)
    app.router.add_get("/avatars/{name}.png", avatar_files.serve)
    app.router.add_get("/ws/operator", operator_sockets.operator_socket)
    for path in REGISTRY_ROUTES:
        app.router.add_route("*", path, upstream.to_registry)


def operator_events(app: web.Application):
    async def handle(event):
        await operator_sockets.on_operator_event(app, event)
    return LiveSubscriber(app[SETTINGS].kafka_bootstrap, ["operator.events"], handle).run


SPEC = ServiceSpec(
    name="gateway",
    schema="gateway",
    default_port=8080,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=False,
    routes=routes,
    loops=[("live:operator.events", operator_events)],
)

if __name__ == "__main__":
    main(SPEC)
