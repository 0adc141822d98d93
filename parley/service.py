"""The service skeleton every Parley service is built from: an aiohttp app with
/healthz, /readyz (really checks PostgreSQL and Kafka), /metrics, JSON logs carrying
correlation ids, migrations at start-up, the outbox relay and consumers as supervised
background tasks, and a graceful shutdown that lets them finish their batch.

Admission control (every service but the public gateway): at most `MAX_COMMANDS_IN_FLIGHT`
commands (POST, PUT, PATCH, DELETE) run at once in a process; a few more wait, at most
`COMMAND_QUEUE` of them and for at most `COMMAND_WAIT_SECONDS`; anything beyond gets at
once `503 busy` with `Retry-After` and nothing is stored. Offered twice what the process
can do, it goes on doing what it can at its usual latency and says `busy` to the rest,
rather than letting every request queue until the callers time out. Reads (GET) are not
held: they are cheap and indexed, and a reader such as the gateway's catch-up after an
admitted message must not be refused half-way through it."""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Sequence

import asyncpg
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from parley import db, internal_auth, kafka, logs
from parley.config import Settings, env
from parley.consumer import BatchHandler, ConsumerRunner, Handler, Opener, Reset
from parley.eventstore import EventStore
from parley.http import busy, errors_middleware
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

ADMISSION_REFUSED = Counter("parley_admission_refused_total", "Commands answered 503 busy by admission control")
COMMANDS_IN_FLIGHT = Gauge("parley_commands_in_flight", "Commands running now (admission control)")

# Admission control (see the module's docstring). Commands in flight at once are what a
# batch is made of (parley.batching): the conversation service decides and writes the
# commands that queue behind a transaction in the next one, so a batch costs a few
# statements whatever its size, and 16 in flight capped it at ~450 commands/s (Little's
# law at ~35 ms each). 128 let batches grow under load; the wait below still refuses fast.
MAX_COMMANDS_IN_FLIGHT = 128
COMMAND_QUEUE = 64
COMMAND_WAIT_SECONDS = 0.25
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

_CORRELATION_HEADER = "X-Correlation-Id"
_VALID_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_PROBES = {"/healthz", "/readyz", "/metrics"}


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    topics: Sequence[str]
    handle: Handler | BatchHandler
    reset: Reset | None = None
    gather_ms: int = 0   # > 0: no one waits on it; fetch in batches (ConsumerRunner.gather_ms)
    takes_batch: bool = False   # handle(conn, events): a partition batch at once, set-based
    # For a handler that reads personal fields of sealed events (parley/personal.py): what
    # opens a batch of them, made from the app once it runs (a KeyRing to the keys' owner).
    opener: Callable[[web.Application], Opener] | None = None


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


class Admission:
    """A bounded number of commands at once, a bounded, short wait for a place, then `busy`.

    The bounds are attributes, read on every request: a test (or an operator's hook) may
    change them on a running app (`app[ADMISSION].limit = 0` refuses every command)."""

    def __init__(self, limit: int = MAX_COMMANDS_IN_FLIGHT, queue: int = COMMAND_QUEUE,
                 wait: float = COMMAND_WAIT_SECONDS):
        self.limit, self.queue, self.wait = limit, queue, wait
        self.in_flight = 0
        self.refused = 0
        self._waiters: deque[asyncio.Future] = deque()   # FIFO; a timed-out waiter's future is done(False)

    async def __aenter__(self) -> None:
        if self.in_flight < self.limit and not any(not w.done() for w in self._waiters):
            self._take()
            return
        if self.wait <= 0 or sum(not w.done() for w in self._waiters) >= self.queue:
            self._refuse()
        loop = asyncio.get_running_loop()
        place = loop.create_future()
        self._waiters.append(place)
        timer = loop.call_later(self.wait, lambda: place.done() or place.set_result(False))
        try:
            granted = await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled() and place.result():
                COMMANDS_IN_FLIGHT.inc()
                self._release()  # the place was handed over just as the caller went away: pass it on
            raise
        finally:
            timer.cancel()
            try:
                self._waiters.remove(place)
            except ValueError:
                pass
        if not granted:
            self._refuse()
        COMMANDS_IN_FLIGHT.inc()  # a place handed over: in_flight already counts it

    async def __aexit__(self, *_) -> None:
        self._release()

    def _take(self) -> None:
        self.in_flight += 1
        COMMANDS_IN_FLIGHT.inc()

    def _refuse(self) -> None:
        self.refused += 1
        ADMISSION_REFUSED.inc()
        raise busy()

    def _release(self) -> None:
        COMMANDS_IN_FLIGHT.dec()
        while self._waiters:
            place = self._waiters.popleft()
            if not place.done():
                place.set_result(True)  # the place goes straight to the longest waiter
                return
        self.in_flight -= 1


ADMISSION = web.AppKey("admission", Admission)


@web.middleware
async def _admission(request: web.Request, handler):
    if request.method in _READS or request.path in _PROBES:
        return await handler(request)
    async with request.app[ADMISSION]:
        return await handler(request)


@web.middleware
async def _correlation_and_metrics(request: web.Request, handler):
    incoming = request.headers.get(_CORRELATION_HEADER, "")
    cid = incoming if _VALID_CORRELATION.match(incoming) else logs.new_correlation_id()
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
                                    gather_ms=c.gather_ms,
                                    opener=c.opener(app) if c.opener else None)
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
    if not spec.public:
        internal_auth.secret()  # fail at start, with the fix, rather than on the first call
    log.info("starting", extra={"port": settings.http_port})
    app = create_app(spec, settings)
    if spec.public:
        app.cleanup_ctx.append(internal_port(int(env("PARLEY_INTERNAL_PORT"))))
    web.run_app(app, host=env("PARLEY_PUBLIC_BIND_HOST") if spec.public else settings.bind_host,
                port=settings.http_port, print=None, shutdown_timeout=settings.shutdown_timeout, access_log=None,
                # uvloop: the same asyncio, its socket and timer work in C (issue 21).
                loop=uvloop.new_event_loop())
    log.info("stopped")
