"""Bitrix24 REST through an incoming webhook.

The webhook URL is the portal's `https://<portal>/rest/<user id>/<secret>/`; a method is
called as `POST <webhook_url><method>.json` with a JSON body, and answers
`{"result": ..., "total"?, "next"?, "time": {...}}` or
`{"error": "<CODE>", "error_description": "..."}`.

Methods used:
- `user.get` {"FILTER": {"ACTIVE": true, "USER_TYPE": "employee"}, "start": n} (pages of 50, `next` gives the
  following `start`); with `"EMAIL": ...` in FILTER by `manager_by_email`;
- `crm.lead.add` {"fields": {TITLE, NAME, PHONE/EMAIL as multi-fields
  [{"VALUE", "VALUE_TYPE": "WORK"}], COMMENTS, ASSIGNED_BY_ID, SOURCE_ID, SOURCE_DESCRIPTION,
  UTM_SOURCE/MEDIUM/CAMPAIGN/CONTENT/TERM, ORIGINATOR_ID="parley", ORIGIN_ID=request id},
  "params": {"REGISTER_SONET_EVENT": "Y"}} -> {"result": <lead id>};
- `crm.lead.list` {"filter": {"ORIGINATOR_ID": "parley", "ORIGIN_ID": <request id>}} for
  find_lead (Bitrix24 does not dedupe by ORIGIN_ID itself: Parley looks before it
  creates again after an ambiguous failure);
- `crm.duplicate.findbycomm` {"entity_type": "LEAD", "type": "PHONE"|"EMAIL", "values": [...]}
  -> {"LEAD": [ids]} (or [] when none), then `crm.lead.get` {"id"} per lead, for the
  returning client's card;
- `crm.lead.fields` for check().

Errors: QUERY_LIMIT_EXCEEDED (HTTP 503), OPERATION_TIME_LIMIT, INTERNAL_SERVER_ERROR and
any 5xx/429 are retryable; a timeout or dropped connection is ambiguous; auth
(INVALID_CREDENTIALS, NO_AUTH_FOUND, expired_token), permission (ACCESS_DENIED,
insufficient_scope), OVERLOAD_LIMIT (a manual block) and bad fields are final."""
from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp
import orjson

from . import outbound
from .crm import ClientLead, CreatedLead, CrmError, LeadDraft, Manager, SettingsInvalid

ORIGINATOR = "parley"
PAGE_LIMIT = 40                      # user.get pages read at most (2000 users)
CARD_LIMIT = 20                      # crm.duplicate.findbycomm returns at most 20 per entity
RETRYABLE_CODES = {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "INTERNAL_SERVER_ERROR",
                   "ERROR_UNEXPECTED_ANSWER"}
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_WEBHOOK_PATH = re.compile(r"^/rest/\d+/[^/]+/$")


def parse_webhook_url(webhook_url: str) -> tuple[str, str]:
    """(base ending with '/', portal origin) of an incoming-webhook URL."""
    url = (webhook_url or "").strip()
    if url and not url.endswith("/"):
        url += "/"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not _WEBHOOK_PATH.match(parts.path) \
            or parts.query or parts.fragment:
        raise SettingsInvalid("Bitrix24 webhook URL must look like https://<portal>/rest/<user id>/<secret>/")
    return url, f"{parts.scheme}://{parts.netloc}"


class Bitrix24Adapter:
    kind = "bitrix24"

    def __init__(self, webhook_url: str, session: aiohttp.ClientSession, *, timeout: float = 15.0,
                 source_id: str = "WEB"):
        self.base, self.portal = parse_webhook_url(webhook_url)
        outbound.check_url(self.base)
        self.session, self.timeout, self.source_id = session, timeout, source_id

    def lead_url(self, lead_id: str) -> str:
        return f"{self.portal}/crm/lead/details/{lead_id}/"

    async def call(self, method: str, params: dict) -> dict:
        """One REST call; the whole answer ({"result", "next", "total", ...})."""
        what = f"Bitrix24 {method}"
        status, body = await outbound.send(
            self.session, "POST", f"{self.base}{method}.json", timeout=self.timeout, what=what,
            data=orjson.dumps(params), headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and "error" in data and (data["error"] or status >= 400):
            code = str(data["error"] or "ERROR")
            desc = str(data.get("error_description") or "")[:300]
            retryable = code in RETRYABLE_CODES or status >= 500 and code != "OVERLOAD_LIMIT" or status == 429
            raise CrmError(f"{what}: {code}" + (f" ({desc})" if desc else "") + f", HTTP {status}",
                           retryable=retryable)
        if status >= 500 or status == 429:
            raise CrmError(f"{what}: HTTP {status}", retryable=True)
        if status >= 300 or not isinstance(data, dict) or "result" not in data:
            raise CrmError(f"{what}: unexpected answer, HTTP {status}", retryable=False)
        return data

    async def managers(self) -> list[Manager]:
        return await self._users({"ACTIVE": True, "USER_TYPE": "employee"})

    async def manager_by_email(self, email: str) -> Manager | None:
        users = await self._users({"ACTIVE": True, "USER_TYPE": "employee", "EMAIL": email.strip()})
        return users[0] if users else None

    async def _users(self, user_filter: dict) -> list[Manager]:
        out, start = [], 0
        for _ in range(PAGE_LIMIT):
            data = await self.call("user.get", {"FILTER": user_filter, "start": start})
            for user in data["result"] or []:
                name = " ".join(p for p in (user.get("NAME"), user.get("LAST_NAME")) if p).strip()
                email = user.get("EMAIL") or None
                out.append(Manager(id=str(user["ID"]), name=name or email or f"User {user['ID']}", email=email))
            if data.get("next") is None:
                break
            start = int(data["next"])
        return out

    def lead_fields(self, draft: LeadDraft) -> dict:
        fields: dict = {
            "TITLE": draft.title,
            "COMMENTS": comments_text(draft),
            "SOURCE_ID": self.source_id,
            "SOURCE_DESCRIPTION": draft.source_name or "Parley chat",
            "ORIGINATOR_ID": ORIGINATOR,
            "ORIGIN_ID": draft.request_id,
        }
        if draft.name:
            fields["NAME"] = draft.name
        if draft.phone:
            fields["PHONE"] = [{"VALUE": draft.phone, "VALUE_TYPE": "WORK"}]
        if draft.email:
            fields["EMAIL"] = [{"VALUE": draft.email, "VALUE_TYPE": "WORK"}]
        if draft.responsible_id:
            fields["ASSIGNED_BY_ID"] = draft.responsible_id
        for key in UTM_KEYS:
            if draft.utm.get(key):
                fields[key.upper()] = draft.utm[key]
        return fields

    async def create_lead(self, draft: LeadDraft) -> CreatedLead:
        data = await self.call("crm.lead.add", {"fields": self.lead_fields(draft),
                                                "params": {"REGISTER_SONET_EVENT": "Y"}})
        lead_id = str(data["result"])
        return CreatedLead(lead_id=lead_id, url=self.lead_url(lead_id))

    async def find_lead(self, request_id: str) -> CreatedLead | None:
        data = await self.call("crm.lead.list", {
            "filter": {"ORIGINATOR_ID": ORIGINATOR, "ORIGIN_ID": request_id},
            "select": ["ID", "ORIGINATOR_ID", "ORIGIN_ID"], "order": {"ID": "ASC"}})
        for lead in data["result"] or []:
            # Trust but verify: a portal ignoring an unknown filter key would list everything.
            if lead.get("ORIGINATOR_ID") == ORIGINATOR and lead.get("ORIGIN_ID") == request_id:
                return CreatedLead(lead_id=str(lead["ID"]), url=self.lead_url(str(lead["ID"])))
        return None

    async def client_leads(self, phone: str | None, email: str | None) -> list[ClientLead]:
        ids: list[str] = []
        for comm_type, value in (("PHONE", phone), ("EMAIL", email)):
            if not value:
                continue
            data = await self.call("crm.duplicate.findbycomm",
                                   {"entity_type": "LEAD", "type": comm_type, "values": [value]})
            found = data["result"]
            for lead_id in (found.get("LEAD") or []) if isinstance(found, dict) else []:
                if str(lead_id) not in ids:
                    ids.append(str(lead_id))
        leads = []
        for lead_id in sorted(ids, key=lambda i: int(i) if i.isdigit() else 0, reverse=True)[:CARD_LIMIT]:
            lead = (await self.call("crm.lead.get", {"id": lead_id}))["result"] or {}
            leads.append(ClientLead(lead_id=str(lead.get("ID") or lead_id), title=lead.get("TITLE") or "",
                                    status=lead.get("STATUS_ID") or "", created_at=lead.get("DATE_CREATE"),
                                    url=self.lead_url(lead_id)))
        leads.sort(key=lambda lead: _sort_time(lead.created_at), reverse=True)
        return leads

    async def check(self) -> str:
        managers = await self.managers()
        fields = (await self.call("crm.lead.fields", {}))["result"] or {}
        marker = "ORIGIN_ID" in fields
        return (f"{len(managers)} managers, CRM leads accessible"
                + ("" if marker else " (no ORIGIN_ID field: duplicates cannot be looked up)"))


def _sort_time(value: str | None) -> float:
    try:
        return datetime.fromisoformat(value).timestamp() if value else 0.0
    except ValueError:
        return 0.0


def comments_text(draft: LeadDraft) -> str:
    """The transcript followed by the page, the conversation link and the custom params."""
    lines = [draft.comments.rstrip()] if draft.comments.strip() else []
    extra = []
    if draft.page_url:
        extra.append(f"Page: {draft.page_url}")
    if draft.conversation_url:
        extra.append(f"Conversation: {draft.conversation_url}")
    extra += [f"{key}: {value}" for key, value in sorted(draft.custom_params.items())]
    if extra:
        lines += ["", "--"] + extra if lines else extra
    return "\n".join(lines)
