"""Every bad input gets a final answer: bad values of every type in every field of every
registry route, odd bodies, odd path ids and odd query values, sent signed (as the
gateway would) with a valid owner session. The answer is never a 5xx, and every
refusal is a JSON error with a code."""
import re
import uuid

import pytest

from operator_registry.routes import ROUTES
from tests.registry.direct import Registry
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

A_UUID = "6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a"

# Values of every JSON type, and strings that broke things: control characters, a
# direction override, a line separator, overlong text, ids in other spellings.
BAD_VALUES = [5, -1, 1.5, True, False, None, [], ["x", 5], {}, {"a": {"b": []}}, "", " ",
              "\x01\x02\x1f\x7f", "a\u202eb\u2028c", "x" * 20000, f"urn:uuid:{A_UUID}", "' or 1=1 --"]

# Bodies read_json must refuse, or the route must survive: not JSON, not an object,
# a NUL, a lone surrogate, deep nesting.
BAD_BODIES = [b"{", b"[1, 2]", b'"text"', b"null", b"5", b'{"a": "\\u0000"}', b'{"name": "\\ud800"}',
              b"\x00\x01", b"\xff\xfe", b"{\"name\": 1000000000000000000000000000000}", b"{\"a\": 1e400}", b'{"a":' * 2000 + b"1" + b"}" * 2000]

# The JSON fields each route reads, with a valid value for each (the others stay valid
# while one is broken).
FIELDS = {
    ("POST", "/api/session"): {"project": "demo", "email": OWNER_EMAIL, "password": "not-the-password"},
    ("PUT", "/api/project/widget"): {"language": "en", "texts": {"launcher_label": "Ask us"}},
    ("PUT", "/api/project/sites"): {"sites": ["https://shop.example"]},
    ("PUT", "/api/project/triggers"): {"triggers": [{"name": "Pricing", "page": "/pricing", "seconds": 20,
                                                     "min_pages": 1, "param": None, "text": {"en": "Questions?"}}]},
    ("POST", "/api/operators"): {"name": "New One", "email": "{email}", "password": "new-operator-pass",
                                 "is_admin": False},
    ("PATCH", "/api/operators/{id}"): {"name": "Renamed", "email": "{email}", "is_admin": False,
                                       "password": "reset-password-1", "current_password": "whatever-pass"},
    ("POST", "/api/templates"): {"title": "Hi", "text": "Hello!"},
    ("PATCH", "/api/templates/{id}"): {"title": "Hi", "text": "Hello again!"},
    ("POST", "/internal/sessions/verify"): {"token": "{token}"},
    ("PUT", "/internal/operators/{id}/avatar"): {"avatar_id": "0123456789abcdef0123456789abcdef"},
}
NESTED = {("PUT", "/api/project/widget"): "texts", ("PUT", "/api/project/sites"): "sites",
          ("PUT", "/api/project/triggers"): "triggers"}

# Path ids: another spelling of a real id, not an id at all, or trying to climb out.
def bad_ids(real: str) -> list[str]:
    return [f"urn:uuid:{real}", "{" + real + "}", real.replace("-", ""), real.upper() + "0", A_UUID, "x",
            "\x00", "\x01", "é", "%00", "..%2F..%2Finternal", "../internal/sessions/verify", "a" * 3000,
            real + "?x=1", real + "\n", real + "\r\nX-Evil: 1"]

BAD_QUERIES = {
    "/api/widget/config": ("project", ["\x00", "", "a" * 5000, "demo\n", "demo\x00", f"urn:uuid:{A_UUID}",
                                       "-demo", "../demo", "дemo", "demo' or '1'='1"]),
    "/api/templates": ("q", ["\x00", "x" * 5000, ("word " * 1000), "a²b ǅ ١٢٣", "'\":*&|!()<->", "ǅ" * 1000,
                             "%", "\\", "::*:*", "\u202e\u2028"]),
}


PARAMETER = re.compile(r"\{[a-z_]+\}")


def expect_final(answer, what: str, failures: list[str]) -> None:
    if answer.status >= 500:
        failures.append(f"{what}: {answer.status} {answer.raw[:200]!r}")
    elif answer.status >= 400:
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        if not (isinstance(error, dict) and isinstance(error.get("code"), str) and error["code"]):
            failures.append(f"{what}: {answer.status} without a JSON error code: {answer.raw[:200]!r}")


def test_every_route_is_covered():
    with_body = {(m, p) for m, p, _ in ROUTES if m in ("POST", "PUT", "PATCH")}
    bodiless = {("POST", "/api/project/chat/enable"), ("POST", "/api/project/chat/disable"),
                ("POST", "/api/operators/{id}/deactivate"), ("POST", "/api/operators/{id}/reactivate")}
    assert with_body - bodiless == set(FIELDS), "a new route reads JSON: list its fields in FIELDS"


@pytest.mark.parametrize("method, route", [(m, p) for m, p, _ in ROUTES], ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_no_bad_input_gets_a_5xx(stack, method, route):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    target, target_token, _ = await registry.add_operator(owner, "Target Tom")
    r = await registry.call("POST", "api", "templates", token=owner, json={"title": "Delivery", "text": "Daily."})
    template = r.body["id"]
    session_id = (await registry.me(owner))["session_id"]
    real_id = {"/api/templates/": template, "/internal/sessions/": session_id}.get(
        next((p for p in ("/api/templates/", "/internal/sessions/") if route.startswith(p)), ""), target)

    def segments(path_id: str) -> list[str]:
        return [PARAMETER.sub(path_id, s) for s in route.strip("/").split("/")]

    def valid_body() -> dict:
        values = {"email": f"fresh.{uuid.uuid4().hex[:8]}@example.com", "token": target_token}
        return {k: values[v[1:-1]] if isinstance(v, str) and v[1:-1] in values else v
                for k, v in FIELDS.get((method, route), {}).items()}

    failures: list[str] = []

    async def send(what: str, path_id: str = real_id, **kwargs) -> None:
        kwargs.setdefault("token", owner)
        expect_final(await registry.call(method, *segments(path_id), **kwargs), what, failures)

    # every field of the route's body, broken one at a time
    for field in FIELDS.get((method, route), {}):
        for value in BAD_VALUES:
            body = valid_body() | {field: value}
            await send(f"{field}={value!r:.40}", json=body)
    # inside the nested fields: the widget's texts and the list of sites
    if (method, route) in NESTED:
        field = NESTED[(method, route)]
        for value in BAD_VALUES:
            inner = {"launcher_label": value, str(value)[:50]: "x"} if field == "texts" else [value, "https://ok.example"]
            await send(f"{field} holding {value!r:.40}", json=valid_body() | {field: inner})
    # bodies that are not what any route reads
    for raw in BAD_BODIES:
        await send(f"body {raw[:30]!r}", body=raw)
    await send("JSON sent as text/plain", body=b'{"title": "x"}', content_type="text/plain")
    # ids in the path
    if PARAMETER.search(route):
        for path_id in bad_ids(real_id):
            await send(f"id {path_id[:40]!r}", path_id=path_id, json=valid_body())
    # query values
    if route in BAD_QUERIES and method == "GET":
        name, values = BAD_QUERIES[route]
        for value in values:
            await send(f"?{name}={value[:40]!r}", params={name: value})
    # credentials that are not a session, and an odd idempotency key
    for auth in (f"Bearer urn:uuid:{A_UUID}.secret", "Bearer " + "x" * 4000, "Bearer {" + A_UUID + "}.s",
                 "Basic b3duZXI6cGFzcw==", "Bearer "):
        await send(f"Authorization {auth[:30]!r}", token=None, headers={"Authorization": auth}, json=valid_body())
    await send("Cookie with odd token", token=None, headers={"Cookie": "parley_session=%00; parley_session=x"},
               json=valid_body())
    await send("Idempotency-Key", headers={"Idempotency-Key": "é" * 50 + "'\";--"}, json=valid_body())
    assert failures == [], "\n".join(failures)
