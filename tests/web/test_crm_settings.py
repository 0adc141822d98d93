"""The admin's CRM pages in a real Chromium against the real services, crm-bridge
in-process and the CRM stand-in over HTTP (Bitrix24's incoming-webhook contract):
settings saved from the page with the secret never coming back, "Test connection", a
field error, the delivery log with the lead link and the responsible manager, a failed
handoff retried from the log; a non-admin neither sees the pages nor gets their data.
Screenshots go to test-artifacts/screenshots/."""
from __future__ import annotations

import re

from tests.chromium import open_app, screenshot_path
# The bridge, the stack after it, and the stand-in with the bridge on the real adapters.
from tests.crm_bridge.test_handoff import (OWNER_EMAIL, OWNER_PASSWORD, conversation_with_operator, request_lead,
                                          wait_settled)
from tests.crm_bridge.test_standin import SECRET, crm, standin_leads, webhook_url  # noqa: F401

OPERATOR_PASSWORD = "operator-pass-1"   # conversation_with_operator's operator


async def test_crm_settings_test_connection_and_the_delivery_log(crm, crm_stack, browser):  # noqa: F811
    stack, bridge = crm_stack, crm_stack.bridge
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.evaluate("localStorage.setItem('parley.lang', 'en')")

    # ---- settings: Bitrix24 with the stand-in's webhook ----
    await app.get_by_test_id("settings-link").click()
    await app.get_by_test_id("settings-nav-crm").click()
    await app.get_by_test_id("crm-form").wait_for()
    assert await app.get_by_test_id("crm-current").inner_text() == "No CRM connected"
    assert not await app.get_by_test_id("crm-fields-bitrix24").is_visible()   # only the chosen kind's fields
    await app.get_by_test_id("crm-kind").select_option("bitrix24")
    assert await app.get_by_test_id("crm-fields-bitrix24").is_visible()
    assert not await app.get_by_test_id("crm-fields-amocrm").is_visible()
    url_input = app.get_by_test_id("crm-webhook_url")
    assert await url_input.get_attribute("type") == "password"
    await url_input.fill(webhook_url(crm))
    await app.get_by_test_id("crm-default_responsible").fill("3")
    await app.get_by_test_id("crm-source_name").fill("Parley chat")
    await app.get_by_test_id("crm-save").click()
    saved = app.locator("[data-testid=crm-message].ok")
    await saved.wait_for()
    assert await saved.inner_text() == "Saved."
    stored = app.get_by_test_id("crm-webhook_url-stored")
    assert f"127.0.0.1:{crm.port}/rest/1/•••/" in await stored.inner_text()
    assert "leave empty to keep" in await stored.inner_text()
    assert await url_input.input_value() == ""
    assert "Bitrix24" in await app.get_by_test_id("crm-current").inner_text()
    assert SECRET not in await app.content()
    shown = await (await stack.call("GET", "/api/project/crm", owner)).json()
    assert shown["kind"] == "bitrix24" and shown["default_responsible"] == "3" and shown["source_name"] == "Parley chat"

    # ---- Test connection: what the stand-in's portal has ----
    await app.get_by_test_id("crm-test").click()
    result = app.locator("[data-testid=crm-test-result][data-ok]")
    await result.wait_for(timeout=15000)
    assert await result.get_attribute("data-ok") == "true", await result.inner_text()
    assert await result.get_attribute("role") == "status"
    assert re.search(r"\b5 managers\b", await result.inner_text()), await result.inner_text()
    assert "ok" in (await result.get_attribute("class")).split()
    await app.screenshot(path=screenshot_path("app-settings-crm"), full_page=True)

    # ---- a wrong kind of URL: the server's refusal next to the field; what was stored stays ----
    await url_input.fill("ftp://127.0.0.1/rest/1/abcdef/")
    await app.get_by_test_id("crm-save").click()
    field_error = app.locator("[data-testid=crm-webhook_url-error]:not(:empty)")
    await field_error.wait_for()
    assert "http" in await field_error.inner_text()
    assert await url_input.get_attribute("aria-invalid") == "true"
    assert "crm-bitrix24-webhook_url-error" in await url_input.get_attribute("aria-describedby")
    assert await app.locator("[data-testid=crm-message][role=alert]").inner_text() != ""
    assert await app.evaluate("document.activeElement.dataset.testid") == "crm-webhook_url"
    # An unsaved change is not what "Test connection" tests: it says so instead.
    await app.get_by_test_id("crm-test").click()
    await app.locator("[data-testid=crm-test-result][data-ok=false]", has_text="Save the changes first").wait_for()
    assert (await (await stack.call("GET", "/api/project/crm", owner)).json())["webhook_url"] == shown["webhook_url"]
    await app.screenshot(path=screenshot_path("app-settings-crm-field-error"))

    # ---- a lead requested for a conversation: delivered, in the log ----
    cid, operator, operator_email = await conversation_with_operator(stack, owner)
    await request_lead(stack, cid, operator)
    [row] = await wait_settled(bridge, 1)
    assert row["status"] == "delivered", row["last_error"]
    await app.get_by_test_id("crm-deliveries-link").click()
    delivered = app.locator("[data-testid=delivery-row][data-status=delivered]")
    await delivered.wait_for()
    listed = (await (await stack.call("GET", "/api/project/crm/deliveries", owner)).json())["deliveries"][0]
    assert await delivered.get_attribute("data-request-id") == listed["request_id"] == str(row["request_id"])
    lead = delivered.get_by_test_id("delivery-lead")
    assert await lead.get_attribute("href") == listed["lead_url"]
    assert listed["lead_url"].startswith(f"http://127.0.0.1:{crm.port}/")
    assert await lead.get_attribute("target") == "_blank"
    assert "noopener" in (await lead.get_attribute("rel")).split()
    assert await lead.inner_text() == f"#{listed['lead_id']}"
    # Nobody in the CRM has the operator's email: the default responsible entered above, by name.
    assert await delivered.get_by_test_id("delivery-responsible").inner_text() == "Maria Volkova"
    assert await delivered.get_by_test_id("delivery-status").inner_text() == "Delivered"
    assert await delivered.get_by_test_id("delivery-attempts").inner_text() == "1"
    assert await delivered.get_by_test_id("delivery-conversation").get_attribute("href") == f"#/inbox/all/{cid}"
    assert await delivered.get_by_test_id("delivery-retry").count() == 0

    # ---- the CRM refuses the next one for good: failed, then retried from the log ----
    r = await crm.post("/_faults", json={"fail_next": ["invalid_credentials"], "methods": ["crm.lead.add"]})
    assert r.status == 200, await r.text()
    await request_lead(stack, cid, operator)
    rows = await wait_settled(bridge, 2)
    assert sorted(r["status"] for r in rows) == ["delivered", "failed"], [r["last_error"] for r in rows]
    await app.get_by_test_id("deliveries-refresh").click()
    failed = app.locator("[data-testid=delivery-row][data-status=failed]")
    await failed.wait_for()
    error_text = await failed.get_by_test_id("delivery-error").inner_text()
    assert "credentials" in error_text.lower() and "final" in error_text, error_text
    assert await failed.get_by_test_id("delivery-lead").count() == 0
    failed_id = await failed.get_attribute("data-request-id")
    await app.screenshot(path=screenshot_path("app-crm-delivery-log-failed"), full_page=True)
    await failed.get_by_test_id("delivery-retry").click()
    # The page follows the retried delivery until it has an outcome.
    await app.locator("[data-testid=delivery-row][data-status=delivered]").nth(1).wait_for(timeout=20000)
    assert await app.locator("[data-testid=delivery-row][data-status=failed]").count() == 0
    retried = app.locator(f"[data-testid=delivery-row][data-request-id='{failed_id}']")
    assert await retried.get_attribute("data-status") == "delivered"
    assert await retried.get_by_test_id("delivery-attempts").inner_text() == "2"
    assert await retried.get_by_test_id("delivery-lead").count() == 1
    assert await retried.get_by_test_id("delivery-responsible").inner_text() == "Maria Volkova"
    assert len(await standin_leads(crm)) == 2
    await app.screenshot(path=screenshot_path("app-crm-delivery-log"), full_page=True)

    # ---- the log in Russian ----
    await app.get_by_test_id("lang-select").select_option("ru")
    await app.get_by_test_id("delivery-list").wait_for()
    headers = await app.locator("[data-testid=delivery-list] th").all_inner_texts()
    assert "ОТВЕТСТВЕННЫЙ" in [h.upper() for h in headers]
    assert await app.get_by_test_id("delivery-status").first.inner_text() == "Доставлено"
    assert SECRET not in await app.content()
    assert app.dialogs == []

    # ---- a non-admin: no CRM entry, and the API's refusal at the page's URL ----
    page = await open_app(browser, base, operator_email, OPERATOR_PASSWORD)
    assert await page.get_by_test_id("settings-link").count() == 0
    for section in ("crm", "crm_deliveries"):
        await page.goto(f"{base}/app/#/settings/{section}")
        refusal = page.locator(f"[data-testid=settings-{section}] [role=alert]")
        await refusal.wait_for()
        assert "Only an admin" in await refusal.inner_text()
        assert await page.get_by_test_id("settings-nav-crm").count() == 0
        assert await page.get_by_test_id("crm-form").count() == 0
        assert await page.get_by_test_id("delivery-list").count() == 0
    await page.screenshot(path=screenshot_path("app-crm-non-admin"))
