"""crm-bridge's pure delivery rules: claims, backoff with jitter, outcomes, an operator's
retry, and the lead draft (no notes, UTM from the page URL, the app link)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from parley.domain_error import DomainError

from crm_bridge import domain
from crm_bridge.crm import CreatedLead, CrmError, Manager, match_manager

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
CID, RID = "3f1c2d4e-0000-4000-8000-000000000001", "3f1c2d4e-0000-4000-8000-000000000002"


def pending() -> domain.Delivery:
    return domain.Delivery(RID, "demo", CID, next_attempt_at=NOW)


def test_backoff_grows_is_capped_and_jittered():
    low = [domain.backoff(n, lambda: 0.0) for n in range(1, 12)]
    high = [domain.backoff(n, lambda: 0.999999) for n in range(1, 12)]
    assert low[:4] == [1.0, 2.0, 4.0, 8.0]
    assert all(a < b for a, b in zip(low, high))
    assert max(high) <= domain.BACKOFF_CAP_SECONDS and low[-1] == domain.BACKOFF_CAP_SECONDS / 2


def test_a_claim_counts_an_attempt_and_a_lost_one_makes_the_next_look_up_first():
    first = domain.claim(pending(), NOW)
    assert first.attempts == 1 and first.in_flight and not first.look_up_first
    assert first.next_attempt_at == NOW + timedelta(seconds=domain.LEASE_SECONDS)
    again = domain.claim(first, NOW)           # the first attempt never recorded an outcome
    assert again.attempts == 2 and again.look_up_first


def test_created_ends_the_delivery_with_its_event():
    d, outcome = domain.created(domain.claim(pending(), NOW), CreatedLead("77", "https://crm/77"),
                                Manager("5", "Anna Petrova", "anna@example.com"))
    assert d.status == "delivered" and not d.in_flight and d.lead_id == "77"
    assert outcome.type == "lead.created"
    assert outcome.data == {"conversation_id": CID, "request_id": RID, "lead_id": "77", "url": "https://crm/77",
                            "responsible": {"id": "5", "name": "Anna Petrova"}}


def test_a_retryable_error_schedules_again_without_an_event():
    d, outcome = domain.errored(domain.claim(pending(), NOW), CrmError("503", retryable=True), NOW, lambda: 0.5)
    assert outcome is None and d.status == "pending" and not d.in_flight and d.last_error == "503"
    assert d.next_attempt_at == NOW + timedelta(seconds=domain.backoff(1, lambda: 0.5))


def test_an_ambiguous_error_makes_the_next_attempt_look_the_lead_up():
    d, _ = domain.errored(domain.claim(pending(), NOW), CrmError("timeout", retryable=True, ambiguous=True),
                          NOW, lambda: 0.5)
    assert d.look_up_first


def test_attempts_run_out_into_a_retryable_failure():
    d = pending()
    for _ in range(domain.MAX_ATTEMPTS):
        d, outcome = domain.errored(domain.claim(d, NOW), CrmError("500", retryable=True), NOW, lambda: 0.5)
    assert d.status == "failed" and d.attempts == domain.MAX_ATTEMPTS
    assert outcome.type == "lead.failed" and outcome.data["retryable"] is True and outcome.data["reason"] == "500"


def test_a_final_error_fails_at_once():
    d, outcome = domain.errored(domain.claim(pending(), NOW), CrmError("bad token", retryable=False), NOW, lambda: 0)
    assert d.status == "failed" and outcome.data == {"conversation_id": CID, "request_id": RID,
                                                      "reason": "bad token", "retryable": False}


def test_no_crm_configured():
    d, outcome = domain.not_configured(domain.claim(pending(), NOW))
    assert d.status == "failed" and outcome.data["reason"] == "No CRM is configured"
    assert outcome.data["retryable"] is False


def test_an_operators_retry_requeues_failed_only():
    d, _ = domain.errored(domain.claim(pending(), NOW), CrmError("x", retryable=False), NOW, lambda: 0)
    again = domain.requeue(d, NOW)
    assert again.status == "pending" and again.next_attempt_at == NOW
    assert again.max_attempts == d.attempts + domain.MAX_ATTEMPTS
    assert domain.requeue(again, NOW) == again      # already pending: unchanged
    delivered, _ = domain.created(domain.claim(pending(), NOW), CreatedLead("1", None), None)
    assert domain.requeue(delivered, NOW) == delivered
    with pytest.raises(DomainError, match="not pending"):
        domain.claim(delivered, NOW)


REQUESTED = {
    "conversation_id": CID, "visitor_id": "v1", "operator_id": CID, "operator_email": " Anna@Example.COM ",
    "contacts": {"name": "Ivan", "phone": "+79990001122", "email": "ivan@example.com"},
    "custom_params": {"product": "Windows"},
    "page_url": "https://shop.example/p?utm_source=yandex&utm_medium=cpc&UTM_CAMPAIGN=winter&x=1",
    "transcript": [{"from": "visitor", "text": "Hello", "at": "t1"},
                   {"from": "operator", "operator": "Anna", "text": "Hi!", "at": "t2",
                    "attachment": {"file_id": "0" * 32, "name": "price.pdf", "size": 1, "content_type": "x"}}],
}


def test_the_draft():
    draft = domain.draft_for(RID, REQUESTED, responsible_id="5", source_name="Parley chat",
                             app_url="https://chat.example/")
    assert draft.title == "Chat: Ivan" and draft.name == "Ivan" and draft.phone == "+79990001122"
    assert draft.utm == {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "winter"}
    assert draft.custom_params == {"product": "Windows"} and draft.request_id == RID
    assert draft.conversation_url == f"https://chat.example/app/#/conversations/{CID}"
    assert draft.comments == "[t1] Visitor: Hello\n[t2] Anna: Hi! [file: price.pdf]"
    anonymous = domain.draft_for(RID, {**REQUESTED, "contacts": {}, "page_url": None}, responsible_id=None,
                                 source_name=None, app_url="http://localhost:8080")
    assert anonymous.title == "Chat: visitor" and anonymous.utm == {} and anonymous.name is None


def test_the_responsible_manager():
    managers = [Manager("5", "Anna Petrova", "anna@example.com"), Manager("9", "Oleg", "oleg@example.com")]
    assert domain.pick_responsible(managers, " ANNA@example.com ", "9", match_manager) == ("5", managers[0])
    assert domain.pick_responsible(managers, "nobody@example.com", "9", match_manager) == ("9", managers[1])
    assert domain.pick_responsible(managers, None, "12", match_manager)[0] == "12"
    assert domain.pick_responsible([], "x@example.com", None, match_manager) == (None, None)
