"""The service skeleton every Parley service is built from: an aiohttp app with
/healthz, /readyz (really checks PostgreSQL and Kafka), /metrics, JSON logs carrying
correlation ids, migrations at start-up, the outbox relay and consumers as supervised
background tasks, and a graceful shutdown that lets them finish their batch.

Admission control (every service but the public gateway, parley.admission): a bounded
number of commands (POST, PUT, PATCH, DELETE) at once, a short bounded wait, then `503
busy`. Reads (GET) are not held: they are cheap and indexed, and a reader such as the
gateway's catch-up after an admitted message must not be refused half-way through it.
A batch of commands (parley.call_batches) takes a place for each of its commands."""
from __future__ import annotations

import argparse
import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Sequence

import asyncpg
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from parley import call_batches, db, gc_pauses, internal_auth, kafka, logs
from parley.admission import ADMISSION, Admission
from parley.config import Settings, env
from parley.consumer import BatchHandler, ConsumerRunner, Handler, Opener, Reset
from parley.eventstore import EventStore
from parley.http import errors_middleware
from parley.relay import Relay
from parley.schemas import Catalog
from parley.subject_keys import Sealer

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
STORE = web.AppKey("store", EventStore)
TASKS = web.AppKey("tasks", dict)

REQUESTS = Counter("parley_http_requests_total", "HTTP requests served", ["route", "status"])
LATENCY = Histogram("parley_http_request_seconds", "HTTP request latency", ["route"])

_READS = frozenset({"GET", "HEAD", "OPTIONS"})

_CORRELATION_HEADER = "X-Correlation-Id"
_PROBES = {"/healthz", "/readyz", "/metrics"}


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    topics: Sequence[str]
    handle: Handler | BatchHandler
    reset: Reset | None = None
    gather_ms: int = 0   # > 0: no one waits on it; fetch in batches (ConsumerRunner.gather_ms)
    takes_batch: bool = False   # handle(conn, events): a partition batch at once, set-based
    types: frozenset[str] | None = None   # the event types it acts on; the rest only move its offset
    # For a handler that reads personal fields of sealed events (parley/personal.py): what
    # opens a batch of them, made from the app once it runs (a KeyRing to the keys' owner).
    opener: Callable[[web.Application], Opener] | None = None
    # Its effect is the same applied twice in order: no per-stream claims (ConsumerRunner).
    idempotent: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    name: str                      # "operator-registry": logs, metrics, process name
    schema: str                    # its PostgreSQL schema: "operator_registry"
    default_port: int
    migrations: Path | None = None
    owns_streams: bool = True      # runs the outbox relay for its schema
    # Its events carry personal data: the relay seals it on the way to Kafka (parley/personal.py).
    seals_personal_data: bool = False
    consumers: Sequence[ConsumerSpec] = ()
    routes: Callable[[web.Application], None] | None = None
    # Other supervised loops: (name, factory) where factory(app) returns run(stop).
    loops: Sequence[tuple[str, Callable[[web.Application], Callable[[asyncio.Event], Awaitable[None]]]]] = ()
    extra_schema_dirs: Sequence[Path] = field(default=())
    # The gateway: its port is public, so it takes unsigned calls and keeps /metrics on
    # a second, internal port. Every other service answers signed calls only.
    public: bool = False
    # Its own `python -m parley.admin` subcommands: admin(subparsers, this spec) adds
    # parsers, each with set_defaults(run=command), where command(args) returns the exit code.
    admin: Callable[[argparse._SubParsersAction, "ServiceSpec"], None] | None = None


@web.middleware
async def _admission(request: web.Request, handler):
    if request.method in _READS or request.path in _PROBES or request.path == call_batches.BATCH_PATH:
        return await handler(request)   # (a batch's commands take their places one by one)
    async with request.app[ADMISSION]:
        return await handler(request)


@web.middleware
async def _correlation_and_metrics(request: web.Request, handler):
    cid = logs.correlation_id_from(request.headers.get(_CORRELATION_HEADER))
    token = logs.correlation_id.set(cid)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[_CORRELATION_HEADER] = cid
        return response
    except web.HTTPException as e:
        status = e.status
        e.headers[_CORRELATION_HEADER] = cid
        raise
    finally:
        REQUESTS.labels(route, str(status)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        if request.path not in _PROBES:
            log.info("http request", extra={"method": request.method, "path": request.path, "status": status,
                                            "ms": round((time.perf_counter() - started) * 1000, 1)})
        logs.correlation_id.reset(token)


async def healthz(request: web.Request) -> web.Response:
    return await _health(request.app)


async def readyz(request: web.Request) -> web.Response:
    return await _readiness(request.app)


async def _health(app: web.Application) -> web.Response:
    return web.json_response({"status": "ok", "service": app[SETTINGS].service})


async def _readiness(app: web.Application) -> web.Response:
    settings = app[SETTINGS]
    checks: dict[str, str] = {}

    async def check(name: str, probe: Awaitable) -> None:
        try:
            await asyncio.wait_for(probe, 3)
            checks[name] = "ok"
        except Exception as e:
            checks[name] = f"failing: {e!r}"

    await asyncio.gather(check("postgres", app[POOL].fetchval("select 1")),
                         check("kafka", kafka.ping(settings.kafka_bootstrap)))
    for name, task in app[TASKS].items():
        checks[name] = "ok" if not task.done() else "stopped"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks},
                             status=200 if ready else 503)


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _supervise(name: str, run: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
    """Keep a background loop alive: an unexpected crash is logged and restarted."""
    while not stop.is_set():
        try:
            await run(stop)
        except Exception:
            log.exception("background task crashed; restarting in 2 s", extra={"task": name})
            try:
                await asyncio.wait_for(stop.wait(), 2)
            except asyncio.TimeoutError:
                pass


def create_app(spec: ServiceSpec, settings: Settings) -> web.Application:
    middlewares = [_correlation_and_metrics, errors_middleware]
    if not spec.public:
        # Signature first (an unsigned flood takes no place), then admission (innermost).
        middlewares += [internal_auth.require_signed_calls(), _admission]
    app = web.Application(middlewares=middlewares, client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[ADMISSION] = Admission()
    app[TASKS] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if not spec.public:
        app.router.add_get("/metrics", metrics)
        call_batches.setup(app)

    async def database(app: web.Application):
        pool = await db.create_pool(settings.database_url, spec.schema)
        await db.migrate(pool, spec.schema, *([spec.migrations] if spec.migrations else []))
        app[POOL] = pool
        app[STORE] = EventStore(pool, Catalog(settings.schemas_dir, *spec.extra_schema_dirs))
        yield
        await pool.close()

    async def background(app: web.Application):
        stop = asyncio.Event()
        loops: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {}
        if spec.owns_streams:
            loops["relay"] = Relay(settings.database_url, spec.schema, settings.kafka_bootstrap,
                                   sealer=Sealer() if spec.seals_personal_data else None).run
        for c in spec.consumers:
            runner = ConsumerRunner(app[POOL], settings.kafka_bootstrap, name=c.name, topics=c.topics,
                                    handle=None if c.takes_batch else c.handle,
                                    handle_batch=c.handle if c.takes_batch else None, reset=c.reset,
                                    gather_ms=c.gather_ms, types=c.types,
                                    opener=c.opener(app) if c.opener else None, idempotent=c.idempotent)
            loops[f"consumer:{c.name}"] = runner.run
        for name, factory in spec.loops:
            loops[name] = factory(app)
        for name, run in loops.items():
            app[TASKS][name] = asyncio.create_task(_supervise(name, run, stop), name=name)
        yield
        stop.set()  # loops finish their current batch, store progress and return
        tasks = list(app[TASKS].values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=settings.shutdown_timeout)
            for task in late:
                log.warning("background task did not stop in time; cancelling", extra={"task": task.get_name()})
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(background)
    if spec.routes:
        spec.routes(app)
    return app


def internal_port(port: int):
    """A public service's second, internal port: metrics and the probes, nothing else.
    Started and stopped with the main app (a cleanup context of it)."""
    async def run(app: web.Application):
        internal = web.Application(middlewares=[errors_middleware])
        internal.router.add_get("/healthz", lambda _: _health(app))
        internal.router.add_get("/readyz", lambda _: _readiness(app))
        internal.router.add_get("/metrics", metrics)
        runner = web.AppRunner(internal, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, app[SETTINGS].bind_host, port).start()
        log.info("internal port listening", extra={"host": app[SETTINGS].bind_host, "port": port})
        yield
        await runner.cleanup()
    return run


def main(spec: ServiceSpec) -> None:
    settings = Settings.from_env(spec.name, spec.default_port)
    logs.setup_logging(spec.name, settings.log_level)
    gc_pauses.watch()
    if not spec.public:
        internal_auth.secret()  # fail at start, with the fix, rather than on the first call
    log.info("starting", extra={"port": settings.http_port})
    app = create_app(spec, settings)
    # A process of its own only (not the test suite's in-process services): it freezes the whole process.
    app.cleanup_ctx.append(gc_pauses.frozen_while_running)
    if spec.public:
        app.cleanup_ctx.append(internal_port(int(env("PARLEY_INTERNAL_PORT"))))
    web.run_app(app, host=env("PARLEY_PUBLIC_BIND_HOST") if spec.public else settings.bind_host,
                port=settings.http_port, print=None, shutdown_timeout=settings.shutdown_timeout, access_log=None,
                # uvloop: the same asyncio, its socket and timer work in C (issue 21).
                loop=uvloop.new_event_loop())
    log.info("stopped")
