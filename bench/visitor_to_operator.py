"""A visitor's message to the operator's screen: widget WebSocket -> gateway ->
conversation service (event store) -> relay -> Kafka -> gateway -> operator WebSocket.

Reported against the raw Kafka produce -> consume floor of the same run."""
from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
import time
import uuid

import aiohttp
from aiohttp.test_utils import TestServer

from parley.config import REPO_ROOT, Settings, env
from parley.service import create_app

from bench.append_relay_consume import percentile, progress

SAMPLES = 200


def _settings(comps, service: str) -> Settings:
    return Settings(service=service, http_port=0, database_url=comps.database_url, kafka_bootstrap=comps.bootstrap,
                    log_level="WARNING", schemas_dir=REPO_ROOT / "schemas", shutdown_timeout=5)


async def run(comps) -> dict[str, float]:
    import conversation.__main__ as conversation_main
    import gateway.__main__ as gateway_main
    import operator_registry.__main__ as registry_main
    from gateway import rate_limits

    # One visitor sending hundreds of messages a minute is the point here, not abuse.
    rate_limits.MESSAGES_PER_MINUTE_PER_VISITOR = rate_limits.MESSAGES_PER_MINUTE_PER_ADDRESS = 1_000_000
    os.environ.setdefault("PARLEY_INTERNAL_SECRET", secrets.token_hex(32))

    suffix = uuid.uuid4().hex[:6]
    servers = []

    async def start(spec, name):
        server = TestServer(create_app(dataclasses.replace(spec, schema=f"bench_{name}_{suffix}"), _settings(comps, name)))
        await server.start_server()
        servers.append(server)
        return f"http://localhost:{server.port}"  # by host name, as deployments reach services

    os.environ["PARLEY_OPERATOR_REGISTRY_URL"] = await start(registry_main.SPEC, "registry")
    os.environ["PARLEY_CONVERSATION_URL"] = await start(conversation_main.SPEC, "conversation")
    os.environ.setdefault("PARLEY_VISITOR_SECRET", secrets.token_hex(32))
    os.environ["PARLEY_FILES_DIR"] = tempfile.mkdtemp(prefix="parley-bench-files-")
    gateway = await start(gateway_main.SPEC, "gateway")
    latencies = []
    try:
        async with aiohttp.ClientSession() as http:
            r = await http.post(f"{gateway}/api/session", json={
                "project": "demo", "email": env("PARLEY_OWNER_EMAIL"), "password": env("PARLEY_OWNER_PASSWORD")})
            token = (await r.json())["token"]
            operator = await http.ws_connect(f"{gateway}/ws/operator?token={token}")
            await operator.receive_json()
            visitor_token = (await (await http.post(f"{gateway}/api/visitor/session", json={"project": "demo"})).json())["visitor_token"]
            visitor = await http.ws_connect(f"{gateway}/ws/visitor?token={visitor_token}")
            await visitor.receive_json()
            progress(f"visitor -> operator: {SAMPLES} messages through the whole stack...")
            for i in range(SAMPLES + 10):  # the first 10 warm up connections and caches
                text = f"bench {i}"
                started = time.perf_counter()
                await visitor.send_json({"type": "message", "id": str(uuid.uuid4()), "text": text})
                while True:
                    push = await operator.receive_json(timeout=30)
                    if push.get("event") == "chat.visitor_message_posted" and push["data"]["text"] == text:
                        break
                if i >= 10:
                    latencies.append(time.perf_counter() - started)
            await visitor.close()
            await operator.close()
    finally:
        for server in reversed(servers):
            await server.close()
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}
