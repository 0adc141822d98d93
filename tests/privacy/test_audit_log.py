"""Issue 20, item 7: the audit log, through the gateway on the real stack (registry,
conversation service, crm-bridge, scheduler; real Kafka and PostgreSQL).

- Every administrative act an owner and an admin make - operators added, renamed,
  promoted, deactivated, reactivated, removed; chat, widget, sites, hours, assignment,
  CRM, identity secret and retention settings; an export; an erasure - comes back from
  `GET /api/project/audit` with who did it (by name), what it was done to and when;
- it holds none of the visitor's data (not the phone or email the export and erasure
  named, not the conversation's marker), and neither does the audit.events topic;
- it pages with its cursor without losing or repeating an entry;
- non-admins get 403 and no method changes it."""
from __future__ import annotations

import uuid

from tests.visitor import ScriptedVisitor
from tests.crm_bridge.test_handoff import configure
from tests.privacy.marked import every_record
from tests.scheduler.test_schedule_api import BODY as HOURS
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

EXPECTED = ["operator.added", "operator.added", "operator.changed", "operator.role_changed", "operator.deactivated",
            "operator.reactivated", "settings.chat", "settings.chat", "settings.widget", "settings.sites", "settings.hours",
            "settings.assignment", "settings.crm", "settings.identity_secret", "settings.retention",
            "privacy.exported", "privacy.erasure_requested", "operator.removed"]


async def read_all(stack, token: str, limit: int = 100) -> list[dict]:
    entries, after = [], "0"
    while True:
        r = await stack.call("GET", f"/api/project/audit?after={after}&limit={limit}", token)
        assert r.status == 200, await r.text()
        page = await r.json()
        entries += page["entries"]
        after = page["next"]
        if not page["more"]:
            return entries


async def test_the_audit_log_says_who_did_what_and_holds_no_visitor_data(full_stack, platform):
    stack = full_stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    owner_id = (await (await stack.call("GET", "/api/session", owner)).json())["id"]
    admin_id, admin, _ = await stack.add_operator(owner, "Ada Admin", admin=True)
    plain_id, plain, _ = await stack.add_operator(admin, "Plain Operator")

    async def done(method: str, path: str, token: str, body: dict | None = None, status: int = 200) -> dict:
        r = await stack.call(method, path, token, json=body)
        assert r.status == status, (path, await r.text())
        return await r.json() if r.content_type == "application/json" else {}
    await done("PATCH", f"/api/operators/{plain_id}", admin, {"name": "Plain Renamed"})
    await done("PATCH", f"/api/operators/{plain_id}", owner, {"is_admin": False})       # no change: no entry
    await done("PATCH", f"/api/operators/{admin_id}", owner, {"is_admin": False})
    await done("POST", f"/api/operators/{plain_id}/deactivate", owner, status=204)
    await done("POST", f"/api/operators/{plain_id}/reactivate", owner, status=204)
    await done("POST", "/api/project/chat/disable", owner)
    await done("PUT", "/api/project/widget", owner, {"language": "en", "texts": {"launcher_label": "Ask us"}})
    await done("PUT", "/api/project/sites", owner, {"sites": ["https://shop.example"]})
    await done("PUT", "/api/project/schedule", owner, {**HOURS, "show_any_time": True})   # the chat stays open
    await done("PUT", "/api/project/assignment", owner, {"assignment_mode": "round_robin", "offer_seconds": 60})
    await configure(stack, owner)
    await done("POST", "/api/project/identity-secret/rotate", owner)
    await done("PUT", "/api/project/privacy/retention", owner, {"erase_after_days": 90})

    # A visitor's conversation, exported and erased by what the visitor typed.
    await done("POST", "/api/project/chat/enable", owner)
    await done("POST", "/api/project/chat/enable", owner)    # enabled already: nothing changes, no entry
    mark = f"PII{uuid.uuid4().hex[:10]}"
    email, phone = f"{mark.lower()}@example.com", "+79005554433"
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.ws.send_json({"type": "contacts", "name": f"Ivan {mark}", "phone": phone, "email": email})
    await visitor.send_and_wait(f"Call me {mark}")
    await visitor.drop()
    exported = await done("GET", f"/api/project/privacy/export?email={email}", owner)
    assert len(exported["conversations"]) == 1
    erasure = await done("POST", "/api/project/privacy/erasures", owner, {"email": email}, status=202)
    await done("DELETE", f"/api/operators/{plain_id}", owner, status=204)

    async def complete() -> bool:   # in the order they reached the log: several partitions, so sorted here
        return sorted(e["action"] for e in await read_all(stack, owner)) == sorted(EXPECTED)
    await eventually(complete, timeout=30, what="every act in the audit log")
    log = await read_all(stack, owner)
    by = {(e["action"], e["target"]["id"]): e for e in log}
    assert by[("operator.added", admin_id)]["by"] == {"id": owner_id, "name": "Owner"}
    added_plain = by[("operator.added", plain_id)]
    assert added_plain["by"] == {"id": admin_id, "name": "Ada Admin"} and added_plain["detail"] == {"is_admin": False}
    assert added_plain["target"] == {"id": plain_id, "name": "Plain Renamed"}   # names resolved when read
    assert by[("operator.changed", plain_id)]["detail"] == {"fields": ["name"]}   # what changed, not its value
    assert by[("operator.role_changed", admin_id)]["detail"] == {"is_admin": False}
    chat = sorted((e for e in log if e["action"] == "settings.chat"), key=lambda e: e["at"])
    assert [e["detail"] for e in chat] == [{"enabled": False}, {"enabled": True}]
    assert by[("settings.sites", "sites")]["detail"] == {"sites": ["https://shop.example"]}
    assert by[("settings.crm", "crm")]["detail"] == {"kind": "bitrix24"}
    assert by[("settings.retention", "retention")]["detail"] == {"erase_after_days": 90}
    assert by[("privacy.exported", None)]["detail"] == {"subject": "email", "conversations": 1}
    assert by[("privacy.erasure_requested", erasure["id"])]["detail"] == {"subject": "email", "conversations": 1}
    assert all(e["at"] and e["by"]["name"] for e in log)

    # Nothing of the visitor: not in the answer, not on the topic.
    text = str(log)
    assert mark not in text and mark.lower() not in text and "5554433" not in text
    records = [r for r in await every_record(platform.bootstrap) if b"audit.recorded" in r]
    assert len(records) >= len(EXPECTED)
    assert not [r for r in records if mark.lower().encode() in r.lower() or b"5554433" in r]

    # The cursor: small pages give the same entries, once each; nothing new after the last.
    assert [e["id"] for e in await read_all(stack, owner, limit=4)] == [e["id"] for e in log]
    r = await stack.call("GET", f"/api/project/audit?after={log[-1]['cursor']}", owner)
    assert await r.json() == {"entries": [], "next": log[-1]["cursor"], "more": False}
    for bad, code in (("after=-1", "after_invalid"), ("after=abc", "after_invalid"), ("limit=0", "limit_invalid"),
                      ("limit=501", "limit_invalid")):
        r = await stack.call("GET", f"/api/project/audit?{bad}", owner)
        assert r.status == 422 and (await r.json())["error"]["code"] == code, bad

    # Only admins read it, and no one edits it.
    r = await stack.call("GET", "/api/project/audit", admin)   # demoted above: now a plain operator
    assert r.status == 403 and (await r.json())["error"]["code"] == "admin_only"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = await stack.call(method, "/api/project/audit", owner, json={"entries": []})
        assert r.status == 405, method
    assert [e["id"] for e in await read_all(stack, owner)] == [e["id"] for e in log]
