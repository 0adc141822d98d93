"""One contract, every adapter: Bitrix24 and the signed webhook against the stand-in
(over HTTP), amoCRM against its fake. What differs by kind is said here, once:
the webhook has no managers, no lookup by request id (its receiver dedupes) and no
client card."""
from __future__ import annotations

import time

import pytest

from crm_bridge.crm import CrmError, match_manager

from .conftest import make_draft

LOOKUP = {"bitrix24", "amocrm"}           # kinds whose find_lead / client_leads / managers are real


async def test_managers(crm):
    managers = await crm.adapter.managers()
    if crm.kind not in LOOKUP:
        assert managers == []
        return
    assert len(managers) >= 3
    assert len({m.id for m in managers}) == len(managers)           # all pages, none twice
    assert all(m.name for m in managers)
    anna = match_manager(managers, f"  {crm.owner_email.upper()} ")
    assert anna is not None and anna.name == "Anna Petrova"
    assert not any("former" in (m.email or "") or "extranet" in (m.email or "") for m in managers)  # inactive, extranet: left out


async def test_create_lead_carries_everything(crm):
    draft = make_draft(crm.manager_id if crm.kind in LOOKUP else "12")
    created = await crm.adapter.create_lead(draft)
    assert created.lead_id
    stored = await crm.stored(created.lead_id)
    assert stored is not None
    assert stored["title"] == draft.title
    assert stored["name"] == draft.name
    assert stored["phone"] == draft.phone and stored["email"] == draft.email
    assert "Hello, I need a quote" in stored["text"] and "Sure, what volume?" in stored["text"]
    assert draft.page_url in stored["text"] and draft.conversation_url in stored["text"]
    assert "plan: pro" in stored["text"]
    assert stored["responsible"] == draft.responsible_id
    assert stored["utm"] == draft.utm
    assert stored["marker"] == draft.request_id
    if crm.kind != "amocrm":
        assert stored["source"] == "Parley chat"
    if crm.kind == "bitrix24":
        assert created.url.endswith(f"/crm/lead/details/{created.lead_id}/")
    if crm.kind == "amocrm":
        assert created.url.endswith(f"/leads/detail/{created.lead_id}")


async def test_a_draft_without_contacts_or_responsible(crm):
    draft = make_draft(None, name=None, phone=None, email=None, utm={}, custom_params={}, page_url=None)
    created = await crm.adapter.create_lead(draft)
    stored = await crm.stored(created.lead_id)
    assert stored["title"] == draft.title and stored["phone"] is None and stored["email"] is None


async def test_find_lead(crm):
    draft = make_draft(crm.manager_id)
    created = await crm.adapter.create_lead(draft)
    await crm.adapter.create_lead(make_draft(crm.manager_id))         # another lead, another marker
    found = await crm.adapter.find_lead(draft.request_id)
    assert await crm.adapter.find_lead("00000000-0000-0000-0000-000000000000") is None
    if crm.kind in LOOKUP:
        assert found is not None and found.lead_id == created.lead_id and found.url == created.url
    else:
        assert found is None


async def test_client_leads_by_phone_and_by_email(crm):
    first = await crm.adapter.create_lead(make_draft(crm.manager_id, phone="+74950001122", email="first@client.example"))
    second = await crm.adapter.create_lead(make_draft(crm.manager_id, phone="+74950001122", email="other@client.example"))
    await crm.adapter.create_lead(make_draft(crm.manager_id, phone="+74959999999", email="stranger@client.example"))
    by_phone = await crm.adapter.client_leads("+74950001122", None)
    by_email = await crm.adapter.client_leads(None, "first@client.example")
    both = await crm.adapter.client_leads("+74950001122", "first@client.example")
    if crm.kind not in LOOKUP:
        assert by_phone == by_email == both == []
        return
    assert {lead.lead_id for lead in by_phone} == {first.lead_id, second.lead_id}
    assert [lead.lead_id for lead in by_email] == [first.lead_id]
    assert sorted(lead.lead_id for lead in both) == sorted([first.lead_id, second.lead_id])   # no duplicates
    assert [lead.lead_id for lead in by_phone] == [second.lead_id, first.lead_id]            # newest first
    card = by_email[0]
    assert card.title.startswith("Chat with Ivan") and card.status and card.url == first.url
    assert await crm.adapter.client_leads(None, None) == []
    assert await crm.adapter.client_leads("+10000000000", "nobody@nowhere.example") == []


async def test_check(crm):
    summary = await crm.adapter.check()
    assert summary and isinstance(summary, str)
    if crm.kind in LOOKUP:
        managers = len(await crm.adapter.managers())
        assert summary.startswith(f"{managers} managers")


async def test_500_is_retryable(crm):
    await crm.inject(500)
    with pytest.raises(CrmError) as err:
        await crm.adapter.create_lead(make_draft(crm.manager_id))
    assert err.value.retryable and not err.value.ambiguous
    assert await crm.count() == 0
    assert (await crm.adapter.create_lead(make_draft(crm.manager_id))).lead_id      # recovered


async def test_rate_limit_is_retryable(crm):
    """Bitrix24: 503 QUERY_LIMIT_EXCEEDED; amoCRM: 429; the webhook: 503 and 429."""
    faults = {"bitrix24": [503], "webhook": [503, 429], "amocrm": [429, 503]}[crm.kind]
    await crm.inject(*faults)
    for _ in faults:
        with pytest.raises(CrmError) as err:
            await crm.adapter.create_lead(make_draft(crm.manager_id))
        assert err.value.retryable
        if crm.kind == "bitrix24":
            assert "QUERY_LIMIT_EXCEEDED" in err.value.reason


async def test_retryable_read_errors(crm):
    await crm.inject(500)
    with pytest.raises(CrmError) as err:
        await (crm.adapter.managers() if crm.kind in LOOKUP else crm.adapter.check())
    assert err.value.retryable


async def test_timeout_after_create_is_ambiguous_and_the_lead_is_found(crm):
    draft = make_draft(crm.manager_id)
    await crm.inject("timeout_after_create")
    started = time.monotonic()
    with pytest.raises(CrmError) as err:
        await crm.adapter.create_lead(draft)
    assert time.monotonic() - started < 1.4
    assert err.value.retryable and err.value.ambiguous
    assert await crm.count() == 1                          # the CRM did create it
    if crm.kind in LOOKUP:
        found = await crm.adapter.find_lead(draft.request_id)
        assert found is not None
        assert (await crm.stored(found.lead_id))["marker"] == draft.request_id
    else:
        # The webhook's receiver dedupes by request_id: sending again returns the same lead.
        again = await crm.adapter.create_lead(draft)
        assert (await crm.stored(again.lead_id))["marker"] == draft.request_id
    assert await crm.count() == 1


async def test_timeout_before_create_is_ambiguous_and_nothing_is_found(crm):
    draft = make_draft(crm.manager_id)
    await crm.inject("timeout_before_create")
    with pytest.raises(CrmError) as err:
        await crm.adapter.create_lead(draft)
    assert err.value.retryable and err.value.ambiguous
    assert await crm.adapter.find_lead(draft.request_id) is None
    assert await crm.count() == 0


async def test_bad_secret_is_final(crm):
    with pytest.raises(CrmError) as err:
        await crm.bad_adapter.create_lead(make_draft(crm.manager_id))
    assert not err.value.retryable and not err.value.ambiguous
    with pytest.raises(CrmError) as err:
        await crm.bad_adapter.check()
    assert not err.value.retryable
    assert await crm.count() == 0


async def test_unreachable_crm_is_retryable_and_not_ambiguous(crm):
    import socket
    with socket.socket() as s:              # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from crm_bridge.adapters import adapter_for
    settings = {"url": f"http://127.0.0.1:{port}/webhook", "base_url": f"http://127.0.0.1:{port}", "timeout_seconds": 1}
    secrets = {"webhook_url": f"http://127.0.0.1:{port}/rest/1/x/", "secret": "s", "token": "t"}
    adapter = adapter_for(crm.kind, settings, secrets, crm.adapter.session)
    with pytest.raises(CrmError) as err:
        await adapter.create_lead(make_draft(None))
    assert err.value.retryable and not err.value.ambiguous
