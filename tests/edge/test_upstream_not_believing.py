"""An upstream that does not believe the gateway's signature - another installation's
crm-bridge on the address, or a different PARLEY_INTERNAL_SECRET - is a configuration
fault between two services, never the operator's session ending.

The gateway answers 503 `upstream_refused` with a message naming the service and what to
check, instead of passing the upstream's 401 on; the operator stays signed in, and the
app in Chromium shows the error on the CRM settings page without going back to its
login form (a relayed 401 sent it there again and again, re-rendering the view)."""
from __future__ import annotations

import dataclasses
import os
import uuid

from aiohttp.test_utils import TestClient, TestServer

from parley.service import create_app

import crm_bridge.__main__ as crm_main
from tests.chromium import open_app
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, by_host_name, GATEWAY, serve, settings, spec_for


async def test_an_upstream_refusing_our_signature_is_a_503_not_a_logout(stack, platform, monkeypatch,
                                                                       browser):
    # crm-bridge of "another installation": its own internal secret, read when its app is made.
    ours = os.environ["PARLEY_INTERNAL_SECRET"]
    os.environ["PARLEY_INTERNAL_SECRET"] = "another-installation-" + "z" * 32
    try:
        foreign = TestClient(TestServer(create_app(
            dataclasses.replace(crm_main.SPEC, schema=f"crm_{uuid.uuid4().hex[:8]}", consumers=[]),
            settings(platform, "crm-bridge"))))
    finally:
        os.environ["PARLEY_INTERNAL_SECRET"] = ours
    await foreign.start_server()
    monkeypatch.setenv("PARLEY_CRM_BRIDGE_URL", by_host_name(foreign))
    gateway = await serve(create_app(await spec_for(platform, GATEWAY, f"gw_{uuid.uuid4().hex[:8]}"),
                                     settings(platform, GATEWAY)))
    try:
        owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
        auth = {"Authorization": f"Bearer {owner}"}
        r = await gateway.get("/api/project/crm", headers=auth)
        assert r.status == 503, await r.text()
        error = (await r.json())["error"]
        assert error["code"] == "upstream_refused" and "PARLEY_INTERNAL_SECRET" in error["message"]
        assert (await gateway.get("/api/session", headers=auth)).status == 200     # still signed in

        base = str(gateway.make_url("")).rstrip("/")
        app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
        await app.goto(f"{base}/app/#/settings/crm")
        await app.get_by_text("PARLEY_INTERNAL_SECRET", exact=False).first.wait_for(timeout=10000)
        await app.wait_for_timeout(1500)
        assert await app.get_by_test_id("login-email").count() == 0          # no login form: not signed out
        assert await app.get_by_role("button", name="Log out").is_visible()
    finally:
        await gateway.close()
        await foreign.close()
