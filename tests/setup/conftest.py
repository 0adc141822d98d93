"""An installation with no project yet: operator-registry started without the demo seed,
the conversation service, and two gateways (as two replicas behind an ingress), all
in-process on real PostgreSQL and Kafka, on fresh schemas."""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.service import POOL, create_app

import conversation.__main__ as conversation_main
import gateway.__main__ as gateway_main
import operator_registry.__main__ as registry_main
from gateway.setup_routes import setup_token
from tests.stack import by_host_name, settings


@dataclass
class Fresh:
    registry: TestClient
    conversation: TestClient
    gateways: list[TestClient]

    @property
    def gateway(self) -> TestClient:
        return self.gateways[0]

    async def project_ids(self) -> list[str]:
        return [r["id"] for r in await self.registry.app[POOL].fetch("select id from projects order by id")]


def setup_form(**changes) -> dict:
    form = {"token": setup_token(), "project_id": "acme", "project_name": "ACME Shop", "owner_name": "Alice Owner",
            "owner_email": "alice@acme.example", "password": "correct horse battery", "language": "en"}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not ...}


async def start(spec, app_settings) -> TestClient:
    client = TestClient(TestServer(create_app(spec, app_settings)))
    await client.start_server()
    return client


@pytest.fixture
async def fresh(platform, monkeypatch):
    monkeypatch.setenv("PARLEY_SEED_DEMO", "")
    monkeypatch.setenv("PARLEY_VISITOR_SECRET", "test-visitor-secret-" + "x" * 32)
    suffix = uuid.uuid4().hex[:8]
    registry = await start(dataclasses.replace(registry_main.SPEC, schema=f"reg_{suffix}"),
                           settings(platform, "operator-registry"))
    conversation = await start(dataclasses.replace(conversation_main.SPEC, schema=f"conv_{suffix}"),
                               settings(platform, "conversation"))
    monkeypatch.setenv("PARLEY_OPERATOR_REGISTRY_URL", by_host_name(registry))
    monkeypatch.setenv("PARLEY_CONVERSATION_URL", by_host_name(conversation))
    gateways = [await start(dataclasses.replace(gateway_main.SPEC, schema=f"gw{n}_{suffix}"),
                            settings(platform, "gateway")) for n in (1, 2)]
    yield Fresh(registry, conversation, gateways)
    for client in (*gateways, conversation, registry):
        await client.close()
