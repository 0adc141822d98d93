"""amoCRM API v4 with a long-lived token (`Authorization: Bearer <token>`).

Calls:
- `GET /api/v4/users?page=N&limit=250`: `_embedded.users[]` {id, name, email,
  rights.is_active}; pages follow `_links.next`; matched by email on Parley's side;
- `POST /api/v4/leads/complex` with a list of one lead: {name, responsible_user_id?,
  request_id, _embedded: {contacts: [{first_name?, custom_fields_values: [{field_code:
  "PHONE"|"EMAIL", values: [{enum_code: "WORK", value}]}]}], tags: [{name: "parley"},
  {name: "parley:<request id>"}]}, custom_fields_values?}; answers
  `[{"id", "contact_id", "company_id", "request_id": [...], "merged"}]`. The chat
  transcript, page, conversation link, params and UTM go in a common note
  (`POST /api/v4/leads/{id}/notes`, note_type "common") right after; a failed note
  does not fail the lead.
- find_lead: complex's `request_id` is only echoed back, not stored, so the marker is
  the tag `parley:<request id>` (and, when settings give `marker_field_id`, a lead text
  field holding the request id). `GET /api/v4/leads?query=<request id>` is searched and a
  hit is accepted only if it carries the marker exactly. amoCRM's full-text `query`
  covers filled fields; whether it also covers tags is not verified against a live
  account, so set `marker_field_id` for a guaranteed lookup.
- client_leads: `GET /api/v4/contacts?query=<phone|email>&with=leads`, then
  `GET /api/v4/leads?filter[id][]=...` for names and status ids.
- check: `GET /api/v4/account` and the users.
A list answered 204 No Content means "nothing found". 429 and 5xx are retryable;
401 (token), 402 (payment), 403 (blocked) and 400 (validation) are final."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

import aiohttp
import orjson

from . import outbound
from .crm import ClientLead, CreatedLead, CrmError, LeadDraft, Manager, SettingsInvalid
from .bitrix24 import comments_text

PAGE_LIMIT = 20
TAG = "parley"


def marker_tag(request_id: str) -> str:
    return f"parley:{request_id}"


class AmoCrmAdapter:
    kind = "amocrm"

    def __init__(self, base_url: str, token: str, session: aiohttp.ClientSession, *, timeout: float = 15.0,
                 marker_field_id: int | None = None):
        parts = urlsplit((base_url or "").strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise SettingsInvalid("amoCRM base_url must look like https://<subdomain>.amocrm.ru")
        if not token:
            raise SettingsInvalid("amoCRM needs a token")
        self.base = f"{parts.scheme}://{parts.netloc}"
        outbound.check_url(self.base)
        self.token, self.session, self.timeout = token, session, timeout
        self.marker_field_id = int(marker_field_id) if marker_field_id else None

    def lead_url(self, lead_id: str) -> str:
        return f"{self.base}/leads/detail/{lead_id}"

    async def call(self, method: str, path: str, *, params: list | dict | None = None, body=None):
        what = f"amoCRM {method} {path}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/hal+json"}
        kwargs: dict = {"params": params or {}, "headers": headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kwargs["data"] = orjson.dumps(body)
        status, answer = await outbound.send(self.session, method, self.base + path, timeout=self.timeout,
                                             what=what, **kwargs)
        if status == 204:
            return None
        detail = ""
        try:
            data = orjson.loads(answer) if answer.strip() else None
        except orjson.JSONDecodeError:
            data = None
        if status >= 400 and isinstance(data, dict):
            detail = str(data.get("detail") or data.get("title") or "")[:200]
            if data.get("validation-errors"):
                detail += f" {orjson.dumps(data['validation-errors'])[:300].decode(errors='replace')}"
        if status >= 500 or status == 429:
            raise CrmError(f"{what}: HTTP {status} {detail}".rstrip(), retryable=True)
        if status >= 300:
            hint = {401: " (token refused)", 402: " (account not paid)", 403: " (access denied or account blocked)"}
            raise CrmError(f"{what}: HTTP {status}{hint.get(status, '')} {detail}".rstrip(), retryable=False)
        if data is None:
            raise CrmError(f"{what}: unexpected answer, HTTP {status}", retryable=False)
        return data

    async def managers(self) -> list[Manager]:
        out, page = [], 1
        for _ in range(PAGE_LIMIT):
            data = await self.call("GET", "/api/v4/users", params={"page": page, "limit": 250})
            if not data:
                break
            for user in (data.get("_embedded") or {}).get("users") or []:
                if (user.get("rights") or {}).get("is_active") is False:
                    continue
                out.append(Manager(id=str(user["id"]), name=user.get("name") or user.get("email") or str(user["id"]),
                                   email=user.get("email") or None))
            if not ((data.get("_links") or {}).get("next")):
                break
            page += 1
        return out

    def complex_lead(self, draft: LeadDraft) -> dict:
        fields = []
        if draft.phone:
            fields.append({"field_code": "PHONE", "values": [{"enum_code": "WORK", "value": draft.phone}]})
        if draft.email:
            fields.append({"field_code": "EMAIL", "values": [{"enum_code": "WORK", "value": draft.email}]})
        contact: dict = {"custom_fields_values": fields} if fields else {}
        if draft.name:
            contact["first_name"] = draft.name
        lead: dict = {
            "name": draft.title,
            "request_id": draft.request_id,
            "_embedded": {"tags": [{"name": TAG}, {"name": marker_tag(draft.request_id)}]},
        }
        if contact:
            lead["_embedded"]["contacts"] = [contact]
        if draft.responsible_id:
            lead["responsible_user_id"] = int(draft.responsible_id) if draft.responsible_id.isdigit() else draft.responsible_id
        if self.marker_field_id:
            lead["custom_fields_values"] = [{"field_id": self.marker_field_id, "values": [{"value": draft.request_id}]}]
        return lead

    def note_text(self, draft: LeadDraft) -> str:
        text = comments_text(draft)
        utm = [f"{k}: {v}" for k, v in sorted(draft.utm.items()) if v]
        return text + ("\n" + "\n".join(utm) if utm else "")

    async def create_lead(self, draft: LeadDraft) -> CreatedLead:
        data = await self.call("POST", "/api/v4/leads/complex", body=[self.complex_lead(draft)])
        if not isinstance(data, list) or not data or "id" not in data[0]:
            raise CrmError("amoCRM POST /api/v4/leads/complex: answer without a lead id", retryable=False)
        lead_id = str(data[0]["id"])
        try:
            await self.call("POST", f"/api/v4/leads/{lead_id}/notes",
                            body=[{"note_type": "common", "params": {"text": self.note_text(draft)}}])
        except CrmError:
            pass    # the lead exists; a lost transcript note must not make Parley create it again
        return CreatedLead(lead_id=lead_id, url=self.lead_url(lead_id))

    async def find_lead(self, request_id: str) -> CreatedLead | None:
        data = await self.call("GET", "/api/v4/leads", params={"query": request_id, "limit": 50})
        for lead in ((data or {}).get("_embedded") or {}).get("leads") or []:
            tags = {t.get("name") for t in ((lead.get("_embedded") or {}).get("tags") or [])}
            values = {str(v.get("value")) for f in (lead.get("custom_fields_values") or [])
                      if not self.marker_field_id or f.get("field_id") == self.marker_field_id
                      for v in (f.get("values") or [])}
            if marker_tag(request_id) in tags or (self.marker_field_id and request_id in values):
                return CreatedLead(lead_id=str(lead["id"]), url=self.lead_url(str(lead["id"])))
        return None

    async def client_leads(self, phone: str | None, email: str | None) -> list[ClientLead]:
        ids: list[int] = []
        for value in (phone, email):
            if not value:
                continue
            data = await self.call("GET", "/api/v4/contacts", params={"query": value, "with": "leads", "limit": 50})
            for contact in ((data or {}).get("_embedded") or {}).get("contacts") or []:
                for lead in ((contact.get("_embedded") or {}).get("leads") or []):
                    if lead.get("id") is not None and int(lead["id"]) not in ids:
                        ids.append(int(lead["id"]))
        if not ids:
            return []
        ids = sorted(ids, reverse=True)[:50]
        data = await self.call("GET", "/api/v4/leads", params=[("filter[id][]", str(i)) for i in ids])
        leads = ((data or {}).get("_embedded") or {}).get("leads") or []
        leads.sort(key=lambda lead: (lead.get("created_at") or 0, lead.get("id") or 0), reverse=True)
        return [ClientLead(lead_id=str(lead["id"]), title=lead.get("name") or "", status=str(lead.get("status_id") or ""),
                           created_at=_iso(lead.get("created_at")), url=self.lead_url(str(lead["id"])))
                for lead in leads]

    async def check(self) -> str:
        account = await self.call("GET", "/api/v4/account") or {}
        managers = await self.managers()
        return f"{len(managers)} managers, amoCRM account {account.get('name') or account.get('subdomain') or account.get('id')}"


def _iso(ts) -> str | None:
    try:
        return datetime.fromtimestamp(int(ts), tz=timezone.utc).isoformat() if ts else None
    except (TypeError, ValueError, OverflowError):
        return None
