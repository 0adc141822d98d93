"""A local CRM stand-in for `make run` and the tests: `python -m crm_bridge.standin
[--host 127.0.0.1] [--port 8090] [--secret standin] [--webhook-secret ...]`, or
`create_app()` in-process.

It speaks two contracts:
- Bitrix24 REST through an incoming webhook at `/rest/1/<secret>/<method>.json` (JSON
  body): `user.get` (FILTER ACTIVE/EMAIL/ID/USER_TYPE, pages of `page_size` with `next`/`total`),
  `crm.lead.add`, `crm.lead.list` (filter by equality on any field, select, order ID,
  start), `crm.lead.get`, `crm.lead.update` (what a manager does: e.g. a new
  STATUS_ID), `crm.lead.fields`, `crm.duplicate.findbycomm` (entity_type LEAD, type
  PHONE/EMAIL). Like the real one, crm.lead.add does NOT dedupe by
  ORIGIN_ID. A wrong secret answers 401 INVALID_CREDENTIALS; an unknown method 404
  ERROR_METHOD_NOT_FOUND. The webhook's user id is 1 ("Anna Petrova").
- The signed JSON webhook at `POST /webhook` (see webhook.py): checks the signature
  and the timestamp (5 minutes), dedupes by request_id, answers {"lead_id", "url"}.

Seeded managers: ids 1..5 active, 1 "Anna Petrova" with the demo owner's email
(PARLEY_OWNER_EMAIL), 6 inactive, 7 an extranet user (left out by USER_TYPE). Leads
are listed on the page at `/` and each at `/crm/lead/details/<id>/` (the Bitrix24
lead URL shape).

For tests (no auth: it binds 127.0.0.1 and is never deployed):
- `POST /_faults` {"fail_next": [...], "methods"?: [...], "hang_seconds"?: 30}: the next
  calls (only of the listed methods when given: Bitrix24 method names, or "webhook")
  take one fault each, in order: 500 or 502..504 or 429 (an error answer; 503 is
  Bitrix24's QUERY_LIMIT_EXCEEDED), "timeout_before_create" (hang, do nothing),
  "timeout_after_create" (do the call, create the lead, then hang), "drop_after_create"
  (do the call, then close the connection without an answer), "invalid_credentials"
  (401). Answers {"pending": n}. `DELETE /_faults` clears them; `GET /_faults` lists them.
- `GET /_leads`: {"bitrix24": [lead fields...], "webhook": [payloads with lead_id...],
  "calls": {method: count}}. `POST /_reset`: forget leads, faults and counts."""
from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import time
from datetime import datetime, timedelta, timezone

import orjson
from aiohttp import web

from parley.config import env

from .webhook import verify

MSK = timezone(timedelta(hours=3))
STATE = web.AppKey("standin_state", dict)


def seeded_users(owner_email: str) -> list[dict]:
    people = [("Anna", "Petrova", owner_email), ("Ivan", "Sidorov", "ivan.sidorov@standin.local"),
              ("Maria", "Volkova", "maria.volkova@standin.local"), ("Pavel", "Smirnov", "pavel.smirnov@standin.local"),
              ("Olga", "Kuznetsova", "olga.kuznetsova@standin.local"), ("Boris", "Former", "boris.former@standin.local")]
    users = [{"ID": str(i), "ACTIVE": i <= 5, "NAME": first, "LAST_NAME": last, "EMAIL": email,
              "WORK_POSITION": "Sales manager", "USER_TYPE": "employee"}
             for i, (first, last, email) in enumerate(people, start=1)]
    users.append({"ID": "7", "ACTIVE": True, "NAME": "Partner", "LAST_NAME": "Extranet",
                  "EMAIL": "partner@extranet.standin.local", "WORK_POSITION": "", "USER_TYPE": "extranet"})
    return users


def create_app(*, secret: str = "standin", webhook_secret: str = "standin-webhook-secret",
               owner_email: str | None = None, page_size: int = 50) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[STATE] = {
        "secret": secret, "webhook_secret": webhook_secret, "page_size": page_size,
        "users": seeded_users(owner_email or env("PARLEY_OWNER_EMAIL")),
        "leads": {}, "ids": itertools.count(1), "webhook": {}, "faults": [], "calls": {},
    }
    app.router.add_get("/", page)
    app.router.add_get("/crm/lead/details/{id}/", lead_page)
    app.router.add_post("/rest/{user}/{secret}/{method}.json", bitrix)
    app.router.add_post("/rest/{user}/{secret}/{method}", bitrix)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/_leads", leads_json)
    app.router.add_post("/_faults", add_faults)
    app.router.add_get("/_faults", list_faults)
    app.router.add_delete("/_faults", clear_faults)
    app.router.add_post("/_reset", reset)
    return app


def _json(data, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _b24_error(code: str, desc: str, status: int) -> web.Response:
    return _json({"error": code, "error_description": desc}, status)


def _take_fault(state: dict, method: str):
    for i, fault in enumerate(state["faults"]):
        if fault["methods"] is None or method in fault["methods"]:
            return state["faults"].pop(i)
    return None


async def _apply(request: web.Request, state: dict, method: str, do, error):
    """Run `do()` (which returns a Response) under the next matching fault."""
    state["calls"][method] = state["calls"].get(method, 0) + 1
    fault = _take_fault(state, method)
    if fault is None:
        return do()
    kind = fault["fault"]
    if kind == "timeout_before_create":
        await asyncio.sleep(fault["hang"])
        return error("TIMEOUT", "hung before doing anything", 504)
    if kind in ("timeout_after_create", "drop_after_create"):
        response = do()
        if kind == "drop_after_create":
            request.transport.close()
            raise asyncio.CancelledError()
        await asyncio.sleep(fault["hang"])
        return response
    if kind == "invalid_credentials":
        return error("INVALID_CREDENTIALS", "Invalid request credentials", 401)
    status = int(kind)
    if status == 503:
        return error("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
    if status == 429:
        return error("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)
    return error("INTERNAL_SERVER_ERROR", "Internal server error (injected)", status)


# --- Bitrix24 -------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(MSK).replace(microsecond=0).isoformat()


def _matches(lead: dict, flt: dict) -> bool:
    for key, wanted in (flt or {}).items():
        key = key.lstrip("=")
        have = lead.get(key)
        if isinstance(wanted, list):
            if str(have) not in [str(w) for w in wanted]:
                return False
        elif str(have if have is not None else "") != str(wanted):
            return False
    return True


def _select(lead: dict, select) -> dict:
    """Like crm.lead.list: all plain fields by default; multi-fields (PHONE, EMAIL) only
    when named in select."""
    visible = {k: v for k, v in lead.items() if not k.startswith("_")}
    if not select or "*" in select:
        return {k: v for k, v in visible.items() if k not in ("PHONE", "EMAIL") or (select and k in select)}
    return {k: visible.get(k) for k in dict.fromkeys(["ID", *select]) if k in visible}


def _comm_values(lead: dict, kind: str) -> set[str]:
    return {str(v.get("VALUE", "")).strip().lower() for v in lead.get(kind) or [] if isinstance(v, dict)}


def _bitrix_call(state: dict, method: str, params: dict, user_id: str):
    """(status, body) of one Bitrix24 method."""
    leads: dict = state["leads"]
    if method == "user.get":
        flt = params.get("FILTER") or params.get("filter") or {}
        users = state["users"]
        for key, wanted in flt.items():
            if key == "ACTIVE":
                want = wanted in (True, "true", "Y", "1", 1)
                users = [u for u in users if u["ACTIVE"] == want]
            elif key == "EMAIL":
                users = [u for u in users if u["EMAIL"].lower() == str(wanted).strip().lower()]
            elif key == "USER_TYPE":
                users = [u for u in users if u["USER_TYPE"] == wanted]
            elif key == "ID":
                users = [u for u in users if u["ID"] == str(wanted)]
        start = int(params.get("start") or 0)
        size = state["page_size"]
        body = {"result": users[start:start + size], "total": len(users)}
        if start + size < len(users):
            body["next"] = start + size
        return 200, body
    if method == "crm.lead.add":
        fields = params.get("fields") or {}
        if not isinstance(fields, dict) or not str(fields.get("TITLE") or fields.get("NAME") or "").strip():
            return 400, {"error": "", "error_description": "The field TITLE or NAME is required."}
        assigned = str(fields.get("ASSIGNED_BY_ID") or user_id)
        if not any(u["ID"] == assigned for u in state["users"]):
            return 400, {"error": "", "error_description": f"Responsible user {assigned} not found."}
        lead_id = str(next(state["ids"]))
        leads[lead_id] = {**fields, "ID": lead_id, "ASSIGNED_BY_ID": assigned, "STATUS_ID": "NEW",
                          "DATE_CREATE": _now(), "CREATED_BY_ID": user_id, "_params": params.get("params") or {}}
        return 200, {"result": int(lead_id)}
    if method == "crm.lead.get":
        lead = leads.get(str(params.get("id") or params.get("ID") or ""))
        if lead is None:
            return 400, {"error": "", "error_description": "Not found"}
        return 200, {"result": {k: v for k, v in lead.items() if not k.startswith("_")}}
    if method == "crm.lead.update":  # what a manager does in the CRM: e.g. STATUS_ID NEW -> IN_PROCESS
        lead = leads.get(str(params.get("id") or params.get("ID") or ""))
        fields = params.get("fields")
        if lead is None or not isinstance(fields, dict):
            return 400, {"error": "", "error_description": "Not found"}
        lead.update({k: v for k, v in fields.items() if k not in ("ID", "DATE_CREATE") and not k.startswith("_")})
        return 200, {"result": True}
    if method == "crm.lead.list":
        found = [lead for lead in leads.values() if _matches(lead, params.get("filter") or {})]
        desc = str((params.get("order") or {}).get("ID", "ASC")).upper() == "DESC"
        found.sort(key=lambda lead: int(lead["ID"]), reverse=desc)
        start = int(params.get("start") or 0)
        page_rows = found[start:start + 50]
        body = {"result": [_select(lead, params.get("select")) for lead in page_rows], "total": len(found)}
        if start + 50 < len(found):
            body["next"] = start + 50
        return 200, body
    if method == "crm.lead.fields":
        names = ["ID", "TITLE", "NAME", "PHONE", "EMAIL", "COMMENTS", "ASSIGNED_BY_ID", "SOURCE_ID",
                 "SOURCE_DESCRIPTION", "STATUS_ID", "ORIGINATOR_ID", "ORIGIN_ID", "DATE_CREATE",
                 "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM"]
        return 200, {"result": {n: {"type": "string", "title": n} for n in names}}
    if method == "crm.duplicate.findbycomm":
        kind, values = params.get("type"), params.get("values")
        if kind not in ("PHONE", "EMAIL") or not isinstance(values, list) or not values or len(values) > 20:
            return 400, {"error": "", "error_description": "Parameter 'type' or 'values' is invalid."}
        wanted = {str(v).strip().lower() for v in values}
        ids = [int(lead["ID"]) for lead in leads.values() if _comm_values(lead, kind) & wanted][:20]
        entity = params.get("entity_type")
        # Like PHP's json_encode of an empty array: [] when nothing was found.
        return 200, {"result": {entity or "LEAD": ids} if ids else []}
    return 404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}


async def bitrix(request: web.Request) -> web.Response:
    state = request.app[STATE]
    method = request.match_info["method"]
    if request.match_info["secret"] != state["secret"] or request.match_info["user"] != "1":
        return _b24_error("INVALID_CREDENTIALS", "Invalid request credentials", 401)
    try:
        raw = await request.read()
        params = orjson.loads(raw) if raw.strip() else {}
        if not isinstance(params, dict):
            raise ValueError
    except ValueError:
        return _b24_error("INVALID_REQUEST", "Request body must be a JSON object", 400)
    started = time.time()

    def do() -> web.Response:
        status, body = _bitrix_call(state, method, params, request.match_info["user"])
        if status == 200:
            body["time"] = {"start": started, "finish": time.time(), "duration": time.time() - started}
        return _json(body, status)
    return await _apply(request, state, method, do, _b24_error)


# --- the signed webhook ------------------------------------------------------------------

async def webhook(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.read()

    def error(code: str, desc: str, status: int) -> web.Response:
        return _json({"error": code, "message": desc}, status)
    refused = verify(state["webhook_secret"], request.headers.get("X-Parley-Timestamp"),
                     request.headers.get("X-Parley-Signature"), body)
    if refused:
        return error("unauthorized", refused, 401)
    try:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return error("bad_request", "body must be a JSON object", 400)

    def do() -> web.Response:
        if data.get("event") == "ping":
            return _json({"ok": True})
        if data.get("event") != "lead.requested" or not data.get("request_id"):
            return error("bad_request", "unknown event or no request_id", 400)
        stored = state["webhook"].get(data["request_id"])
        if stored is None:                       # dedupe by request_id, as receivers must
            lead_id = f"W{len(state['webhook']) + 1}"
            stored = state["webhook"][data["request_id"]] = {**data, "lead_id": lead_id, "received_at": _now()}
        base = f"{request.scheme}://{request.host}"
        return _json({"lead_id": stored["lead_id"], "url": f"{base}/#webhook-{stored['lead_id']}"})
    return await _apply(request, state, "webhook", do, error)


# --- test API and the page ---------------------------------------------------------------

FAULTS = {"timeout_before_create", "timeout_after_create", "drop_after_create", "invalid_credentials"}


async def add_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        data = await request.json()
        items = data["fail_next"]
        methods = data.get("methods")
        hang = float(data.get("hang_seconds", 30))
        assert isinstance(items, list) and (methods is None or isinstance(methods, list))
        for item in items:
            assert item in FAULTS or (isinstance(item, int) and (item == 429 or 500 <= item <= 599))
    except (ValueError, KeyError, TypeError, AssertionError):
        return _json({"error": "expected {\"fail_next\": [500|503|429|...|" + "|".join(sorted(FAULTS))
                      + "], \"methods\"?: [...], \"hang_seconds\"?: n}"}, 400)
    state["faults"] += [{"fault": str(item), "methods": methods, "hang": hang} for item in items]
    return _json({"pending": len(state["faults"])})


async def list_faults(request: web.Request) -> web.Response:
    return _json({"pending": request.app[STATE]["faults"]})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE]["faults"].clear()
    return _json({"pending": 0})


async def reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state["leads"].clear()
    state["webhook"].clear()
    state["faults"].clear()
    state["calls"].clear()
    return _json({"ok": True})


async def leads_json(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _json({"bitrix24": list(state["leads"].values()), "webhook": list(state["webhook"].values()),
                  "calls": state["calls"]})


def _manager_name(state: dict, user_id) -> str:
    user = next((u for u in state["users"] if u["ID"] == str(user_id)), None)
    return f"{user['NAME']} {user['LAST_NAME']}" if user else str(user_id)


def _first(values) -> str:
    return values[0].get("VALUE", "") if isinstance(values, list) and values and isinstance(values[0], dict) else ""


async def page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    e = html.escape
    rows = "".join(
        f"<tr id='lead-{e(lead['ID'])}'><td><a href='/crm/lead/details/{e(lead['ID'])}/'>#{e(lead['ID'])}</a></td>"
        f"<td>{e(str(lead.get('TITLE', '')))}</td><td>{e(str(lead.get('NAME', '')))}</td>"
        f"<td>{e(_first(lead.get('PHONE')))}</td><td>{e(_first(lead.get('EMAIL')))}</td>"
        f"<td>{e(_manager_name(state, lead.get('ASSIGNED_BY_ID')))}</td><td>{e(str(lead.get('STATUS_ID', '')))}</td>"
        f"<td>{e(str(lead.get('DATE_CREATE', '')))}</td></tr>"
        for lead in sorted(state["leads"].values(), key=lambda lead: -int(lead["ID"])))
    hooks = "".join(
        f"<tr id='webhook-{e(w['lead_id'])}'><td>{e(w['lead_id'])}</td><td>{e(str((w.get('lead') or {}).get('title', '')))}</td>"
        f"<td>{e(str((w.get('lead') or {}).get('name', '')))}</td><td>{e(str(w.get('request_id', '')))}</td></tr>"
        for w in state["webhook"].values())
    managers = "".join(f"<li>#{e(u['ID'])} {e(u['NAME'])} {e(u['LAST_NAME'])} &lt;{e(u['EMAIL'])}&gt;"
                       f"{'' if u['ACTIVE'] else ' (inactive)'}</li>" for u in state["users"])
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CRM stand-in</title>
<meta http-equiv="refresh" content="5"><style>body{{font-family:sans-serif;margin:2em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>Parley CRM stand-in</h1>
<p>Bitrix24 incoming webhook: <code>{e(f"{request.scheme}://{request.host}/rest/1/{state['secret']}/")}</code>;
signed webhook: <code>{e(f"{request.scheme}://{request.host}/webhook")}</code></p>
<h2>Bitrix24 leads ({len(state['leads'])})</h2><table><tr><th>Lead</th><th>Title</th><th>Name</th><th>Phone</th>
<th>Email</th><th>Responsible</th><th>Status</th><th>Created</th></tr>{rows}</table>
<h2>Webhook leads ({len(state['webhook'])})</h2><table><tr><th>Lead</th><th>Title</th><th>Name</th><th>Request</th></tr>{hooks}</table>
<h2>Managers</h2><ul>{managers}</ul></body></html>"""
    return web.Response(text=body, content_type="text/html")


async def lead_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lead = state["leads"].get(request.match_info["id"])
    if lead is None:
        raise web.HTTPNotFound(text="no such lead")
    e = html.escape
    items = "".join(f"<dt>{e(k)}</dt><dd><pre>{e(v if isinstance(v, str) else orjson.dumps(v).decode())}</pre></dd>"
                    for k, v in lead.items() if not k.startswith("_"))
    return web.Response(text=f"<!doctype html><html><head><meta charset='utf-8'><title>Lead #{e(lead['ID'])}</title></head>"
                             f"<body><p><a href='/'>All leads</a></p><h1>Lead #{e(lead['ID'])}</h1><dl>{items}</dl></body></html>",
                        content_type="text/html")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_bridge.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--secret", default="standin", help="the Bitrix24 webhook secret in /rest/1/<secret>/")
    parser.add_argument("--webhook-secret", default="standin-webhook-secret", help="the signed webhook's secret")
    args = parser.parse_args(argv)
    web.run_app(create_app(secret=args.secret, webhook_secret=args.webhook_secret),
                host=args.host, port=args.port, print=lambda *_: print(
                    f"CRM stand-in on http://{args.host}:{args.port}/ (Bitrix24 webhook /rest/1/{args.secret}/, "
                    f"signed webhook /webhook)", flush=True))


if __name__ == "__main__":
    main()
