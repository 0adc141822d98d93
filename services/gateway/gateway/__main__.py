from collections import OrderedDict
from pathlib import Path

import orjson
import yaml
from aiohttp import web

from parley.consumer import GATHER_MS
from parley.live import LiveSubscriber
from parley.service import SETTINGS, ConsumerSpec, ServiceSpec, main

from gateway import (admin_settings_routes, auth, avatar_files, conversation_crm, conversations, cors, crm_routes,
                     csat, erasures, files, privacy_routes, project_config, rate_limits, registry_routes,
                     report_routes, setup_routes, site_visitor_routes, upstreams, verified_visitors, visitor_api, web_files)
from gateway.live import (availability, conversation_audience, conversation_keys, operator_sockets, presence, push,
                          signal_producer, site_visitors, typing_signals, visitor_availability, visitor_socket,
                          visitor_sockets, widget_settings)

HERE = Path(__file__).parent
OPENAPI = yaml.safe_load((HERE / "openapi.yaml").read_text())


async def openapi(_: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(OPENAPI), content_type="application/json")


def routes(app: web.Application) -> None:
    app.middlewares.append(cors.widget_cors)
    app.middlewares.append(auth.csrf)
    app.middlewares.append(auth.session_rotation)
    app.cleanup_ctx.append(upstreams.clients)
    app.cleanup_ctx.append(signal_producer.producer)
    app[operator_sockets.SOCKETS] = operator_sockets.OperatorSockets()
    app[visitor_sockets.VISITOR_SOCKETS] = visitor_sockets.VisitorSockets()
    app[rate_limits.LIMITS] = rate_limits.Limits()
    project_config.setup(app)
    availability.setup(app)
    verified_visitors.setup(app)
    presence.setup(app)
    site_visitors.setup(app)
    conversation_keys.setup(app)
    app[conversation_audience.SUMMARIES] = OrderedDict()
    app.on_shutdown.append(operator_sockets.close_all)
    app.on_shutdown.append(visitor_sockets.close_all)
    app.router.add_get("/api/openapi.json", openapi)
    web_files.add_routes(app)
    app.router.add_put("/api/operators/{id}/avatar", avatar_files.upload)
    app.router.add_get("/avatars/{name}.png", avatar_files.serve)
    app.router.add_get("/ws/operator", operator_sockets.operator_socket)
    app.router.add_get("/api/widget/config", visitor_api.widget_config)
    app.router.add_post("/api/visitor/session", visitor_api.visitor_session)
    app.router.add_post("/api/visitor/attachments", visitor_api.visitor_attachment)
    app.router.add_get("/ws/visitor", visitor_socket.visitor_socket)
    conversations.add_routes(app)
    registry_routes.add_routes(app)
    crm_routes.add_routes(app)
    conversation_crm.add_routes(app)
    admin_settings_routes.add_routes(app)
    privacy_routes.add_routes(app)
    setup_routes.add_routes(app)
    typing_signals.add_routes(app)
    csat.add_routes(app)
    site_visitor_routes.add_routes(app)
    report_routes.add_routes(app)


def both(*handlers):
    """One live subscription for several handlers of the same topic."""
    async def on_event(app: web.Application, event) -> None:
        for handler in handlers:
            await handler(app, event)
    return on_event


def live(app: web.Application):
    """The topics the gateway follows from now on (no consumer group: every gateway sees
    every partition), one consumer for all of them (parley.live)."""
    on_topic = {"operator.events": both(operator_sockets.on_operator_event, visitor_availability.on_operator_event),
                "conversation.events": push.on_conversation_event,
                "lead.events": push.on_lead_event,
                "schedule.events": both(availability.on_schedule_event, visitor_availability.on_schedule_event),
                "project.events": widget_settings.on_project_event,
                typing_signals.TOPIC: typing_signals.on_signal,
                site_visitors.TOPIC: site_visitors.on_signal}

    def handler(on_event):
        async def handle(event):
            await on_event(app, event)
        return handle
    # Conversation events carry their personal fields sealed (parley/personal.py): opened
    # with the conversation service's keys before they are pushed to sockets.
    return LiveSubscriber(app[SETTINGS].kafka_bootstrap, {topic: handler(h) for topic, h in on_topic.items()},
                          decoders={typing_signals.TOPIC: typing_signals.decode,
                                    site_visitors.TOPIC: site_visitors.decoder(app)},
                          openers={"conversation.events": app[conversation_keys.KEYS].open}).run


SPEC = ServiceSpec(
    name="gateway",
    schema="gateway",
    default_port=8080,
    migrations=HERE / "migrations",
    owns_streams=False,
    public=True,
    routes=routes,
    # An erased conversation's files go (gateway/erasures.py); no one waits on it: fetched in batches.
    consumers=[ConsumerSpec("gateway.erasures", ["conversation.events"], erasures.on_conversation_event,
                            gather_ms=GATHER_MS, types=erasures.EVENT_TYPES)],
    loops=[("files:expiry", files.expiry_loop),
           ("setup:announce", setup_routes.announce),
           ("presence:report", presence.report_loop),
           ("verified:sweep", visitor_sockets.verified_sweep),
           ("visitors:flush", site_visitors.flush_loop),
           ("live", live)],
)

if __name__ == "__main__":
    main(SPEC)
