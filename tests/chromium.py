"""A real headless Chromium (Debian's package) driven by Playwright: the `browser`
fixture, where screenshots go, and the steps most journeys share (the operator app
logged in, the demo page with the widget open, a visitor typing in it)."""
from __future__ import annotations

import shutil

import pytest
from playwright.async_api import async_playwright

from parley.config import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
# The build machines have no network: without these, Chromium keeps dialing out.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def browser():
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        await browser.close()


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


async def open_app(browser, base: str, email: str, password: str, size=(1366, 860)):
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    await context.grant_permissions(["notifications"], origin=base)
    page = await context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: page.dialogs.append(d.message))
    await page.goto(f"{base}/app/")
    await page.get_by_test_id("login-project").fill("demo")
    await page.get_by_test_id("login-email").fill(email)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-password").press("Enter")
    await page.get_by_test_id("tab-new").wait_for()
    return page


async def open_demo(browser, base: str):
    page = await (await browser.new_context()).new_page()
    page.dialogs = []
    page.on("dialog", lambda d: page.dialogs.append(d.message))
    await page.goto(f"{base}/demo")
    await page.click("#parley-widget button.la")
    return page


async def visitor_says(page, text: str) -> None:
    await page.fill("#parley-widget textarea", text)
    await page.press("#parley-widget textarea", "Enter")
    await page.locator("#parley-widget .m[data-kind=visitor_message][data-status=sent]",
                       has_text=text[:20]).wait_for(timeout=15000)


async def open_from_inbox(app, text: str):
    """The operator app's inbox, the conversation whose row shows `text` opened."""
    await app.get_by_test_id("inbox-link").click()
    row = app.get_by_test_id("inbox-row").filter(has_text=text)
    await row.wait_for(timeout=15000)
    await row.click()
    return row
