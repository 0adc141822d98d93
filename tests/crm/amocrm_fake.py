"""A small fake of amoCRM API v4, speaking its HTTP contract as documented (amoCRM
cannot be reached from the test machines): bearer token, application/hal+json lists
with `_page`, `_links.next` and `_embedded`, 204 No Content for an empty list,
application/problem+json errors, and the bare-list answer of POST /api/v4/leads/complex.

Routes: GET /api/v4/account, GET /api/v4/users, POST /api/v4/leads/complex,
POST /api/v4/leads/{id}/notes, GET /api/v4/leads (query, filter[id][], with),
GET /api/v4/contacts (query, with=leads).

`query` searches the lead's name, tag names and custom field values (amoCRM documents
it as a search over filled fields; tags are an assumption the adapter guards against
by verifying the marker itself).

Faults: append to `fake.faults` (same words as the stand-in: 500, 503, 429, 401,
"timeout_after_create", "timeout_before_create"); each is taken by the next API call."""
from __future__ import annotations

import asyncio
import itertools
import time

import orjson
from aiohttp import web

ACCOUNT = {"id": 29000001, "name": "Fake amo account", "subdomain": "example", "country": "RU", "currency": "RUB"}


class AmoFake:
    def __init__(self, token: str, owner_email: str, *, page_limit_cap: int = 2, hang_seconds: float = 2.0):
        self.token, self.cap, self.hang = token, page_limit_cap, hang_seconds
        self.users = [
            {"id": 7001, "name": "Anna Petrova", "email": owner_email, "lang": "ru", "rights": {"is_active": True, "is_admin": True}},
            {"id": 7002, "name": "Ivan Sidorov", "email": "ivan@fake-amo.test", "lang": "ru", "rights": {"is_active": True}},
            {"id": 7003, "name": "Maria Volkova", "email": "maria@fake-amo.test", "lang": "ru", "rights": {"is_active": True}},
            {"id": 7004, "name": "Former Employee", "email": "former@fake-amo.test", "lang": "ru", "rights": {"is_active": False}},
        ]
        self.leads: dict[int, dict] = {}
        self.contacts: dict[int, dict] = {}
        self.notes: dict[int, list] = {}
        self.faults: list = []
        self.complex_bodies: list = []
        self._ids = itertools.count(3100001)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v4/account", self.account)
        app.router.add_get("/api/v4/users", self.list_users)
        app.router.add_post("/api/v4/leads/complex", self.leads_complex)
        app.router.add_post("/api/v4/leads/{id}/notes", self.add_notes)
        app.router.add_get("/api/v4/leads", self.list_leads)
        app.router.add_get("/api/v4/contacts", self.list_contacts)
        return app

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def hal(data, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(data), status=status, content_type="application/hal+json")

    @staticmethod
    def problem(status: int, title: str, detail: str = "") -> web.Response:
        body = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail or title}
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/problem+json")

    async def gate(self, request: web.Request):
        """Auth and faults: a Response to answer instead, or None to go on."""
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.problem(401, "Unauthorized")
        if self.faults and self.faults[0] not in ("timeout_after_create",):
            fault = self.faults.pop(0)
            if fault == "timeout_before_create":
                await asyncio.sleep(self.hang)
                return self.problem(504, "Gateway Timeout")
            if fault == 429:
                return self.problem(429, "Too Many Requests")
            if fault == 401:
                return self.problem(401, "Unauthorized")
            return self.problem(int(fault), "Internal Server Error" if fault == 500 else "Service Unavailable")
        return None

    async def after(self, response: web.Response) -> web.Response:
        if self.faults and self.faults[0] == "timeout_after_create":
            self.faults.pop(0)
            await asyncio.sleep(self.hang)
        return response

    def page(self, request: web.Request, items: list, key: str, path: str, cap: int | None = None) -> web.Response:
        page = int(request.query.get("page", 1))
        limit = min(int(request.query.get("limit", 50)), 250, cap or self.cap)
        chunk = items[(page - 1) * limit: page * limit]
        if not chunk:
            return web.Response(status=204)
        links = {"self": {"href": f"{path}?page={page}&limit={limit}"}}
        if page * limit < len(items):
            links["next"] = {"href": f"{path}?page={page + 1}&limit={limit}"}
        return self.hal({"_page": page, "_links": links, "_embedded": {key: chunk}})

    def lead_view(self, lead: dict, with_: set[str]) -> dict:
        view = {k: v for k, v in lead.items() if not k.startswith("_")}
        view["_links"] = {"self": {"href": f"/api/v4/leads/{lead['id']}"}}
        embedded = {"tags": lead["_tags"], "companies": []}
        if "contacts" in with_:
            embedded["contacts"] = [{"id": c, "is_main": True} for c in lead["_contacts"]]
        view["_embedded"] = embedded
        return view

    # -- routes -------------------------------------------------------------------------
    async def account(self, request):
        return await self.gate(request) or self.hal(ACCOUNT)

    async def list_users(self, request):
        return await self.gate(request) or self.page(request, self.users, "users", "/api/v4/users")

    async def leads_complex(self, request):
        refused = await self.gate(request)
        if refused:
            return refused
        body = await request.json()
        if not isinstance(body, list) or not body or len(body) > 50:
            return self.problem(400, "Bad Request", "expected a list of 1..50 leads")
        self.complex_bodies.append(body)
        answer, now = [], int(time.time())
        for item in body:
            responsible = item.get("responsible_user_id", self.users[0]["id"])
            if not isinstance(responsible, int) or not any(u["id"] == responsible for u in self.users):
                return self.hal({"validation-errors": [{"request_id": item.get("request_id"), "errors": [
                    {"code": "NotSupportedChoice", "path": "responsible_user_id", "detail": "The value you selected is not a valid choice."}]}],
                    "title": "Bad Request", "type": "https://httpstatus.es/400", "status": 400, "detail": "Request validation failed"}, 400)
            contact_ids = []
            for contact in (item.get("_embedded") or {}).get("contacts") or []:
                cid = next(self._ids)
                self.contacts[cid] = {"id": cid, "name": contact.get("first_name") or contact.get("name") or "",
                                      "first_name": contact.get("first_name") or "", "responsible_user_id": responsible,
                                      "created_at": now, "custom_fields_values": [
                                          {"field_id": 900 + i, "field_code": f.get("field_code"), "field_name": f.get("field_code"),
                                           "values": f.get("values") or []}
                                          for i, f in enumerate(contact.get("custom_fields_values") or [])],
                                      "_leads": []}
                contact_ids.append(cid)
            lead_id = next(self._ids)
            tags = [{"id": 500 + i, "name": t["name"], "color": None}
                    for i, t in enumerate((item.get("_embedded") or {}).get("tags") or [])]
            self.leads[lead_id] = {
                "id": lead_id, "name": item.get("name") or f"Сделка #{lead_id}", "price": item.get("price", 0),
                "responsible_user_id": responsible, "group_id": 0, "status_id": 142000 + 1, "pipeline_id": 9000,
                "created_at": now, "updated_at": now, "closed_at": None, "is_deleted": False,
                "custom_fields_values": item.get("custom_fields_values"), "account_id": ACCOUNT["id"],
                "_tags": tags, "_contacts": contact_ids, "_request_id": item.get("request_id"),
            }
            for cid in contact_ids:
                self.contacts[cid]["_leads"].append(lead_id)
            answer.append({"id": lead_id, "contact_id": contact_ids[0] if contact_ids else None, "company_id": None,
                           "request_id": [str(item.get("request_id") or "0")], "merged": False})
        return await self.after(self.hal(answer))

    async def add_notes(self, request):
        refused = await self.gate(request)
        if refused:
            return refused
        lead_id = int(request.match_info["id"])
        if lead_id not in self.leads:
            return self.problem(404, "Not Found")
        notes = await request.json()
        self.notes.setdefault(lead_id, []).extend(notes)
        return self.hal({"_links": {}, "_embedded": {"notes": [{"id": next(self._ids), "entity_id": lead_id} for _ in notes]}})

    async def list_leads(self, request):
        refused = await self.gate(request)
        if refused:
            return refused
        with_ = set(filter(None, request.query.get("with", "").split(",")))
        leads = sorted(self.leads.values(), key=lambda lead: lead["id"])
        ids = {int(v) for k, v in request.query.items() if k in ("filter[id][]", "filter[id]")}
        if ids:
            leads = [lead for lead in leads if lead["id"] in ids]
        query = request.query.get("query", "").strip().lower()
        if query:
            def text(lead):
                parts = [lead["name"]] + [t["name"] for t in lead["_tags"]]
                parts += [str(v.get("value")) for f in lead.get("custom_fields_values") or [] for v in f.get("values") or []]
                return " ".join(parts).lower()
            leads = [lead for lead in leads if query in text(lead)]
        # Only the users list is cut into tiny pages (to exercise paging).
        return self.page(request, [self.lead_view(lead, with_) for lead in leads], "leads", "/api/v4/leads", cap=250)

    async def list_contacts(self, request):
        refused = await self.gate(request)
        if refused:
            return refused
        query = request.query.get("query", "").strip().lower()
        with_ = set(filter(None, request.query.get("with", "").split(",")))
        found = []
        for contact in self.contacts.values():
            values = [contact["name"]] + [str(v.get("value")) for f in contact["custom_fields_values"] for v in f["values"]]
            if query and any(query in v.lower() for v in values):
                view = {k: v for k, v in contact.items() if not k.startswith("_")}
                view["_embedded"] = {"tags": [], "companies": []}
                if "leads" in with_:
                    view["_embedded"]["leads"] = [{"id": lid, "_links": {"self": {"href": f"/api/v4/leads/{lid}"}}}
                                                  for lid in contact["_leads"]]
                found.append(view)
        return self.page(request, found, "contacts", "/api/v4/contacts", cap=250)
