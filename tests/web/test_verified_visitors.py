"""Issue 13, item 5 in a real Chromium: Parley.identify with a valid hash follows the
visitor to another browser, which shows their conversation; a forged hash leaves the
visitor anonymous with a console warning; the operator sees "Verified" and the name and
email the site gave."""
from gateway import verified_visitors
from tests.chromium import open_app, screenshot_path, visitor_says
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

WIDGET = "#parley-widget"


async def _device(browser, base: str, identity: dict):
    """A fresh browser context (another device) on the demo page, identified before the widget opens."""
    page = await (await browser.new_context()).new_page()
    page.warnings = []
    page.on("console", lambda m: page.warnings.append(m.text) if m.type == "warning" else None)
    await page.goto(f"{base}/demo")
    await page.wait_for_function("() => window.Parley && window.Parley.identify")
    await page.evaluate("identity => Parley.identify(identity)", identity)
    await page.click(f"{WIDGET} button.la")
    return page


async def test_a_verified_visitor_is_the_same_in_another_browser_and_a_forged_one_is_not(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    secret = (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"]
    alice = {"id": "alice-7", "name": "Alice", "email": "alice@example.com",
             "hash": verified_visitors.expected_hash(secret, "alice-7")}

    laptop = await _device(browser, base, alice)
    await visitor_says(laptop, "Where is my order #77?")
    phone = await _device(browser, base, alice)
    await phone.locator(f"{WIDGET} .me", has_text="Where is my order #77?").wait_for(timeout=15000)

    forged = await _device(browser, base, {**alice, "hash": "0" * 64})
    await visitor_says(forged, "Show me Alice's orders")
    assert await forged.locator(f"{WIDGET} .me", has_text="order #77").count() == 0
    assert any("identify: not verified (hash_invalid)" in w for w in forged.warnings), forged.warnings
    assert not any("identify" in w for w in laptop.warnings + phone.warnings)

    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.locator("[data-testid=inbox-row]", has_text="Where is my order #77?").click()
    await app.get_by_test_id("verified-badge").wait_for(timeout=15000)
    # ...and who they are: the name and email the site gave identify (issue 19), in the
    # title, the side panel and the inbox; the forged claim left no identity anywhere.
    await app.get_by_test_id("verified-identity").filter(has_text="Alice, alice@example.com").wait_for(timeout=5000)
    assert (await app.locator("#conv-title").inner_text()).startswith("Alice")
    await app.get_by_test_id("inbox-row").filter(has_text="Where is my order #77?").filter(has_text="Alice").wait_for()
    await app.screenshot(path=screenshot_path("app-verified-identity"))
    await app.locator("[data-testid=inbox-row]", has_text="Show me Alice's orders").click()
    await app.locator("[data-testid=message]", has_text="Show me Alice's orders").wait_for(timeout=15000)
    assert await app.get_by_test_id("verified-badge").count() == 0
    assert await app.get_by_test_id("verified-identity").count() == 0
    assert "Alice" not in await app.locator("#conv-title").inner_text()


async def test_after_the_site_user_logs_out_the_next_person_is_not_them(stack, browser):
    """Issue 23, finding 1: a stored verified token was reused when the page no longer
    called Parley.identify, and the widget had no reset. Both ways out, in Chromium: the
    page stops vouching (the next load is anonymous) and Parley.reset() at once."""
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    secret = (await (await stack.call("GET", "/api/project/identity-secret", owner)).json())["secret"]
    dave = {"id": "dave-1", "name": "Dave", "hash": verified_visitors.expected_hash(secret, "dave-1")}
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{base}/demo")
    await page.wait_for_function("() => window.Parley && window.Parley.identify")
    await page.evaluate("identity => Parley.identify(identity)", dave)
    await page.click(f"{WIDGET} button.la")
    await visitor_says(page, "Dave's private question")

    # Dave logs out of the site; the next page load of this browser does not call identify.
    await page.reload()
    await page.wait_for_function("() => window.Parley && window.Parley.identify")
    await page.click(f"{WIDGET} button.la")
    await visitor_says(page, "Someone else now")
    assert await page.locator(f"{WIDGET} .me", has_text="Dave's private question").count() == 0
    await page.screenshot(path=screenshot_path("widget-after-logout"))

    # Dave logs in again on the same page, then the site calls Parley.reset() at logout.
    await page.evaluate("identity => Parley.identify(identity)", dave)
    await page.locator(f"{WIDGET} .me", has_text="Dave's private question").wait_for(timeout=15000)
    assert await page.locator(f"{WIDGET} .me", has_text="Someone else now").count() == 0
    await page.evaluate("() => Parley.reset()")
    await page.locator(f"{WIDGET} .me", has_text="Dave's private question").wait_for(state="detached", timeout=15000)
    await visitor_says(page, "A third person")
    assert await page.locator(f"{WIDGET} .me", has_text="Dave's private question").count() == 0
    assert await page.locator(f"{WIDGET} .me", has_text="Someone else now").count() == 0
    await context.close()
