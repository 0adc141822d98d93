"""Project settings through the gateway: enabling, widget language and texts, sites,
operator edits with clear errors, idempotent retries, and the OpenAPI document."""
import uuid

import yaml

from parley.config import REPO_ROOT

from operator_registry.routes import ROUTES
from operator_registry.widget_texts import DEFAULT_TEXTS
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def widget_config(stack, project="demo"):
    r = await stack.call("GET", f"/api/widget/config?project={project}")
    return r.status, await r.json()


async def test_disabling_the_chat_stops_the_widget_and_loses_nothing(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await stack.add_operator(owner, "Keeper")
    await stack.call("POST", "/api/templates", owner, json={"title": "Kept", "text": "Still here"})
    assert (await widget_config(stack))[1]["enabled"] is True

    assert (await stack.call("POST", "/api/project/chat/disable", owner)).status == 200
    status, config = await widget_config(stack)
    assert status == 200 and config["enabled"] is False
    operators = (await (await stack.call("GET", "/api/operators", owner)).json())["operators"]
    assert {o["name"] for o in operators} >= {"Keeper", "Owner"}
    assert [t["title"] for t in (await (await stack.call("GET", "/api/templates", owner)).json())["templates"]] == ["Kept"]

    assert (await stack.call("POST", "/api/project/chat/enable", owner)).status == 200
    assert (await widget_config(stack))[1]["enabled"] is True


async def test_enabling_makes_the_owner_an_admin_operator_with_their_own_credentials(stack):
    await stack.create_project("fresh", "founder@fresh.example", "founder-pass-1")
    token = await stack.login("founder@fresh.example", "founder-pass-1", project="fresh")
    operators = (await (await stack.call("GET", "/api/operators", token)).json())["operators"]
    assert [(o["email"], o["is_admin"], o["is_owner"]) for o in operators] == [("founder@fresh.example", True, True)]


async def test_widget_language_and_texts(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("PUT", "/api/project/widget", owner,
                         json={"language": "ru", "texts": {"launcher_label": "  Спросите нас  "}})
    assert r.status == 200
    _, config = await widget_config(stack)
    assert config["language"] == "ru"
    assert config["texts"]["launcher_label"] == "Спросите нас"
    assert config["texts"]["send_label"] == DEFAULT_TEXTS["ru"]["send_label"]  # the rest: complete defaults
    assert set(config["texts"]) == set(DEFAULT_TEXTS["ru"])

    r = await stack.call("PUT", "/api/project/widget", owner,
                         json={"language": "ru", "texts": {"window_title": "x" * 81, "nonsense": "y"}})
    error = (await r.json())["error"]
    assert r.status == 422 and error["code"] == "texts_invalid"
    assert "window_title" in error["message"] and "nonsense" in error["message"]
    r = await stack.call("PUT", "/api/project/widget", owner, json={"language": "de", "texts": {}})
    assert r.status == 422 and (await r.json())["error"]["code"] == "language_invalid"
    assert (await widget_config(stack))[1]["texts"]["launcher_label"] == "Спросите нас"  # nothing lost


async def test_sites_are_origins(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("PUT", "/api/project/sites", owner,
                         json={"sites": ["https://Shop.Example/", "http://localhost:3000", "https://shop.example"]})
    assert r.status == 200 and (await r.json())["sites"] == ["https://shop.example", "http://localhost:3000"]
    r = await stack.call("PUT", "/api/project/sites", owner, json={"sites": ["https://shop.example/path"]})
    assert r.status == 422 and (await r.json())["error"]["code"] == "site_invalid"
    r = await stack.call("PUT", "/api/project/sites", owner, json={"sites": "https://one.example"})
    assert r.status == 422


async def test_operator_input_errors_are_clear(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await stack.add_operator(owner, "First")
    cases = [
        ({"name": "Dup", "email": email.upper(), "password": "long-enough-1"}, 409, "email_taken"),
        ({"name": "", "email": "a@example.com", "password": "long-enough-1"}, 422, "name_required"),
        ({"name": "A", "email": "not-an-email", "password": "long-enough-1"}, 422, "email_invalid"),
        ({"name": "A", "email": "a@example.com", "password": "short"}, 422, "password_too_short"),
        ({"name": "x" * 81, "email": "a@example.com", "password": "long-enough-1"}, 422, "name_too_long"),
    ]
    for body, status, code in cases:
        r = await stack.call("POST", "/api/operators", owner, json=body)
        assert (r.status, (await r.json())["error"]["code"]) == (status, code), body
    r = await stack.call("POST", "/api/operators", owner, data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"


async def test_a_retried_command_with_the_same_idempotency_key_adds_one_operator(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    key = str(uuid.uuid4())
    body = {"name": "Once", "email": "once@example.com", "password": "once-pass-123"}
    first = await stack.call("POST", "/api/operators", owner, json=body, headers={"Idempotency-Key": key})
    again = await stack.call("POST", "/api/operators", owner, json=body, headers={"Idempotency-Key": key})
    assert (first.status, again.status) == (201, 201)
    assert (await first.json())["id"] == (await again.json())["id"]
    operators = (await (await stack.call("GET", "/api/operators", owner)).json())["operators"]
    assert [o["name"] for o in operators].count("Once") == 1


def test_openapi_documents_every_public_route(platform):
    from parley.service import create_app
    import gateway.__main__ as gateway_main
    from gateway.conversations import ACTIONS
    from tests.stack import settings
    spec = yaml.safe_load((REPO_ROOT / "services/gateway/gateway/openapi.yaml").read_text())
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m != "parameters"}
    # the registry's public routes, forwarded by the gateway, and the gateway's own
    public = {(m, p) for m, p, _ in ROUTES if p.startswith("/api/")}
    app = create_app(gateway_main.SPEC, settings(platform, "gateway"))
    for route in app.router.routes():
        path = route.resource.canonical
        if route.method in ("HEAD", "*") or path in ("/healthz", "/readyz", "/metrics", "/api/openapi.json"):
            continue
        if path == "/app" or path.startswith("/app/"):
            continue  # the operator app's pages and assets, not API
        public.add((route.method, path.replace("{action:" + "|".join(ACTIONS) + "}", "{action}")))
    actions = {("POST", f"/api/conversations/{{id}}/{a}") for a in ACTIONS}
    public = (public - {("POST", "/api/conversations/{id}/{action}")}) | actions
    assert public == documented


async def test_the_gateway_serves_its_openapi_document(stack):
    r = await stack.call("GET", "/api/openapi.json")
    assert r.status == 200 and (await r.json())["openapi"].startswith("3.")


async def test_the_widgets_standard_texts_are_public_for_the_settings_editor(stack):
    from operator_registry.widget_texts import MULTILINE_KEYS, TEXT_LIMITS
    r = await stack.call("GET", "/api/widget/texts")
    body = await r.json()
    assert r.status == 200 and body["defaults"] == DEFAULT_TEXTS and body["limits"] == TEXT_LIMITS
    assert set(body["multiline"]) == MULTILINE_KEYS and body["languages"] == ["ru", "en"]
