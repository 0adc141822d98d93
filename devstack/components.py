"""Start the real components Parley needs - Kafka and PostgreSQL - the same way for
`make run` and the test suite:

1. KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, when set, name existing ones;
2. else, where a Docker engine answers, testcontainers starts official images;
3. else Kafka runs from Apache's jars (kafka_local.py) and PostgreSQL is embedded
   (pgserver), both under the run folder.

There is no fallback to "no broker": if none can be had, starting fails loudly."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from parley import kafka
from parley.config import env, resolve_path
from devstack.kafka_local import LocalKafka
from devstack.procs import say
from parley.schemas import load_topics


def docker_available() -> bool:
    try:
        import docker
        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@dataclass
class Components:
    bootstrap: str
    database_url: str
    kind: str
    _stops: list[Callable[[], None]] = field(default_factory=list)
    # The local broker and the embedded server when started here (else None): the chaos
    # run's supervisor kills and restarts them (devstack/supervisor.py).
    broker: LocalKafka | None = None
    postgres: object | None = None

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()


def _start_kafka(run_dir: Path, use_docker: bool, stops: list, handles: dict) -> tuple[str, str]:
    if env("KAFKA_BOOTSTRAP_SERVERS"):
        return env("KAFKA_BOOTSTRAP_SERVERS"), "external"
    if use_docker:
        from testcontainers.kafka import KafkaContainer
        say("starting Kafka in Docker (testcontainers)...")
        container = KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft().start()
        stops.append(container.stop)
        return container.get_bootstrap_server(), "testcontainers"
    broker = handles["broker"] = LocalKafka(run_dir)
    stops.append(broker.stop)
    return broker.start(), "local jars"


# For a throwaway database (the test suite's): PostgreSQL skips fsync, so a commit costs
# a write to the OS rather than a flush to disk. Every test migrates fresh schemas and
# commits per command; with the flushes a stack took ~2x as long to start on the 2-CPU
# build machine. synchronous_commit stays on: a commit is written before it is
# acknowledged, so a killed PostgreSQL process (not a crashed OS) still loses nothing.
_THROWAWAY_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


async def _apply_throwaway_settings(database_url: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(database_url)
    try:
        for name, value in _THROWAWAY_SETTINGS.items():
            await conn.execute(f"alter system set {name} = '{value}'")
        await conn.execute("select pg_reload_conf()")
    finally:
        await conn.close()


def _start_postgres(run_dir: Path, use_docker: bool, stops: list, handles: dict,
                    throwaway: bool = False) -> tuple[str, str]:
    if env("DATABASE_URL"):
        return env("DATABASE_URL"), "external"
    if use_docker:
        from testcontainers.postgres import PostgresContainer
        say("starting PostgreSQL in Docker (testcontainers)...")
        container = PostgresContainer("postgres:16", driver=None).start()
        stops.append(container.stop)
        return container.get_connection_url(), "testcontainers"
    import pgserver
    pgdata = run_dir / "postgres"
    say(f"starting embedded PostgreSQL 16 in {pgdata}...")
    server = handles["postgres"] = pgserver.get_server(pgdata, cleanup_mode="stop")
    stops.append(server.cleanup)
    if throwaway:
        asyncio.run(_apply_throwaway_settings(server.get_uri()))
    return server.get_uri(), "embedded pgserver"


def start(run_dir: Path | None = None, *, use_docker: bool | None = None, throwaway: bool = False) -> Components:
    """`throwaway`: the data dies with the run (the test suite), so an embedded PostgreSQL
    may skip fsync (_THROWAWAY_SETTINGS). An external or Docker database is left as it is."""
    run_dir = Path(run_dir or resolve_path(env("PARLEY_RUN_DIR"))).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if use_docker is None:
        use_docker = not (env("KAFKA_BOOTSTRAP_SERVERS") and env("DATABASE_URL")) and docker_available()
    stops: list[Callable[[], None]] = []
    handles: dict = {}
    try:
        database_url, pg_kind = _start_postgres(run_dir, use_docker, stops, handles, throwaway)
        bootstrap, kafka_kind = _start_kafka(run_dir, use_docker, stops, handles)
        created = asyncio.run(kafka.create_topics(bootstrap, load_topics(resolve_path(env("PARLEY_SCHEMAS_DIR")) / "asyncapi.yaml")))
        if created:
            say(f"created topics: {', '.join(created)}")
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return Components(bootstrap, database_url, f"Kafka: {kafka_kind}, PostgreSQL: {pg_kind}", stops, **handles)
