"""A test double of crm-bridge's port (crm.CrmAdapter), for the stacks whose crm-bridge
must not reach a CRM over HTTP; tests/crm has the fakes that speak the CRMs' real HTTP
contracts."""
from __future__ import annotations

from dataclasses import dataclass, field

from crm_bridge.crm import ClientLead, CreatedLead, CrmError, LeadDraft, Manager

MANAGERS = [Manager("5", "Anna Petrova", "anna.petrova@example.com"), Manager("9", "Oleg Default", "oleg@example.com")]


@dataclass
class FakeCrm:
    """A test double of crm-bridge's port (crm.CrmAdapter): leads kept by origin marker,
    faults played in order on create_lead ("500", "limit", "timeout_after_create",
    "timeout_before_create")."""
    managers_list: list[Manager] = field(default_factory=lambda: list(MANAGERS))
    leads: dict[str, tuple[str, LeadDraft]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)          # request ids, once per lead made
    faults: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    kind: str = "bitrix24"

    async def managers(self) -> list[Manager]:
        self.calls.append("managers")
        return list(self.managers_list)

    async def create_lead(self, draft: LeadDraft) -> CreatedLead:
        self.calls.append("create_lead")
        fault = self.faults.pop(0) if self.faults else None
        if fault == "500":
            raise CrmError("HTTP 500 from the CRM", retryable=True)
        if fault == "limit":
            raise CrmError("QUERY_LIMIT_EXCEEDED: Too many requests", retryable=True)
        if fault == "timeout_before_create":
            raise CrmError("timeout", retryable=True, ambiguous=True)
        lead_id = str(100 + len(self.created))
        if draft.request_id not in self.leads:  # a real CRM has no such guard: the count below catches doubles
            pass
        self.leads[draft.request_id] = (lead_id, draft)
        self.created.append(draft.request_id)
        if fault == "timeout_after_create":
            raise CrmError("timeout after the request was sent", retryable=True, ambiguous=True)
        return CreatedLead(lead_id, f"https://crm.example/lead/{lead_id}")

    async def find_lead(self, request_id: str) -> CreatedLead | None:
        self.calls.append("find_lead")
        found = self.leads.get(request_id)
        return CreatedLead(found[0], f"https://crm.example/lead/{found[0]}") if found else None

    async def client_leads(self, phone, email) -> list[ClientLead]:
        return []

    async def check(self) -> str:
        return f"{len(self.managers_list)} managers, lead creation allowed"
