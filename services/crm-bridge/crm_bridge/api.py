"""crm-bridge's HTTP API, called by the gateway only (every call signed; the operator
comes in the actor header). Admins only: CRM settings, "Test connection", the delivery
log and an operator's retry of a failed delivery.

Secrets are written here and never read back out: GET shows a masked Bitrix24 webhook
URL and `secret_set` / `token_set`, never the values."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from parley.contract import ACTOR_HEADER, canonical_uuid
from parley.http import Rejected, ok, read_json
from parley.service import POOL

from crm_bridge import deliveries, domain
from crm_bridge.crm import CrmError
from crm_bridge.deliveries import MASK, CrmSettings, load_settings

KINDS = ("none", "bitrix24", "webhook", "amocrm")
FIELDS = {"none": (), "bitrix24": ("webhook_url",), "webhook": ("url", "secret"), "amocrm": ("base_url", "token")}
COMMON = ("kind", "default_responsible", "source_name")
URL_MAX = 2000
SECRET_MIN, SECRET_MAX = 8, 4000
_BITRIX_PATH = re.compile(r"/rest/(\d{1,10})/([A-Za-z0-9_-]{4,200})/?")
DELIVERIES_LIMIT = 200


@dataclass(frozen=True)
class Admin:
    id: str
    project_id: str


def admin_of(request: web.Request) -> Admin:
    try:
        d = orjson.loads(request.headers.get(ACTOR_HEADER, ""))
    except orjson.JSONDecodeError:
        d = None
    operator_id = canonical_uuid(d.get("id")) if isinstance(d, dict) else None
    project = d.get("project") if isinstance(d, dict) else None
    if operator_id is None or not isinstance(project, str) or not 1 <= len(project) <= 100:
        raise Rejected(401, "unauthenticated", "No operator on this request.")
    if d.get("is_admin") is not True:
        raise Rejected(403, "admin_only", "Only an admin may see or change the CRM settings.")
    return Admin(operator_id, project)


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
    """Private and loopback addresses are refused unless PARLEY_CRM_ALLOW_PRIVATE=1 (the
    adapters' outbound guard, when it is there; the literal-address check otherwise)."""
    try:
        from crm_bridge import outbound  # noqa: F401
    except ImportError:
        outbound = None
    check = getattr(outbound, "check_url", None) if outbound else None
    if check is not None:
        try:
            check(url)
        except Exception as e:
            raise _invalid(field, f"{field}: {getattr(e, 'reason', None) or e}") from None
        return
    import os
    if os.environ.get("PARLEY_CRM_ALLOW_PRIVATE") == "1":
        return
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            raise _invalid(field, f"{field} points at this machine; set PARLEY_CRM_ALLOW_PRIVATE=1 to allow it.")
        return
    if not address.is_global:
        raise _invalid(field, f"{field} points at a private address; set PARLEY_CRM_ALLOW_PRIVATE=1 to allow it.")


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
        secrets["secret"] = _secret(body, "secret") if "secret" in body or "secret" not in keep else keep["secret"]
    elif kind == "amocrm":
        config["base_url"] = _url(body, "base_url").rstrip("/")
        secrets["token"] = _secret(body, "token") if "token" in body or "token" not in keep else keep["token"]
    return (kind, config, secrets, _optional_text(body, "default_responsible", 64),
            _optional_text(body, "source_name", 100))


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


async def put_settings(request: web.Request) -> web.Response:
    me = admin_of(request)
    body = await read_json(request)
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        current = await load_settings(conn, me.project_id)
        kind, config, secrets, responsible, source = validate(body, current)
        await conn.execute(
            """insert into crm_settings (project_id, kind, config, secrets, default_responsible, source_name,
                                         updated_at, updated_by)
               values ($1, $2, $3, $4, $5, $6, now(), $7)
               on conflict (project_id) do update set kind = excluded.kind, config = excluded.config,
                   secrets = excluded.secrets, default_responsible = excluded.default_responsible,
                   source_name = excluded.source_name, updated_at = now(), updated_by = excluded.updated_by""",
            me.project_id, kind, config, secrets, responsible, source, me.id)
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


async def retry_delivery(request: web.Request) -> web.Response:
    me = admin_of(request)
    request_id = canonical_uuid(request.match_info["id"])
    if request_id is None:
        raise Rejected(404, "not_found", "No such delivery.")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow("select * from deliveries where request_id = $1 and project_id = $2 for update",
                                  request_id, me.project_id)
        if row is None:
            raise Rejected(404, "not_found", "No such delivery.")
        before = deliveries.delivery_of(row)
        after = domain.requeue(before, deliveries.now())
        if after != before:
            await deliveries.save(conn, after)
            row = await conn.fetchrow("select * from deliveries where request_id = $1", request_id)
    return ok(delivery_view(row))


def add_routes(app: web.Application) -> None:
    deliveries.setup(app)
    app.router.add_get("/api/project/crm", get_settings)
    app.router.add_put("/api/project/crm", put_settings)
    app.router.add_post("/api/project/crm/test", test_connection)
    app.router.add_get("/api/project/crm/deliveries", list_deliveries)
    app.router.add_post("/api/project/crm/deliveries/{id}/retry", retry_delivery)
