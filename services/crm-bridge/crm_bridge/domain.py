"""crm-bridge's pure rules: a Delivery (one lead request on its way to the CRM), how it
moves on after each attempt, and the lead draft built from a `lead.requested` event.
No I/O here: time and randomness come in as arguments, so the rules are unit-tested
as they are (tests/crm_bridge/test_delivery_domain.py).

A delivery is `pending` until an attempt ends it: `delivered` (a lead exists) or
`failed` (a final refusal, or the attempts ran out). Every claim counts an attempt and
marks it in flight; an attempt whose outcome never came back (a crash, a lost lease) or
that ended ambiguously makes the next one look the lead up before creating it again."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from parley.domain_error import DomainError

from crm_bridge.crm import CreatedLead, CrmError, LeadDraft, Manager

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
LEASE_SECONDS = 120.0          # an attempt not finished by then is taken as lost (crash)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
NO_CRM = "No CRM is configured"
REASON_MAX = 500

Random = Callable[[], float]   # like random.random: [0, 1)


@dataclass(frozen=True)
class Delivery:
    request_id: str
    project_id: str
    conversation_id: str
    status: str = "pending"                 # pending | delivered | failed
    attempts: int = 0
    max_attempts: int = MAX_ATTEMPTS        # raised by an operator's retry
    in_flight: bool = False                 # claimed, outcome not yet recorded
    look_up_first: bool = False             # the lead may exist: find_lead before create_lead
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    lead_id: str | None = None
    lead_url: str | None = None
    responsible: dict[str, str] | None = None
    retryable: bool | None = None           # of the final failure


@dataclass(frozen=True)
class Outcome:
    """What an attempt ended with: the event to publish (type and data), if any."""
    type: str                               # "lead.created" | "lead.failed"
    data: dict[str, Any]


def backoff(attempts: int, rand: Random, *, base: float = BACKOFF_BASE_SECONDS,
            cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Seconds before attempt `attempts + 1`: exponential, capped, with jitter (half
    fixed, half random) so that a CRM recovering is not hit by every delivery at once."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return ceiling / 2 + ceiling / 2 * rand()


def claim(d: Delivery, now: datetime, lease: float = LEASE_SECONDS) -> Delivery:
    """Take a due delivery for one attempt. An attempt still marked in flight was lost
    (its worker died or overran its lease): it may have created the lead."""
    if d.status != "pending":
        raise DomainError("delivery_not_pending", f"delivery {d.request_id} is {d.status}, not pending", "conflict")
    return replace(d, attempts=d.attempts + 1, in_flight=True, look_up_first=d.look_up_first or d.in_flight,
                   next_attempt_at=now + timedelta(seconds=lease))


def created(d: Delivery, lead: CreatedLead, responsible: Manager | None) -> tuple[Delivery, Outcome]:
    who = {"id": responsible.id, "name": responsible.name} if responsible else None
    d = replace(d, status="delivered", in_flight=False, look_up_first=False, next_attempt_at=None,
                last_error=None, lead_id=lead.lead_id, lead_url=lead.url, responsible=who, retryable=None)
    return d, Outcome("lead.created", {"conversation_id": d.conversation_id, "request_id": d.request_id,
                                       "lead_id": lead.lead_id, "url": lead.url, "responsible": who})


def errored(d: Delivery, error: CrmError, now: datetime, rand: Random, *,
            base: float = BACKOFF_BASE_SECONDS) -> tuple[Delivery, Outcome | None]:
    """A failed attempt: scheduled again (no event) while a retry can help and attempts
    remain, else failed for good (lead.failed, saying whether a later retry may help)."""
    reason = (error.reason or "CRM error")[:REASON_MAX]
    look_up = d.look_up_first or error.ambiguous
    if error.retryable and d.attempts < d.max_attempts:
        return replace(d, in_flight=False, look_up_first=look_up, last_error=reason,
                       next_attempt_at=now + timedelta(seconds=backoff(d.attempts, rand, base=base))), None
    return _failed(replace(d, look_up_first=look_up), reason, error.retryable)


def not_configured(d: Delivery) -> tuple[Delivery, Outcome]:
    return _failed(d, NO_CRM, False)


def _failed(d: Delivery, reason: str, retryable: bool) -> tuple[Delivery, Outcome]:
    d = replace(d, status="failed", in_flight=False, next_attempt_at=None, last_error=reason, retryable=retryable)
    return d, Outcome("lead.failed", {"conversation_id": d.conversation_id, "request_id": d.request_id,
                                      "reason": reason, "retryable": retryable})


def requeue(d: Delivery, now: datetime) -> Delivery:
    """An operator's retry: a failed delivery gets a fresh budget of attempts, due now.
    Delivered or pending ones are left as they are (the retry is idempotent)."""
    if d.status != "failed":
        return d
    return replace(d, status="pending", max_attempts=d.attempts + MAX_ATTEMPTS, next_attempt_at=now,
                   retryable=None)


# ---- the lead draft -------------------------------------------------------------------

def utm_of(page_url: str | None) -> dict[str, str]:
    if not page_url:
        return {}
    try:
        query = urlsplit(page_url).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        key = key.lower()
        if key in UTM_FIELDS and key not in found:
            found[key] = value[:256]
    return found


def transcript_text(transcript: list[dict[str, Any]]) -> str:
    """Operator and visitor messages, one per line (the event carries no notes)."""
    lines = []
    for m in transcript:
        if m.get("from") not in ("visitor", "operator"):
            continue
        who = "Visitor" if m["from"] == "visitor" else (m.get("operator") or "Operator")
        text = m.get("text") or ""
        attachment = m.get("attachment")
        if isinstance(attachment, dict) and attachment.get("name"):
            text = f"{text} [file: {attachment['name']}]".strip()
        lines.append(f"[{m.get('at', '')}] {who}: {text}")
    return "\n".join(lines)


def conversation_link(app_url: str, conversation_id: str) -> str:
    return f"{app_url.rstrip('/')}/app/#/conversations/{conversation_id}"


def draft_for(request_id: str, requested: dict[str, Any], *, responsible_id: str | None,
              source_name: str | None, app_url: str) -> LeadDraft:
    """The lead to create for a `lead.requested` event's data."""
    contacts = requested.get("contacts") or {}
    name = (contacts.get("name") or "").strip() or None
    page_url = requested.get("page_url")
    return LeadDraft(
        request_id=request_id,
        title=f"Chat: {name or 'visitor'}",
        name=name,
        phone=(contacts.get("phone") or "").strip() or None,
        email=(contacts.get("email") or "").strip() or None,
        comments=transcript_text(requested.get("transcript") or []),
        responsible_id=responsible_id,
        source_name=source_name,
        page_url=page_url,
        conversation_url=conversation_link(app_url, requested["conversation_id"]),
        utm=utm_of(page_url),
        custom_params=dict(requested.get("custom_params") or {}),
    )


def pick_responsible(managers: list[Manager], operator_email: str | None, default_id: str | None,
                     match: Callable[[list[Manager], str | None], Manager | None]) -> tuple[str | None, Manager | None]:
    """(responsible id for the draft, the manager to report): the manager whose email is
    the operator's, else the project's default (reported by name when the CRM knows it)."""
    found = match(managers, operator_email)
    if found is not None:
        return found.id, found
    if default_id:
        known = next((m for m in managers if m.id == default_id), None)
        return default_id, known or Manager(default_id, default_id, None)
    return None, None
