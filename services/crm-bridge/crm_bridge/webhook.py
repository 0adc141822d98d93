"""The generic signed JSON webhook: for any CRM or script that can receive a POST.

Request: `POST <url>` with `Content-Type: application/json` and

    X-Parley-Timestamp: <unix seconds>
    X-Parley-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

The body of a lead (`event` "lead.requested"):

    {
      "event": "lead.requested",
      "request_id": "6b1f...",            # the same for every retry of this lead
      "lead": {
        "title": "Chat with Ivan",
        "name": "Ivan", "phone": "+79991234567", "email": "ivan@example.com",
        "responsible_id": "12",           # or null
        "source_name": "Parley chat"      # or null
      },
      "transcript": "Visitor: ...\\nOperator: ...",  # operator and visitor messages, never notes
      "params": {"plan": "pro"},          # the widget's custom params
      "utm": {"utm_source": "google", "utm_medium": "cpc"},
      "page_url": "https://shop.example/pricing?utm_source=google",
      "conversation_url": "https://chat.example/app/#/conversations/..."
    }

"Test connection" sends `{"event": "ping"}`, signed the same way; any 2xx is success.

The receiver must:
- recompute the signature over the raw body bytes and compare in constant time;
- reject a timestamp more than 5 minutes (300 s) away from its clock (replay);
- answer `2xx {"lead_id": "<its id>", "url": "<optional link>"}`;
- **dedupe by request_id**: Parley sends the same request again after a timeout, a
  dropped connection or an operator's retry, and the receiver answers it with the lead
  it already created. Parley cannot ask a webhook whether a lead exists, so
  find_lead returns None and exactly-once depends on this rule.
Answers: 5xx, 408 and 429 are retried later; other 4xx are final (401/403 usually
mean the secret differs). The stand-in (`python -m crm_bridge.standin`, `/webhook`)
is a reference receiver."""
from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import orjson

from . import outbound
from .crm import ClientLead, CreatedLead, CrmError, LeadDraft, Manager, SettingsInvalid

MAX_SKEW_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, sig: str | None, body: bytes, *, now: float | None = None) -> str | None:
    """For receivers (the stand-in uses it): why the request is refused, or None."""
    if not timestamp or not sig:
        return "missing X-Parley-Timestamp or X-Parley-Signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs((time.time() if now is None else now) - ts) > MAX_SKEW_SECONDS:
        return "timestamp too old or in the future"
    if not hmac.compare_digest(signature(secret, timestamp, body), sig):
        return "bad signature"
    return None


def payload(draft: LeadDraft) -> dict:
    return {
        "event": "lead.requested",
        "request_id": draft.request_id,
        "lead": {"title": draft.title, "name": draft.name, "phone": draft.phone, "email": draft.email,
                 "responsible_id": draft.responsible_id, "source_name": draft.source_name},
        "transcript": draft.comments,
        "params": dict(draft.custom_params),
        "utm": dict(draft.utm),
        "page_url": draft.page_url,
        "conversation_url": draft.conversation_url,
    }


class WebhookAdapter:
    kind = "webhook"

    def __init__(self, url: str, secret: str, session: aiohttp.ClientSession, *, timeout: float = 15.0):
        if not url or not secret:
            raise SettingsInvalid("the webhook needs a url and a secret")
        outbound.check_url(url)
        self.url, self.secret, self.session, self.timeout = url, secret, session, timeout

    async def post(self, body_obj: dict) -> dict:
        what = f"webhook {body_obj.get('event')}"
        body = orjson.dumps(body_obj)
        ts = str(int(time.time()))
        status, answer = await outbound.send(
            self.session, "POST", self.url, timeout=self.timeout, what=what, data=body,
            headers={"Content-Type": "application/json", "X-Parley-Timestamp": ts,
                     "X-Parley-Signature": signature(self.secret, ts, body)})
        if status >= 500 or status in (408, 429):
            raise CrmError(f"{what}: HTTP {status}", retryable=True)
        if status in (401, 403):
            raise CrmError(f"{what}: HTTP {status}, the receiver refused the signature (check the secret)", retryable=False)
        if not 200 <= status < 300:
            raise CrmError(f"{what}: HTTP {status}", retryable=False)
        try:
            data = orjson.loads(answer) if answer.strip() else {}
        except orjson.JSONDecodeError:
            data = {}
        return data if isinstance(data, dict) else {}

    async def managers(self) -> list[Manager]:
        return []

    async def create_lead(self, draft: LeadDraft) -> CreatedLead:
        data = await self.post(payload(draft))
        lead_id = data.get("lead_id")
        if lead_id in (None, ""):
            raise CrmError("webhook lead.requested: 2xx without a lead_id", retryable=False)
        url = data.get("url")
        return CreatedLead(lead_id=str(lead_id), url=str(url) if url else None)

    async def find_lead(self, request_id: str) -> CreatedLead | None:
        return None          # the receiver dedupes by request_id instead

    async def client_leads(self, phone: str | None, email: str | None) -> list[ClientLead]:
        return []

    async def check(self) -> str:
        await self.post({"event": "ping"})
        return "the webhook answered the signed ping"
