"""Build the adapter for a project's CRM settings.

    kind "bitrix24": settings or secrets {"webhook_url"} (the URL holds the webhook's
                     secret, so it belongs in secrets), settings {"source_id"?: "WEB"}
    kind "webhook":  settings {"url"}, secrets {"secret"}
    kind "amocrm":   settings {"base_url", "marker_field_id"?}, secrets {"token"}
    any kind:        settings {"timeout_seconds"?: 15}

Every URL passes the outbound guard (outbound.check_url) here, and again with DNS
before each call; use `outbound.create_session()` for the session so the guard also
holds at connect time. Raises SettingsInvalid, or OutboundRefused for an address, for bad settings (both ValueErrors)."""
from __future__ import annotations

import aiohttp

from . import outbound
from .amocrm import AmoCrmAdapter
from .bitrix24 import Bitrix24Adapter
from .crm import CrmAdapter, SettingsInvalid
from .webhook import WebhookAdapter

KINDS = ("bitrix24", "webhook", "amocrm")
check_url = outbound.check_url
create_session = outbound.create_session
OutboundRefused = outbound.OutboundRefused


def adapter_for(kind: str, settings: dict, secrets: dict, session: aiohttp.ClientSession) -> CrmAdapter:
    settings, secrets = settings or {}, secrets or {}

    def value(name: str) -> str:
        return str(secrets.get(name) or settings.get(name) or "").strip()

    timeout = float(settings.get("timeout_seconds") or 15.0)
    if kind == "bitrix24":
        return Bitrix24Adapter(value("webhook_url"), session, timeout=timeout,
                               source_id=str(settings.get("source_id") or "WEB"))
    if kind == "webhook":
        return WebhookAdapter(value("url"), value("secret"), session, timeout=timeout)
    if kind == "amocrm":
        return AmoCrmAdapter(value("base_url"), value("token"), session, timeout=timeout,
                             marker_field_id=settings.get("marker_field_id") or None)
    raise SettingsInvalid(f"unknown CRM kind {kind!r}; expected one of {', '.join(KINDS)}")
