"""Issue 20, item 8 in a real Chromium: the owner finds a visitor by phone in Settings ›
Privacy, exports everything (a JSON download that holds the conversation), erases it
after a confirmation that says how many conversations go, and watches the erasure turn
done; the audit log below names the owner for the erasure and the retention; the inbox
then shows the conversation without the visitor's name or text.
Screenshots: app-privacy-confirm, app-privacy-erased, app-privacy-audit-log."""
from __future__ import annotations

import json

from playwright.async_api import expect

from tests.chromium import open_app, screenshot_path
from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure
from tests.privacy.marked import marked_conversation


async def test_the_owner_exports_and_erases_a_visitor_from_the_privacy_page(crm_stack, browser):
    stack = crm_stack
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, default_responsible="9")
    cid, mark, _ = await marked_conversation(stack, owner)

    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.goto(f"{base}/app/#/settings/privacy")
    await app.get_by_test_id("privacy-kind").select_option("phone")
    await app.get_by_test_id("privacy-value").fill("8 (900) 111-22-33")
    async with app.expect_download() as download:
        await app.get_by_test_id("privacy-export").click()
    exported = json.loads(open(await (await download.value).path()).read())
    assert [c["id"] for c in exported["conversations"]] == [cid]
    assert f"My order {mark} is late" in json.dumps(exported)

    await app.get_by_test_id("privacy-erase").click()
    confirm = app.get_by_test_id("privacy-confirm")
    await expect(confirm).to_contain_text("1 conversation")
    await app.screenshot(path=screenshot_path("app-privacy-confirm"))
    await app.get_by_test_id("privacy-erase-confirm").click()
    status = app.locator("[data-testid=privacy-erasure-status][data-status=done]")
    await status.wait_for(timeout=60000)
    assert "1 conversation" in await status.inner_text()
    await expect(app.get_by_test_id("privacy-crm-leads")).to_contain_text("#100")
    await app.screenshot(path=screenshot_path("app-privacy-erased"))

    # Retention, on the same page.
    await app.get_by_test_id("retention-days").fill("365")
    await app.get_by_test_id("retention-save").click()
    await expect(app.get_by_test_id("retention-message")).to_contain_text("365 day(s)")
    assert await (await stack.call("GET", "/api/project/privacy/retention", owner)).json() == {"erase_after_days": 365}

    # The audit log under it names the owner for the erasure and the retention, newest first.
    log = app.get_by_test_id("audit-log")
    for _ in range(20):
        await app.get_by_test_id("audit-refresh").click()
        if await log.locator("tr[data-action='settings.retention']").count():
            break
        await app.wait_for_timeout(500)
    first = log.locator("tbody tr").first
    await expect(first).to_contain_text("erase closed conversations after 365 day(s)")
    await expect(first).to_contain_text("Owner")
    await expect(log.locator("tr[data-action='privacy.erasure_requested']")).to_contain_text("by Phone (1 conversation(s))")
    assert mark not in await log.inner_text() and "111-22-33" not in await log.inner_text()
    await app.get_by_test_id("audit-log").scroll_into_view_if_needed()
    await app.screenshot(path=screenshot_path("app-privacy-audit-log"))

    await app.goto(f"{base}/app/#/inbox/all")
    row = app.locator(f"[data-testid=inbox-row][data-conversation-id='{cid}']")
    await row.wait_for(timeout=10000)
    assert mark not in await row.inner_text() and "Personal data erased" in await row.inner_text()
    await row.click()
    await app.get_by_test_id("erased-banner").wait_for(timeout=10000)
    assert mark not in await app.get_by_test_id("transcript").inner_text()
    assert await app.get_by_test_id("reply-input").is_hidden()
    await app.screenshot(path=screenshot_path("app-privacy-erased-conversation"))
