"""The first-run page: only with the setup token, only while there is no project, one
project ever (across two gateways and a race), bad input refused with a code, and the
owner lands logged in with a project whose widget takes a visitor's message."""
from __future__ import annotations

import asyncio
import logging

from parley.contract import SESSION_COOKIE

from gateway.setup_routes import setup_token
from tests.visitor import ScriptedVisitor
from tests.setup.conftest import setup_form


async def error_code(response) -> str:
    return (await response.json())["error"]["code"]


async def logged_setup_urls(caplog, gateways: int) -> list[str]:
    """The setup URLs the gateways logged at start-up (they log once the registry answers)."""
    for _ in range(200):
        urls = [r.setup_url for r in caplog.get_records("setup") + caplog.records if hasattr(r, "setup_url")]
        if len(urls) >= gateways:
            return urls
        await asyncio.sleep(0.05)
    raise AssertionError("the gateways did not log a setup URL")


async def test_setup_page_needs_the_token_and_is_gone_on_every_gateway_once_a_project_exists(fresh, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.setup_routes")
    token = setup_token()
    urls = await logged_setup_urls(caplog, gateways=2)
    assert all(u.startswith("http://localhost:") and u.endswith(f"/setup?token={token}") for u in urls), urls

    gateway, other = fresh.gateways
    for query in ("", "?token=", "?token=" + "0" * 32, "?token=" + token[:-1], "?token=" + token + "x"):
        r = await gateway.get("/setup" + query)
        assert (r.status, await error_code(r)) == (403, "setup_token_invalid"), query
    r = await gateway.get(f"/setup?token={token}")
    assert r.status == 200 and "Set up your chat" in await r.text()
    assert r.headers["Referrer-Policy"] == "no-referrer" and "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert (await other.get(f"/setup?token={token}")).status == 200
    r = await gateway.post("/setup", json=setup_form(token="wrong"))
    assert (r.status, await error_code(r)) == (403, "setup_token_invalid")
    assert await fresh.project_ids() == []

    r = await gateway.post("/setup", json=setup_form())
    assert r.status == 201, await r.text()
    assert r.cookies[SESSION_COOKIE]["httponly"]
    me = await (await gateway.get("/api/session")).json()   # the cookie the answer set
    assert (me["project"], me["email"], me["is_owner"], me["is_admin"]) == ("acme", "alice@acme.example", True, True)
    project = await (await gateway.get("/api/project")).json()
    assert project["name"] == "ACME Shop" and project["chat_enabled"] is True
    assert (await gateway.get("/app")).status == 200

    # The new project's widget works: a visitor writes and the message is stored.
    config = await (await other.get("/api/widget/config", params={"project": "acme"})).json()
    assert config["enabled"] is True and config["language"] == "en"
    visitor = ScriptedVisitor(other, project="acme")
    await visitor.start()
    await visitor.send_and_wait("Hello ACME")
    for _ in range(100):  # the inbox is a projection: it follows the stored message shortly
        inbox = (await (await gateway.get("/api/inbox", params={"view": "new"})).json())["conversations"]
        if inbox:
            break
        await asyncio.sleep(0.05)
    transcript = await gateway.get(f"/api/conversations/{inbox[0]['id']}")
    assert transcript.status == 200 and "Hello ACME" in await transcript.text()
    await visitor.drop()

    # Set up now: gone on both gateways, for GET and POST, token or not.
    for client in fresh.gateways:
        for r in (await client.get(f"/setup?token={token}"), await client.get("/setup"),
                  await client.post("/setup", json=setup_form(project_id="second")),
                  await client.post("/setup", data=b"not json")):
            assert (r.status, await error_code(r)) == (404, "setup_closed")
    assert await fresh.project_ids() == ["acme"]


async def test_concurrent_setups_through_two_gateways_make_exactly_one_project(fresh):
    forms = [setup_form(project_id=f"race-{n}", owner_email=f"owner{n}@race.example") for n in range(4)]
    answers = await asyncio.gather(*(fresh.gateways[n % 2].post("/setup", json=form) for n, form in enumerate(forms)))
    # One wins. A loser is refused as the race it lost (409), or - when the winner's
    # project reached its gateway first, as on a loaded machine - as a finished setup (404).
    assert sorted(r.status for r in answers)[0] == 201, [(r.status, await r.text()) for r in answers]
    refusals = {(r.status, await error_code(r)) for r in answers if r.status != 201}
    assert len([r for r in answers if r.status == 201]) == 1 and refusals <= {
        (409, "setup_already_done"), (404, "setup_closed")}, refusals
    winner = forms[[r.status for r in answers].index(201)]["project_id"]
    assert await fresh.project_ids() == [winner]


async def test_hostile_input_gets_a_4xx_with_a_code_and_creates_nothing(fresh):
    gateway = fresh.gateway
    cases = [
        (dict(data=b"{}", headers={"Content-Type": "text/plain"}), 415, "json_required"),
        (dict(data=b"{not json", headers={"Content-Type": "application/json"}), 400, "invalid_json"),
        (dict(json=["a", "list"]), 400, "invalid_json"),
        (dict(json=setup_form(token=["a"])), 403, "setup_token_invalid"),
        (dict(json=setup_form(token=...)), 403, "setup_token_invalid"),
        (dict(json=setup_form(project_name="x" * 70_000)), 413, "body_too_large"),
        (dict(json=setup_form(project_name="Acme\x00")), 422, "nul_character"),
        (dict(json=setup_form(project_id=...)), 422, "project_id_invalid"),
        (dict(json=setup_form(project_id=42)), 422, "project_id_invalid"),
        (dict(json=setup_form(project_id="has space")), 422, "project_id_invalid"),
        (dict(json=setup_form(project_id="../x")), 422, "project_id_invalid"),
        (dict(json=setup_form(project_id="a" * 101)), 422, "project_id_invalid"),
        (dict(json=setup_form(project_name={"a": 1})), 422, "project_name_invalid"),
        (dict(json=setup_form(project_name=" \t\n")), 422, "project_name_invalid"),
        (dict(json=setup_form(project_name="n" * 5000)), 422, "project_name_invalid"),
        (dict(json=setup_form(owner_name=None)), 422, "owner_name_invalid"),
        (dict(json=setup_form(owner_email="not-an-email")), 422, "owner_email_invalid"),
        (dict(json=setup_form(owner_email=True)), 422, "owner_email_invalid"),
        (dict(json=setup_form(owner_email="a@b.c\r\nBcc: x@y.z")), 422, "owner_email_invalid"),
        (dict(json=setup_form(password="short")), 422, "password_invalid"),
        (dict(json=setup_form(password=1234567890123)), 422, "password_invalid"),
        (dict(json=setup_form(password="p" * 5000)), 422, "password_invalid"),
        (dict(json=setup_form(language="fr")), 422, "language_invalid"),
        (dict(json=setup_form(language=["en"])), 422, "language_invalid"),
    ]
    for kwargs, status, code in cases:
        r = await gateway.post("/setup", **kwargs)
        body = await r.json()
        assert (r.status, body["error"]["code"]) == (status, code), (kwargs, body)
        assert body["error"]["message"]
    assert await fresh.project_ids() == []
    assert (await gateway.get(f"/setup?token={setup_token()}")).status == 200   # still open
