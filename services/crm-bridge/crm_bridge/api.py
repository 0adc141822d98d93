"""crm-bridge's HTTP API, called by the gateway only (every call signed; the operator
comes in the actor header).

- Admins only: CRM settings, "Test connection", the delivery log and a retry from it.
- Any operator of the project (the gateway has checked they may see the conversation):
  a conversation's leads and a retry of its failed handoff; the returning client's CRM
  leads for the card (client_cards.py).

Secrets are written here and never read back out: GET shows a masked Bitrix24 webhook
URL and `secret_set` / `token_set`, never the values."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from parley import actor, audit
from parley.actor import Actor, actor_of
from parley.contract import canonical_uuid
from parley.http import Rejected, id_in_path, ok, read_json
from parley.service import POOL, STORE

from crm_bridge import client_cards, deliveries, domain, outbound
from crm_bridge.crm import CrmError
from crm_bridge.deliveries import MASK, CrmSettings, load_settings

KINDS = ("none", "bitrix24", "webhook", "amocrm")
FIELDS = {"none": (), "bitrix24": ("webhook_url",), "webhook": ("url", "secret"), "amocrm": ("base_url", "token")}
COMMON = ("kind", "default_responsible", "source_name")
URL_MAX = 2000
SECRET_MIN, SECRET_MAX = 8, 4000
_BITRIX_PATH = re.compile(r"/rest/(\d{1,10})/([A-Za-z0-9_-]{4,200})/?")
DELIVERIES_LIMIT = 200
SAVE_RESOLVE_SECONDS = 3.0   # a slow resolver does not hold up saving: every call checks again


def admin_of(request: web.Request) -> Actor:
    return actor.admin_of(request, "Only an admin may see or change the CRM settings.")


# ---- settings ------------------------------------------------------------------------

def _invalid(field: str, message: str) -> Rejected:
    return Rejected(422, f"{field}_invalid", message)


def _url(body: dict, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not 1 <= len(value) <= URL_MAX or value != value.strip():
        raise _invalid(field, f"{field} must be an http(s) URL up to {URL_MAX} characters.")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise _invalid(field, f"{field} is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password \
            or any(c in value for c in " \t\r\n\\"):
        raise _invalid(field, f"{field} must be an http(s) URL with a host and no credentials.")
    _guard_outbound(field, value)
    return value


def _guard_outbound(field: str, url: str) -> None:
    """Private and loopback addresses, and plain http, are refused unless
    PARLEY_CRM_ALLOW_PRIVATE=1: the adapters' own outbound guard, without DNS."""
    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as e:
        raise _invalid(field, f"{field}: {e.reason}") from None


def _secret(body: dict, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not SECRET_MIN <= len(value) <= SECRET_MAX or not value.isprintable() \
            or value != value.strip():
        raise _invalid(field, f"{field} must be {SECRET_MIN}-{SECRET_MAX} printable characters.")
    return value


def _optional_text(body: dict, field: str, max_length: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= max_length or not value.isprintable():
        raise _invalid(field, f"{field} must be text of 1-{max_length} characters, or null.")
    return value.strip()


def validate(body: dict, current: CrmSettings | None) -> tuple[str, dict, dict, str | None, str | None]:
    """(kind, config, secrets, default_responsible, source_name) from a PUT body. A secret
    may be left out to keep the stored one, when the kind stays the same."""
    kind = body.get("kind")
    if kind not in KINDS:
        raise _invalid("kind", f"kind must be one of {', '.join(KINDS)}.")
    unknown = sorted(set(body) - set(COMMON) - set(FIELDS[kind]) - {"secret_set", "token_set"})
    if unknown:
        raise Rejected(422, "field_unknown", f"Unknown field for kind {kind}: {unknown[0]}.")
    keep = current.secrets if current is not None and current.kind == kind else {}
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    if kind == "bitrix24":
        if "webhook_url" in body or "webhook_url" not in keep:
            url = _url(body, "webhook_url")
            match = _BITRIX_PATH.fullmatch(urlsplit(url).path)
            if not match or urlsplit(url).query or urlsplit(url).fragment:
                raise _invalid("webhook_url", "webhook_url is the incoming webhook's base, "
                                              "like https://example.bitrix24.ru/rest/1/<secret>/.")
            secrets["webhook_url"] = url if url.endswith("/") else url + "/"
        else:
            secrets["webhook_url"] = keep["webhook_url"]
        config["webhook_url"] = masked_webhook(secrets["webhook_url"])
    elif kind == "webhook":
        config["url"] = _url(body, "url")
        secrets["secret"] = _kept_secret(body, "secret", keep, config, current, "url")
    elif kind == "amocrm":
        config["base_url"] = _url(body, "base_url").rstrip("/")
        secrets["token"] = _kept_secret(body, "token", keep, config, current, "base_url")
    return (kind, config, secrets, _optional_text(body, "default_responsible", 64),
            _optional_text(body, "source_name", 100))


def _kept_secret(body: dict, field: str, keep: dict, config: dict, current: CrmSettings | None, url_field: str) -> str:
    """The secret sent, or the stored one - but only for the address it was given for:
    a secret kept across a change of URL would be sent to the new host (by "Test
    connection" at once), so an admin who may not read it could still obtain it."""
    if field in body or field not in keep:
        return _secret(body, field)
    if current is None or current.config.get(url_field) != config[url_field]:
        raise Rejected(422, f"{field}_required", f"The {url_field} changed: send the {field} again with it.")
    return keep[field]


def masked_webhook(url: str) -> str:
    parts = urlsplit(url)
    match = _BITRIX_PATH.fullmatch(parts.path)
    user = match.group(1) if match else "?"
    return f"{parts.scheme}://{parts.netloc}/rest/{user}/{MASK}/"


def view(settings: CrmSettings | None) -> dict[str, Any]:
    if settings is None:
        return {"kind": "none", "default_responsible": None, "source_name": None, "updated_at": None}
    shown: dict[str, Any] = {"kind": settings.kind, **settings.config,
                             "default_responsible": settings.default_responsible,
                             "source_name": settings.source_name,
                             "updated_at": settings.updated_at.isoformat() if settings.updated_at else None}
    if settings.kind == "webhook":
        shown["secret_set"] = bool(settings.secrets.get("secret"))
    if settings.kind == "amocrm":
        shown["token_set"] = bool(settings.secrets.get("token"))
    return shown


async def get_settings(request: web.Request) -> web.Response:
    me = admin_of(request)
    return ok(view(await load_settings(request.app[POOL], me.project_id)))


async def _refuse_private_names(kind: str, config: dict, secrets: dict) -> None:
    """A host name resolving to a refused address is refused at saving too (the adapters
    check again at every call and connection: a name can change its address later). A
    name that does not resolve now is saved: its calls fail, retryably, until it does."""
    field = {"bitrix24": "webhook_url", "webhook": "url", "amocrm": "base_url"}.get(kind)
    if field is None:
        return
    try:
        await asyncio.wait_for(outbound.guard_url(secrets.get(field) or config[field]), SAVE_RESOLVE_SECONDS)
    except outbound.OutboundRefused as e:
        raise _invalid(field, f"{field}: {e.reason}") from None
    except (CrmError, asyncio.TimeoutError):
        pass


async def put_settings(request: web.Request) -> web.Response:
    me = admin_of(request)
    body = await read_json(request)
    pool = request.app[POOL]
    kind, config, secrets, responsible, source = validate(body, await load_settings(pool, me.project_id))
    await _refuse_private_names(kind, config, secrets)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """insert into crm_settings (project_id, kind, config, secrets, default_responsible, source_name,
                                         updated_at, updated_by)
               values ($1, $2, $3, $4, $5, $6, now(), $7)
               on conflict (project_id) do update set kind = excluded.kind, config = excluded.config,
                   secrets = excluded.secrets, default_responsible = excluded.default_responsible,
                   source_name = excluded.source_name, updated_at = now(), updated_by = excluded.updated_by""",
            me.project_id, kind, config, secrets, responsible, source, me.id)
        await audit.record(request.app[STORE], conn, me.project_id, me.id, "settings.crm", "crm", kind=kind)
    request.app[deliveries.MANAGERS].pop(me.project_id, None)
    return ok(view(await load_settings(pool, me.project_id)))


async def test_connection(request: web.Request) -> web.Response:
    me = admin_of(request)
    settings = await load_settings(request.app[POOL], me.project_id)
    if settings is None or settings.kind == "none":
        return ok({"ok": False, "summary": domain.NO_CRM})
    try:
        adapter = await deliveries.adapter_for(request.app, settings)
        summary = await deliveries.call_crm(settings, adapter.check())
    except CrmError as e:
        return ok({"ok": False, "summary": e.reason[:domain.REASON_MAX]})
    return ok({"ok": True, "summary": settings.scrub(str(summary))[:domain.REASON_MAX]})


# ---- the delivery log and retries ------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def delivery_view(row) -> dict[str, Any]:
    return {"request_id": str(row["request_id"]), "conversation_id": str(row["conversation_id"]),
            "status": row["status"], "attempts": row["attempts"], "last_error": row["last_error"],
            "retryable": row["retryable"], "created_at": _iso(row["created_at"]),
            "delivered_at": _iso(row["delivered_at"]),
            "next_attempt_at": _iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
            "lead_id": row["lead_id"], "lead_url": row["lead_url"], "responsible": row["responsible"]}


async def list_deliveries(request: web.Request) -> web.Response:
    me = admin_of(request)
    rows = await request.app[POOL].fetch(
        "select * from deliveries where project_id = $1 order by created_at desc, request_id limit $2",
        me.project_id, DELIVERIES_LIMIT)
    return ok({"deliveries": [delivery_view(r) for r in rows]})


async def _retry(pool, project_id: str, request_id: str, conversation_id: str | None = None) -> dict[str, Any]:
    """An operator's retry: a failed delivery due again with fresh attempts; a delivered
    or pending one is left as it is, so a double click or a resent request changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """select * from deliveries where request_id = $1 and project_id = $2
                 and ($3::uuid is null or conversation_id = $3) for update""", request_id, project_id, conversation_id)
        if row is None:
            raise Rejected(404, "not_found", "No such delivery.")
        before = deliveries.delivery_of(row)
        after = domain.requeue(before, deliveries.now())
        if after != before:
            await deliveries.save(conn, after)
            row = await conn.fetchrow("select * from deliveries where request_id = $1", request_id)
    return delivery_view(row)


async def retry_delivery(request: web.Request) -> web.Response:
    me = admin_of(request)
    return ok(await _retry(request.app[POOL], me.project_id, id_in_path(request, "No such delivery.")))


# ---- one conversation's leads (any operator the gateway let through) -------------------

async def conversation_leads(request: web.Request) -> web.Response:
    me = actor_of(request)
    rows = await request.app[POOL].fetch(
        "select * from deliveries where project_id = $1 and conversation_id = $2 order by created_at, request_id",
        me.project_id, id_in_path(request, "No such conversation."))
    return ok({"leads": [delivery_view(r) for r in rows]})


async def retry_conversation_lead(request: web.Request) -> web.Response:
    me = actor_of(request)
    return ok(await _retry(request.app[POOL], me.project_id, id_in_path(request, "No such lead request.", "request_id"),
                           id_in_path(request, "No such conversation.")))


# ---- the returning client's card --------------------------------------------------------

CARD_CONVERSATIONS_MAX = 100


def _card_contact(body: dict, field: str, max_length: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_length or not value.isprintable():
        raise _invalid(field, f"{field} is text of 1-{max_length} characters, or null.")
    return value


async def client_card(request: web.Request) -> web.Response:
    """The leads Parley made for the client's conversations (the gateway names them), each
    with its current CRM status when the CRM's lookup by phone/email found it, and that
    lookup itself (client_cards.crm_leads)."""
    me = actor_of(request)
    body = await read_json(request)
    ids = body.get("conversation_ids")
    if not isinstance(ids, list) or len(ids) > CARD_CONVERSATIONS_MAX or any(canonical_uuid(i) is None for i in ids):
        raise _invalid("conversation_ids", f"conversation_ids is a list of up to {CARD_CONVERSATIONS_MAX} ids.")
    if not isinstance(body.get("refresh", False), bool):
        raise _invalid("refresh", "refresh is true or false.")
    crm = await client_cards.crm_leads(request.app, me.project_id, _card_contact(body, "phone", 40),
                                       _card_contact(body, "email", 254), by=me.id,
                                       conversation_id=canonical_uuid(ids[0]) if ids else None,
                                       refresh=body.get("refresh", False))
    rows = await request.app[POOL].fetch(
        """select * from deliveries where project_id = $1 and conversation_id = any($2::uuid[])
           order by created_at desc, request_id""", me.project_id, [canonical_uuid(i) for i in ids])
    status = {lead["lead_id"]: lead["status"] for lead in crm["leads"]}
    leads = [{**delivery_view(r), "crm_status": status.get(r["lead_id"])} for r in rows]
    return ok({"leads": leads, "crm": crm})


def add_routes(app: web.Application) -> None:
    deliveries.setup(app)
    client_cards.setup(app)
    app.router.add_get("/api/project/crm", get_settings)
    app.router.add_put("/api/project/crm", put_settings)
    app.router.add_post("/api/project/crm/test", test_connection)
    app.router.add_get("/api/project/crm/deliveries", list_deliveries)
    app.router.add_post("/api/project/crm/deliveries/{id}/retry", retry_delivery)
    app.router.add_get("/api/conversations/{id}/leads", conversation_leads)
    app.router.add_post("/api/conversations/{id}/leads/{request_id}/retry", retry_conversation_lead)
    app.router.add_post("/api/client-card", client_card)
