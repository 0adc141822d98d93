"""Issue 8, item 1: ids from public URLs never reach another upstream route.

Before, the gateway decoded `{id}`, pasted it into the upstream URL and the HTTP client
normalised the `../`: a non-admin operator read another operator's conversation (notes
included) through `GET /api/conversations/..%2F..%2Finternal%2Fconversations%2F<cid>%2Fevents`
and wrote into it as the visitor through `POST /api/conversations/..%2F..%2Finternal%2Fvisitor/messages`.

Every route of the gateway's real route table that has a path parameter gets every
hostile spelling below, as a non-admin operator (bearer), sent on a raw socket so the
encoding reaches the server as written. None may succeed, none may be a fault, each
gets the JSON error shape, and the victim's conversation, account and template are
unchanged afterwards."""
from __future__ import annotations

import re
import uuid

import orjson

from parley.service_client import path
from tests.edge.conftest import assert_final_json_refusal, bearer, conversation_events, new_id, raw_request

# Spellings of a path parameter. `{target}` is a real id of the route's kind that the
# attacker may not touch; `{cid}` the victim's conversation; `{b_id}` the victim operator.
HOSTILE = [
    "..%2F..%2Finternal%2Fconversations%2F{cid}%2Fevents",
    "..%2f..%2finternal%2fconversations%2f{cid}%2fsummary",
    "%2e%2e%2f%2e%2e%2finternal%2fconversations%2f{cid}%2fevents",
    "%2E%2E%2F%2E%2E%2F%2E%2E%2Finternal%2Fconversations%2F{cid}%2Fevents",
    "%252e%252e%252f%252e%252e%252finternal%252fconversations%252f{cid}%252fevents",
    "..%252F..%252Finternal%252Fvisitor",
    "..%2F..%2Finternal%2Fvisitor",
    "..%2F..%2Finternal%2Fsessions%2Fverify",
    "..%2F..%2Finternal%2Foperators%2F{b_id}%2Favatar",
    "..%5C..%5Cinternal%5Cvisitor",
    "%2e%2e",
    "..",
    "{target}%2F..%2F..%2Finbox",
    "{target}%3Fview%3Dall",
    "{target}%3F",
    "{target}%23fragment",
    "{target}%0d%0aX-Parley-Actor:%20%7B%22is_admin%22:true%7D",
    "{target}%0a",
    "%0d%0a",
    "{target}%00",
    "%00",
    "%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afinternal%c0%afvisitor",   # overlong UTF-8 for ../
    "%e0%80%ae%e0%80%ae%e0%80%af",
    "{target}" + "0" * 3000,                                        # an overlong id
    "a" * 4000,
    "urn:uuid:{target}",
    "urn%3Auuid%3A{target}",
    "%7B{target}%7D",
    "{target_hex}",
    "{target};x=1",
    "{target}%20",
    "%20{target}",
    "{target}%09",
    "%D0%B6{target}",
]

# Bodies that would make the upstream routes the exploits aim at do something.
def attack_body(cast) -> dict:
    return {"project_id": "demo", "visitor_id": cast.visitor.visitor_id, "message_id": f"pwn-{uuid.uuid4().hex[:8]}",
            "text": "written by A", "page_url": "https://evil.example/", "status": "closed", "operator_id": cast.a_id,
            "name": "Pwned", "is_admin": True, "title": "pwned", "token": cast.a, "avatar_id": "0" * 32}


PDF = b"%PDF-1.4 not really a pdf\n"
RAW_BODY_ROUTES = {"/api/conversations/{id}/attachments", "/api/operators/{id}/avatar"}
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_CHOICES = re.compile(r"\(\?P<(\w+)>([\w|]+)\)")


def parameter_routes(app) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(method, canonical path, literal choices per parameter) for every route with a path
    parameter; HEAD is aiohttp's automatic twin of GET."""
    found = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if "{" not in canonical or route.method == "HEAD":
            continue
        pattern = getattr(route.resource, "_pattern", None)
        choices = {name: alts.split("|") for name, alts in _CHOICES.findall(pattern.pattern if pattern else "")}
        found.append((route.method, canonical, choices))
    return found


def valid_value(canonical: str, name: str, values: dict[str, str]) -> str:
    kind = canonical.split("/")[2] if canonical.startswith("/api/") else canonical.split("/")[1]
    key = (kind, name)
    assert key in values, (f"{canonical}: a new route with a path parameter ({name}); "
                           "tell this test which real id the attacker would aim it at")
    return values[key]


def expand(template: str, cast, target: str) -> str:
    return (template.replace("{target_hex}", target.replace("-", "")).replace("{target}", target)
            .replace("{cid}", cast.cid).replace("{b_id}", cast.b_id))


def request_paths(app, cast, values: dict) -> list[tuple[str, str, str]]:
    """(method, canonical, raw path) for every parameter of every route, and each hostile spelling."""
    out = []
    for method, canonical, choices in parameter_routes(app):
        params = _PARAM.findall(canonical)
        for hostile_param in params:
            fills = [{}]
            for other in params:
                if other == hostile_param:
                    continue
                options = choices.get(other) or [valid_value(canonical, other, values)]
                fills = [{**f, other: o} for f in fills for o in options]
            for fill in fills:
                real = choices.get(hostile_param, [None])[0] or valid_value(canonical, hostile_param, values)
                for template in HOSTILE:
                    raw = canonical
                    for name in params:
                        value = expand(template, cast, real) if name == hostile_param else fill[name]
                        raw = re.sub(r"\{" + name + r"(?::[^}]*)?\}", lambda _: value, raw, count=1)
                    out.append((method, canonical, raw))
    return out


async def test_no_path_parameter_reaches_another_route(stack, cast):
    owner_template = await stack.call("POST", "/api/templates", cast.owner, json={"title": "Hours", "text": "9 to 5"})
    assert owner_template.status == 201, await owner_template.text()
    template_id = (await owner_template.json())["id"]
    upload = await stack.call("POST", f"/api/conversations/{cast.cid}/attachments", cast.b, data=PDF,
                              headers={"X-File-Name": "b.pdf"})
    assert upload.status == 201, await upload.text()
    b_session = (await (await stack.call("GET", "/api/session", cast.b)).json())["session_id"]
    values = {("conversations", "id"): cast.cid, ("operators", "id"): cast.b_id, ("templates", "id"): template_id,
              ("files", "id"): (await upload.json())["file_id"], ("avatars", "name"): uuid.uuid4().hex,
              ("project", "id"): str(uuid.uuid4()),  # a CRM delivery's request id
              ("conversations", "request_id"): str(uuid.uuid4()),  # a conversation's lead request
              # B's own session: ending it (or reading it) is what an attacker would aim at
              ("me", "session_id"): b_session, ("operators", "session_id"): b_session,
              ("visitors", "visitor_id"): str(uuid.uuid4())}   # a live visitor to invite (none is live here: 404)
    before = await conversation_events(stack, cast.cid)
    port = stack.gateway.port
    paths = request_paths(stack.gateway.app, cast, values)
    covered = {canonical for _, canonical, _ in paths}
    assert {"/api/conversations/{id}", "/api/conversations/{id}/{action}", "/api/operators/{id}",
            "/api/templates/{id}", "/files/{id}", "/api/operators/{id}/avatar"} <= covered

    for method, canonical, raw in paths:
        if canonical in RAW_BODY_ROUTES:
            body, content_type = PDF, "application/octet-stream"
        elif method in ("POST", "PUT", "PATCH"):
            body, content_type = orjson.dumps(attack_body(cast)), "application/json"
        else:
            body, content_type = b"", None
        headers = {**bearer(cast.a), **({"Content-Type": content_type} if content_type else {})}
        r = await raw_request(port, method, raw, headers=headers, body=body)
        assert_final_json_refusal(r, f"{method} {raw[:200]}")
        assert cast.note.encode() not in r.body

    # The victim's conversation got nothing: no message as the visitor, no reply, no status.
    after = await conversation_events(stack, cast.cid)
    assert [e["id"] for e in after] == [e["id"] for e in before]
    # B is still an active non-admin with no new avatar; the owner's template still stands.
    r = await stack.call("GET", f"/api/operators/{cast.b_id}", cast.owner)
    assert r.status == 200 and (await r.json())["active"] is True
    assert (await r.json())["is_admin"] is False and (await r.json())["avatar_url"] is None
    r = await stack.call("GET", "/api/templates", cast.owner)
    assert [t["id"] for t in (await r.json())["templates"]] == [template_id]
    assert (await stack.call("GET", "/api/session", cast.b)).status == 200, "B's session still stands"


async def test_the_reported_exploits(stack, cast):
    port = stack.gateway.port
    before = await conversation_events(stack, cast.cid)

    # Reading another operator's conversation, notes included.
    r = await raw_request(port, "GET", f"/api/conversations/..%2F..%2Finternal%2Fconversations%2F{cast.cid}%2Fevents",
                          headers=bearer(cast.a))
    assert_final_json_refusal(r, "read through ../")
    assert cast.note.encode() not in r.body and b"events" not in r.body
    # What A may really see of it: nothing.
    assert (await stack.call("GET", f"/api/conversations/{cast.cid}", cast.a)).status == 404

    # Writing into it as its visitor, and into a made-up project.
    for project in ("demo", "made-up-project"):
        body = attack_body(cast) | {"project_id": project, "visitor_id": cast.visitor.visitor_id if project == "demo"
                                    else "made-up-visitor"}
        r = await raw_request(port, "POST", "/api/conversations/..%2F..%2Finternal%2Fvisitor/messages",
                              headers={**bearer(cast.a), "Content-Type": "application/json"},
                              body=orjson.dumps(body))
        assert_final_json_refusal(r, f"write as the visitor of {project}")
    after = await conversation_events(stack, cast.cid)
    assert [e["id"] for e in after] == [e["id"] for e in before]
    assert all(e["data"].get("text") != "written by A" for e in after)
    made_up = await stack.conversation_client.checked(
        "GET", path("internal", "visitor", "conversation"),
        params={"project_id": "made-up-project", "visitor_id": "made-up-visitor"})
    assert made_up["conversation_id"] is None
    # The visitor saw nothing either.
    assert "written by A" not in cast.visitor.texts("visitor_message")


async def test_static_files_stay_in_their_folder(stack, cast):
    """The one parameter aiohttp's static route has: no encoded ../ to the gateway's source."""
    for raw in ("/app/static/..%2F..%2F__main__.py", "/app/static/%2e%2e%2f%2e%2e%2fopenapi.yaml",
                "/app/static/..%2F..%2F..%2F..%2Fparley%2Fconfig.py", "/app/static/%252e%252e%252f__main__.py",
                "/app/static/app.js%00", "/app/static/..%5C..%5C__main__.py"):
        r = await raw_request(stack.gateway.port, "GET", raw, headers=bearer(cast.a))
        assert 400 <= r.status < 500, f"{raw}: {r.describe()}"  # aiohttp's own file 404 has no body
        assert b"def routes" not in r.body and b"VARIABLES" not in r.body


def test_ids_are_strict():
    """What the route table may treat as an id (used above): one canonical spelling."""
    from parley.contract import canonical_uuid
    cid = new_id()
    assert canonical_uuid(cid.upper()) == cid
    for spelling in (f"urn:uuid:{cid}", "{" + cid + "}", cid.replace("-", ""), cid + "\x00", cid + "\n", f" {cid}"):
        assert canonical_uuid(spelling) is None, spelling

