"""The stand-in's own rules, beyond the adapter contract: the webhook receiver's replay
and signature checks and its dedupe, Bitrix24's lack of dedupe, the escaped page, the
fault API, and `python -m crm_bridge.standin` as a process."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import orjson
import pytest

from crm_bridge.crm import CrmError
from crm_bridge.webhook import signature

from .conftest import make_draft


def _signed(secret: str, body: dict, ts: int | None = None) -> tuple[bytes, dict]:
    raw = orjson.dumps(body)
    stamp = str(int(time.time()) if ts is None else ts)
    return raw, {"Content-Type": "application/json", "X-Parley-Timestamp": stamp,
                 "X-Parley-Signature": signature(secret, stamp, raw)}


async def test_webhook_receiver_checks_signature_and_timestamp(standin_server, session):
    url = str(standin_server.make_url("/webhook"))
    lead = {"event": "lead.requested", "request_id": "r-1", "lead": {"title": "t"}, "transcript": "",
            "params": {}, "utm": {}, "page_url": None, "conversation_url": None}
    raw, headers = _signed("hook-secret", lead, ts=int(time.time()) - 301)
    async with session.post(url, data=raw, headers=headers) as resp:
        assert resp.status == 401 and "timestamp" in (await resp.json())["message"]
    raw, headers = _signed("hook-secret", lead)
    async with session.post(url, data=raw + b" ", headers=headers) as resp:      # body changed after signing
        assert resp.status == 401
    async with session.post(url, data=raw, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 401
    ids = []
    for _ in range(2):                                                           # dedupe by request_id
        raw, headers = _signed("hook-secret", lead)
        async with session.post(url, data=raw, headers=headers) as resp:
            assert resp.status == 200
            ids.append((await resp.json())["lead_id"])
    assert ids[0] == ids[1]


async def test_bitrix24_stand_in_does_not_dedupe_by_origin_id(standin_server, session):
    base = str(standin_server.make_url("/rest/1/b24secret/"))
    fields = {"TITLE": "x", "ORIGINATOR_ID": "parley", "ORIGIN_ID": "same"}
    for _ in range(2):
        async with session.post(base + "crm.lead.add.json", json={"fields": fields}) as resp:
            assert resp.status == 200
    async with session.post(base + "crm.lead.list.json", json={"filter": {"ORIGIN_ID": "same"}}) as resp:
        assert (await resp.json())["total"] == 2
    async with session.post(base + "no.such.method.json", json={}) as resp:
        assert resp.status == 404 and (await resp.json())["error"] == "ERROR_METHOD_NOT_FOUND"
    async with session.post(str(standin_server.make_url("/rest/1/nope/user.get.json")), json={}) as resp:
        assert resp.status == 401 and (await resp.json())["error"] == "INVALID_CREDENTIALS"


async def test_page_lists_leads_escaped(b24, standin_server, session):
    crm = b24
    created = await crm.adapter.create_lead(make_draft("1", title="<script>alert(1)</script>", name="A & B"))
    async with session.get(str(standin_server.make_url("/"))) as resp:
        page = await resp.text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "A &amp; B" in page and "Anna Petrova" in page
    async with session.get(created.url) as resp:                 # the lead URL is served too
        assert resp.status == 200 and "&lt;script&gt;" in await resp.text()


async def test_dropped_connection_after_create_is_ambiguous(standin_crm):
    crm = standin_crm
    draft = make_draft("1")
    await crm.inject("drop_after_create")
    with pytest.raises(CrmError) as err:
        await crm.adapter.create_lead(draft)
    assert err.value.retryable and err.value.ambiguous
    assert await crm.count() == 1
    if crm.kind == "bitrix24":
        assert (await crm.adapter.find_lead(draft.request_id)) is not None


async def test_fault_api(standin_server, session, b24):
    crm = b24
    faults = str(standin_server.make_url("/_faults"))
    async with session.post(faults, json={"fail_next": ["explode"]}) as resp:
        assert resp.status == 400
    async with session.post(faults, json={"fail_next": [500], "methods": ["crm.lead.add"]}) as resp:
        assert (await resp.json()) == {"pending": 1}
    assert await crm.adapter.managers()                   # user.get does not take a crm.lead.add fault
    with pytest.raises(CrmError, match="INTERNAL_SERVER_ERROR"):
        await crm.adapter.create_lead(make_draft("1"))
    async with session.post(faults, json={"fail_next": [502, 503]}) as resp:
        assert (await resp.json()) == {"pending": 2}
    async with session.delete(faults) as resp:
        assert (await resp.json()) == {"pending": 0}
    await crm.adapter.create_lead(make_draft("1"))
    async with session.post(str(standin_server.make_url("/_reset"))) as resp:
        assert resp.status == 200
    assert await crm.count() == 0


async def test_runs_as_a_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "crm_bridge.standin", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        import aiohttp
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.post(f"http://127.0.0.1:{port}/rest/1/standin/user.get.json",
                                            json={"FILTER": {"ACTIVE": True}}) as resp:
                        users = (await resp.json())["result"]
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the stand-in did not start: " + proc.stdout.read1().decode(errors="replace"))
        assert [u["NAME"] + " " + u["LAST_NAME"] for u in users][0] == "Anna Petrova" and len(users) == 6
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


async def test_bitrix24_manager_by_email(b24):
    crm = b24
    anna = await crm.adapter.manager_by_email(f" {crm.owner_email} ")
    assert anna is not None and anna.id == "1" and anna.name == "Anna Petrova"
    assert await crm.adapter.manager_by_email("boris.former@standin.local") is None     # inactive
    assert await crm.adapter.manager_by_email("nobody@standin.local") is None
