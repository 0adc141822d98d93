"""CRM adapter tests: pure HTTP against in-process aiohttp servers (the stand-in for
Bitrix24 and the signed webhook, the amoCRM fake), no Kafka or PostgreSQL.

`crm` is a Harness per adapter kind: the adapter, a twin with a wrong secret, fault
injection (over the stand-in's HTTP fault API) and a view of the lead as stored on the
CRM side, normalised to one shape so one contract suite checks all three."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from crm_bridge import outbound, standin
from crm_bridge.adapters import adapter_for
from crm_bridge.crm import CrmAdapter, LeadDraft
from parley.config import env

from .amocrm_fake import AmoFake

TIMEOUT = 0.5            # the adapters' timeout in these tests
HANG = 1.5               # how long an injected "timeout" hangs (longer than TIMEOUT)
KINDS = ["bitrix24", "webhook", "amocrm"]


@dataclass
class Harness:
    kind: str
    adapter: CrmAdapter
    bad_adapter: CrmAdapter
    inject: Callable[..., Awaitable[None]]
    stored: Callable[[str], Awaitable[dict | None]]
    count: Callable[[], Awaitable[int]]
    owner_email: str
    manager_id: str          # a manager to make responsible


@pytest.fixture
def allow_private(monkeypatch):
    monkeypatch.setenv(outbound.FLAG, "1")        # the stand-in and the fake listen on loopback


@pytest.fixture
async def session():
    async with outbound.create_session() as s:
        yield s


@pytest.fixture
async def standin_server(allow_private):
    server = TestServer(standin.create_app(secret="b24secret", webhook_secret="hook-secret", page_size=2),
                        host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def amo_fake(allow_private):
    fake = AmoFake("amo-token", env("PARLEY_OWNER_EMAIL"), hang_seconds=HANG)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


def _first(values) -> str | None:
    return values[0]["VALUE"] if values else None


async def _standin_harness(kind: str, server: TestServer, session: aiohttp.ClientSession) -> Harness:
    base = str(server.make_url("")).rstrip("/")
    settings: dict[str, Any] = {"timeout_seconds": TIMEOUT}

    async def inject(*faults, methods=None):
        body = {"fail_next": list(faults), "hang_seconds": HANG}
        if methods:
            body["methods"] = methods
        async with session.post(f"{base}/_faults", json=body) as resp:
            assert resp.status == 200, await resp.text()

    async def leads() -> dict:
        async with session.get(f"{base}/_leads") as resp:
            return await resp.json()

    if kind == "bitrix24":
        adapter = adapter_for("bitrix24", settings, {"webhook_url": f"{base}/rest/1/b24secret/"}, session)
        bad = adapter_for("bitrix24", settings, {"webhook_url": f"{base}/rest/1/wrong/"}, session)

        async def stored(lead_id):
            lead = next((lead for lead in (await leads())["bitrix24"] if lead["ID"] == lead_id), None)
            if lead is None:
                return None
            return {"title": lead.get("TITLE"), "name": lead.get("NAME"), "phone": _first(lead.get("PHONE")),
                    "email": _first(lead.get("EMAIL")), "text": lead.get("COMMENTS", ""),
                    "responsible": lead.get("ASSIGNED_BY_ID"), "source": lead.get("SOURCE_DESCRIPTION"),
                    "utm": {k.lower(): v for k, v in lead.items() if k.startswith("UTM_")},
                    "marker": lead.get("ORIGIN_ID") if lead.get("ORIGINATOR_ID") == "parley" else None}

        async def count():
            return len((await leads())["bitrix24"])
        return Harness(kind, adapter, bad, inject, stored, count, env("PARLEY_OWNER_EMAIL"), "3")

    adapter = adapter_for("webhook", {**settings, "url": f"{base}/webhook"}, {"secret": "hook-secret"}, session)
    bad = adapter_for("webhook", {**settings, "url": f"{base}/webhook"}, {"secret": "wrong"}, session)

    async def stored(lead_id):
        hook = next((h for h in (await leads())["webhook"] if h["lead_id"] == lead_id), None)
        if hook is None:
            return None
        lead = hook["lead"]
        text = "\n".join([hook["transcript"], hook["page_url"] or "", hook["conversation_url"] or "",
                          *(f"{k}: {v}" for k, v in hook["params"].items())])
        return {"title": lead["title"], "name": lead["name"], "phone": lead["phone"], "email": lead["email"],
                "text": text, "responsible": lead["responsible_id"], "source": lead["source_name"],
                "utm": hook["utm"], "marker": hook["request_id"]}

    async def count():
        return len((await leads())["webhook"])

    async def inject_webhook(*faults, methods=None):
        await inject(*faults, methods=["webhook"])
    return Harness(kind, adapter, bad, inject_webhook, stored, count, env("PARLEY_OWNER_EMAIL"), "3")


def _amo_harness(fake: AmoFake, session: aiohttp.ClientSession) -> Harness:
    settings = {"timeout_seconds": TIMEOUT, "base_url": fake.base_url}
    adapter = adapter_for("amocrm", settings, {"token": "amo-token"}, session)
    bad = adapter_for("amocrm", settings, {"token": "wrong-token"}, session)

    async def inject(*faults, methods=None):
        fake.faults.extend(faults)

    async def stored(lead_id):
        lead = fake.leads.get(int(lead_id))
        if lead is None:
            return None
        contact = fake.contacts[lead["_contacts"][0]] if lead["_contacts"] else {"custom_fields_values": []}
        fields = {f["field_code"]: f["values"][0]["value"] for f in contact["custom_fields_values"]}
        text = "\n".join(n["params"]["text"] for n in fake.notes.get(lead["id"], []))
        markers = [t["name"].split(":", 1)[1] for t in lead["_tags"] if t["name"].startswith("parley:")]
        return {"title": lead["name"], "name": contact.get("first_name"), "phone": fields.get("PHONE"),
                "email": fields.get("EMAIL"), "text": text, "responsible": str(lead["responsible_user_id"]),
                "source": None, "utm": dict(re.findall(r"^(utm_\w+): (.*)$", text, re.M)),
                "marker": markers[0] if markers else None}

    async def count():
        return len(fake.leads)
    return Harness("amocrm", adapter, bad, inject, stored, count, env("PARLEY_OWNER_EMAIL"), "7003")


@pytest.fixture(params=KINDS)
async def crm(request, session, standin_server, amo_fake) -> Harness:
    if request.param == "amocrm":
        return _amo_harness(amo_fake, session)
    return await _standin_harness(request.param, standin_server, session)


def make_draft(responsible_id: str | None = None, **over) -> LeadDraft:
    rid = str(uuid.uuid4())
    fields = dict(
        request_id=rid, title="Chat with Ivan <b>from site</b>", name="Ivan Petrov", phone="+79991234567",
        email=f"ivan.{rid[:8]}@example.com",
        comments="Visitor: Hello, I need a quote\nOperator: Sure, what volume?", responsible_id=responsible_id,
        source_name="Parley chat", page_url="https://shop.example/pricing?utm_source=google&utm_medium=cpc",
        conversation_url=f"https://chat.example/app/#/conversations/{rid}",
        utm={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"},
        custom_params={"plan": "pro"})
    fields.update(over)
    return LeadDraft(**fields)


@pytest.fixture
async def b24(session, standin_server) -> Harness:
    """The Bitrix24 adapter against the stand-in alone (for the stand-in's own tests)."""
    return await _standin_harness("bitrix24", standin_server, session)


@pytest.fixture(params=["bitrix24", "webhook"])
async def standin_crm(request, session, standin_server) -> Harness:
    """Each adapter the stand-in speaks to."""
    return await _standin_harness(request.param, standin_server, session)
