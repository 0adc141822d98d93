"""The CRM port: what crm-bridge needs from any CRM, written once. Each adapter
(bitrix24.py, amocrm.py, webhook.py) implements `CrmAdapter`, and one contract test
suite (tests/crm/test_adapter_contract.py) runs against every adapter.

A lead is created at most once per request: every draft carries `request_id` (the id
of the `lead.requested` event), the adapter stores it in the CRM where the CRM allows
(Bitrix24: ORIGINATOR_ID=parley, ORIGIN_ID=request id), and `find_lead(request_id)`
looks it up before a second attempt after an ambiguous failure."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from parley.domain_error import DomainError


class SettingsInvalid(DomainError, ValueError):
    """An adapter cannot work with the CRM settings it was given (the shared refusal
    shape; still a ValueError, as the URL checks that come with it are). A delivery with
    such settings fails for good, naming why."""

    def __init__(self, message: str):
        super().__init__("crm_settings_invalid", message)


@dataclass(frozen=True)
class Manager:
    """A CRM user who can be made responsible for a lead."""
    id: str
    name: str
    email: str | None


@dataclass(frozen=True)
class LeadDraft:
    request_id: str                      # the lead.requested event id: the origin marker
    title: str
    name: str | None
    phone: str | None                    # E.164 where it could be normalised
    email: str | None
    comments: str                        # the transcript (operator and visitor messages, never notes)
    responsible_id: str | None           # a Manager.id, or None for the CRM's own default
    source_name: str | None              # "Parley chat"
    page_url: str | None
    conversation_url: str | None         # a link to the conversation in the operator app
    utm: dict[str, str] = field(default_factory=dict)            # utm_source, utm_medium, ...
    custom_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreatedLead:
    lead_id: str
    url: str | None                      # the lead in the CRM's own UI, when known


@dataclass(frozen=True)
class ClientLead:
    """An earlier lead of a returning client, for the client card."""
    lead_id: str
    title: str
    status: str                          # the CRM's status name or id
    created_at: str | None
    url: str | None


class CrmError(Exception):
    """A CRM call failed.

    retryable: trying again later may help (timeouts, 5xx, 429, QUERY_LIMIT_EXCEEDED).
    ambiguous: the request may have been applied (a timeout or a dropped connection after
        the request was sent): look the lead up by its origin marker before creating again."""

    def __init__(self, reason: str, *, retryable: bool, ambiguous: bool = False):
        super().__init__(reason)
        self.reason, self.retryable, self.ambiguous = reason, retryable, ambiguous


class CrmAdapter(Protocol):
    kind: str                            # "bitrix24", "amocrm", "webhook"

    async def managers(self) -> list[Manager]:
        """Active CRM users (the webhook kind has none: an empty list)."""

    async def create_lead(self, draft: LeadDraft) -> CreatedLead:
        """Create the lead; raises CrmError."""

    async def find_lead(self, request_id: str) -> CreatedLead | None:
        """The lead created for this request earlier, if the CRM can tell (else None)."""

    async def client_leads(self, phone: str | None, email: str | None) -> list[ClientLead]:
        """Earlier leads of the client with this phone or email, newest first."""

    async def check(self) -> str:
        """A human summary for "Test connection", e.g. "5 managers, lead creation allowed"; raises CrmError."""


def match_manager(managers: list[Manager], operator_email: str | None) -> Manager | None:
    """The manager whose email equals the operator's (trimmed, case-insensitive)."""
    wanted = (operator_email or "").strip().lower()
    if not wanted:
        return None
    return next((m for m in managers if (m.email or "").strip().lower() == wanted), None)
