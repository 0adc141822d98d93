"""Every endpoint of the registry issue x {anonymous, operator, admin, owner, owner of
another project} -> the expected status; and no response to the other project's owner
carries this project's data."""
import uuid

import orjson

from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.registry.images import png

ROLES = ("anonymous", "operator", "admin", "owner", "other_owner")


async def test_permission_matrix(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    owner_id = (await (await stack.call("GET", "/api/session", owner)).json())["id"]
    admin_id, admin, _ = await stack.add_operator(owner, "Admin Alice", admin=True)
    operator_id, operator, _ = await stack.add_operator(owner, "Operator Oleg")
    await stack.create_project("acme", "boss@acme.example", "acme-owner-pass")
    other_owner = await stack.login("boss@acme.example", "acme-owner-pass", project="acme")
    tokens = {"anonymous": None, "operator": operator, "admin": admin, "owner": owner, "other_owner": other_owner}

    async def target(kind: str) -> str:
        """A fresh victim per check, so one role's success does not change the next role's answer."""
        if kind == "operator":
            return (await stack.add_operator(owner, f"Target {uuid.uuid4().hex[:4]}"))[0]
        if kind == "admin":
            return (await stack.add_operator(owner, f"Target Admin {uuid.uuid4().hex[:4]}", admin=True))[0]
        r = await stack.call("POST", "/api/templates", owner, json={"title": "Delivery", "text": "We deliver daily."})
        return (await r.json())["id"]

    def new_operator(admin_flag=False):
        return lambda: {"json": {"name": "New One", "email": f"n{uuid.uuid4().hex[:8]}@example.com",
                                 "password": "new-operator-pass", "is_admin": admin_flag}}

    nothing = lambda: {}  # noqa: E731
    # (method, path with {operator}/{admin}/{template}/{owner}, body, expected per role in ROLES order)
    matrix = [
        ("GET", "/api/session", nothing, (401, 200, 200, 200, 200)),
        ("GET", "/api/project", nothing, (401, 200, 200, 200, 200)),
        ("POST", "/api/project/chat/enable", nothing, (401, 403, 403, 200, 200)),
        ("PUT", "/api/project/widget", lambda: {"json": {"language": "en", "texts": {"launcher_label": "Ask us"}}},
         (401, 403, 200, 200, 200)),
        ("PUT", "/api/project/sites", lambda: {"json": {"sites": ["https://shop.example"]}}, (401, 403, 200, 200, 200)),
        ("GET", "/api/widget/config?project=demo", nothing, (200, 200, 200, 200, 200)),
        ("GET", "/api/operators", nothing, (401, 200, 200, 200, 200)),
        ("POST", "/api/operators", new_operator(), (401, 403, 201, 201, 201)),
        ("POST", "/api/operators", new_operator(admin_flag=True), (401, 403, 403, 201, 201)),
        ("GET", "/api/operators/{operator}", nothing, (401, 200, 200, 200, 404)),
        ("PATCH", "/api/operators/{operator}", lambda: {"json": {"name": "Renamed"}}, (401, 403, 200, 200, 404)),
        ("PATCH", "/api/operators/{admin}", lambda: {"json": {"name": "Renamed"}}, (401, 403, 403, 200, 404)),
        ("PATCH", "/api/operators/{operator}", lambda: {"json": {"is_admin": True}}, (401, 403, 403, 200, 404)),
        ("PATCH", "/api/operators/{owner}", lambda: {"json": {"is_admin": False}}, (401, 403, 403, 403, 404)),
        ("POST", "/api/operators/{operator}/deactivate", nothing, (401, 403, 204, 204, 404)),
        ("POST", "/api/operators/{admin}/deactivate", nothing, (401, 403, 403, 204, 404)),
        ("POST", "/api/operators/{owner}/deactivate", nothing, (401, 403, 403, 403, 404)),
        ("POST", "/api/operators/{operator}/reactivate", nothing, (401, 403, 204, 204, 404)),
        ("DELETE", "/api/operators/{operator}", nothing, (401, 403, 204, 204, 404)),
        ("DELETE", "/api/operators/{admin}", nothing, (401, 403, 403, 204, 404)),
        ("DELETE", "/api/operators/{owner}", nothing, (401, 403, 403, 403, 404)),
        ("PUT", "/api/operators/{operator}/avatar", lambda: {"data": png(200)}, (401, 403, 200, 200, 404)),
        ("GET", "/api/templates", nothing, (401, 200, 200, 200, 200)),
        ("GET", "/api/templates?q=deliv", nothing, (401, 200, 200, 200, 200)),
        ("POST", "/api/templates", lambda: {"json": {"title": "Hi", "text": "Hello!"}}, (401, 403, 201, 201, 201)),
        ("PATCH", "/api/templates/{template}", lambda: {"json": {"title": "Hi", "text": "Hey"}}, (401, 403, 200, 200, 404)),
        ("DELETE", "/api/templates/{template}", nothing, (401, 403, 204, 204, 404)),
        ("DELETE", "/api/session", nothing, (401, 204, 204, 204, 204)),
    ]
    wrong, leaked = [], []
    demo_markers = [OWNER_EMAIL, owner_id, admin_id, operator_id, "Admin Alice", "Operator Oleg", "Delivery"]
    for method, path, body, expected in matrix:
        for role, status in zip(ROLES, expected):
            url = path.replace("{owner}", owner_id)
            for kind in ("operator", "admin", "template"):
                if "{" + kind + "}" in url:
                    url = url.replace("{" + kind + "}", await target(kind))
            r = await stack.call(method, url, tokens[role], **body())
            text = await r.text()
            if r.status != status:
                wrong.append(f"{method} {path} as {role}: {r.status}, expected {status}: {text[:200]}")
            if role == "other_owner" and "widget/config" not in path:
                leaked += [f"{method} {path} shows {m!r}" for m in demo_markers if m in text]
                if r.status < 300 and text:
                    assert '"demo"' not in text and "demo" not in orjson.loads(text).get("project", "")
    assert wrong == [], "\n".join(wrong)
    assert leaked == []
