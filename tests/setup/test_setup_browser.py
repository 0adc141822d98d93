"""The first-run page in a real Chromium: a wrong field is shown beside it, then the
owner creates the project and lands logged in on the app's snippet, ready to copy."""
from __future__ import annotations

from gateway.setup_routes import setup_token
from tests.chromium import screenshot_path


async def test_setup_page_to_the_snippet(fresh, browser):
    base = str(fresh.gateway.make_url("")).rstrip("/")
    page = await browser.new_page()
    await page.goto(f"{base}/setup?token={setup_token()}")
    await page.get_by_test_id("setup-project-name").fill("Café Olé")
    assert await page.get_by_test_id("setup-project-id").input_value() == "cafe-ole"   # suggested from the name
    await page.get_by_test_id("setup-owner-name").fill("Olga Owner")
    await page.get_by_test_id("setup-owner-email").fill("olga@cafe.example")
    await page.get_by_test_id("setup-password").fill("short")
    await page.get_by_test_id("setup-password2").fill("short")
    await page.get_by_test_id("setup-submit").click()
    error = page.get_by_test_id("setup-password-error")
    await error.wait_for()
    assert "at least 10" in await error.inner_text()
    await page.screenshot(path=screenshot_path("setup-field-error"), full_page=True)
    assert await fresh.project_ids() == []

    await page.get_by_test_id("setup-password").fill("cafe-owner-password")
    await page.get_by_test_id("setup-password2").fill("cafe-owner-password")
    await page.get_by_test_id("setup-submit").click()
    snippet = page.get_by_test_id("snippet")
    await snippet.wait_for(timeout=15000)
    assert page.url.endswith("/app#/settings/chat")
    assert await snippet.input_value() == f'<script async src="{base}/widget.js" data-project="cafe-ole"></script>'
    assert await page.get_by_test_id("copy-snippet").is_visible()
    await page.screenshot(path=screenshot_path("setup-snippet"))
    assert await fresh.project_ids() == ["cafe-ole"]
