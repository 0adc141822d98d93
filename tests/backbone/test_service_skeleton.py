"""The service skeleton with a real PostgreSQL and Kafka: probes that really probe,
metrics, correlation ids in JSON logs, and a graceful shutdown that finishes the
batch in hand and stores its offsets."""
import asyncio
import dataclasses
import io
import logging

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.config import REPO_ROOT, Settings
from parley.consumer import ConsumerRunner
from parley.eventstore import EventStore
from parley.logs import JsonFormatter
from devstack.procs import free_port
from parley.service import ConsumerSpec, ServiceSpec, create_app
from tests.conftest import TEST_SCHEMAS
from tests.support import eventually, item_added


def settings_for(platform, **changes) -> Settings:
    base = Settings(service="skeleton-test", http_port=0, database_url=platform.database_url,
                    kafka_bootstrap=platform.bootstrap, log_level="INFO",
                    schemas_dir=REPO_ROOT / "schemas", shutdown_timeout=10)
    return dataclasses.replace(base, **changes)


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("skeleton-test"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


async def serve(spec: ServiceSpec, settings: Settings) -> TestClient:
    client = TestClient(TestServer(create_app(spec, settings)))
    await client.start_server()
    return client


async def test_probes_metrics_and_correlation_ids(platform, schema_name, log_lines):
    spec = ServiceSpec(name="skeleton-test", schema=schema_name, default_port=0)
    client = await serve(spec, settings_for(platform))
    try:
        health = await client.get("/healthz")
        assert health.status == 200
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 200, body
        assert body["checks"] == {"postgres": "ok", "kafka": "ok", "relay": "ok"}

        # an internal service: an unsigned call is refused before routing
        missing = await client.get("/no-such-page", headers={"X-Correlation-Id": "corr-abc-123"})
        assert missing.status == 401
        assert missing.headers["X-Correlation-Id"] == "corr-abc-123"
        generated = (await client.get("/no-such-page")).headers["X-Correlation-Id"]
        assert len(generated) == 36

        metrics = await (await client.get("/metrics")).text()
        assert 'parley_http_requests_total{route="unmatched",status="401"}' in metrics
        assert "parley_relay_published_total" in metrics
        assert "parley_consumer_lag" in metrics
    finally:
        await client.close()
    requests = [line for line in log_lines() if line["msg"] == "http request" and line["path"] == "/no-such-page"]
    assert requests[0]["correlation_id"] == "corr-abc-123"
    assert requests[0]["service"] == "skeleton-test" and requests[0]["status"] == 401
    # migrations ran at start-up, inside the service's own schema
    assert any(line["msg"] == "migration applied" and line["schema"] == schema_name for line in log_lines())


async def test_readyz_says_503_when_kafka_is_unreachable(platform, schema_name):
    spec = ServiceSpec(name="skeleton-test", schema=schema_name, default_port=0, owns_streams=False)
    client = await serve(spec, settings_for(platform, kafka_bootstrap=f"127.0.0.1:{free_port()}"))
    try:
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["kafka"].startswith("failing")
    finally:
        await client.close()


async def test_graceful_shutdown_finishes_the_batch_in_hand_and_stores_its_offset(
        platform, schema_name, pool, catalog, topic):
    await pool.execute("create table handled (stream_id text, stream_version int)")
    store = EventStore(pool, catalog, topic_for=lambda s: topic)
    for v in range(30):
        await store.append([item_added(f"item-s{v % 3}", v)], expected_version=v // 3)
    started = asyncio.Event()
    cancelled = []

    async def slow_handle(conn, event):
        started.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            cancelled.append(event)
            raise
        await conn.execute("insert into handled values ($1, $2)", event.stream_id, event.stream_version)

    consumer_name = f"slow-{topic}"
    spec = ServiceSpec(name="skeleton-test", schema=schema_name, default_port=0,
                       consumers=[ConsumerSpec(consumer_name, [topic], slow_handle)],
                       extra_schema_dirs=[TEST_SCHEMAS])
    client = await serve(spec, settings_for(platform))
    await asyncio.wait_for(started.wait(), 60)
    await client.close()  # what SIGTERM does: run the app's cleanup

    assert cancelled == []
    handled = await pool.fetchval("select count(*) from handled")
    stored = await pool.fetchval("select coalesce(sum(next_offset), 0) from consumer_offsets where consumer = $1",
                                 consumer_name)
    assert handled > 0
    assert stored == handled, "the offsets stored are exactly the events whose effect committed"

    # and a restart continues from there: every event once
    rest = ConsumerRunner(pool, platform.bootstrap, name=consumer_name, topics=[topic], handle=slow_handle)
    stop = asyncio.Event()
    task = asyncio.create_task(rest.run(stop))

    async def all_handled():
        return await pool.fetchval("select count(*) from handled") >= 30
    await eventually(all_handled, what="the remaining events")
    await asyncio.sleep(0.5)
    stop.set()
    await task
    assert await pool.fetchval("select count(distinct (stream_id, stream_version)) from handled") == 30
    assert await pool.fetchval("select count(*) from handled") == 30
