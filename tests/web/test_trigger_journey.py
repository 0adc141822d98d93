"""A proactive trigger (issue 24, item 3), in a real Chromium against the real services:
the owner writes a trigger in Settings › Triggers; with nobody online it does not fire;
with the owner online a visitor on a matching page sees the chat open with its message
after the seconds set, once - not again on the next page load that day - and their
answer is a conversation marked with the trigger's name."""
from tests.chromium import open_app, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

WIDGET = "#parley-widget"
TEXT = "Shipping questions? We answer in a minute."


async def visitor_on(browser, url: str):
    page = await (await browser.new_context()).new_page()
    page.dialogs = []
    page.on("dialog", lambda d: page.dialogs.append(d.message))
    await page.goto(url)
    await page.locator(f"{WIDGET} button.la").wait_for()
    return page


async def test_a_trigger_fires_once_and_only_with_someone_online(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    # Nobody online yet: a matching visitor waits past the trigger's seconds and sees nothing.
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    assert (await stack.call("PUT", "/api/presence", owner, json={"status": "away"})).status == 200
    r = await stack.call("PUT", "/api/project/triggers", owner, json={"triggers": [
        {"name": "Shipping", "page": "demo?p=ship*", "seconds": 1, "text": {"en": TEXT, "ru": TEXT}}]})
    assert r.status == 200, await r.text()
    lonely = await visitor_on(browser, f"{base}/demo?p=shipping")
    await lonely.wait_for_timeout(2500)
    assert await lonely.locator(f"{WIDGET} .m[data-kind=trigger]").count() == 0
    assert await lonely.locator(f"{WIDGET} .p").is_hidden()
    await lonely.context.close()

    # The owner opens the app, goes online and edits the trigger there.
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.get_by_test_id("presence-select").select_option("online")

    async def online():
        return (await (await stack.call("GET", "/api/widget/config?project=demo")).json())["online"] is True
    await eventually(online, timeout=15, what="the owner online")
    await app.goto(f"{base}/app/#/settings/triggers")
    trigger = app.get_by_test_id("trigger")
    await trigger.wait_for()
    await trigger.get_by_test_id("trigger-seconds").fill("2")
    await app.get_by_test_id("triggers-save").click()
    await app.get_by_test_id("triggers-message").filter(has_text="Triggers saved").wait_for()
    await app.screenshot(path=screenshot_path("app-triggers"))

    visitor = await visitor_on(browser, f"{base}/demo?p=shipping")
    bubble = visitor.locator(f"{WIDGET} .m[data-kind=trigger]", has_text="Shipping questions?")
    await bubble.wait_for(timeout=15000)
    assert await visitor.locator(f"{WIDGET} .p").is_visible()
    await visitor.screenshot(path=screenshot_path("widget-trigger"))

    # Once a day: the next page load does not show it again.
    await visitor.goto(f"{base}/demo?p=shipping-rates")
    await visitor.locator(f"{WIDGET} button.la").wait_for()
    await visitor.wait_for_timeout(3500)
    assert await visitor.locator(f"{WIDGET} .m[data-kind=trigger]").count() == 0

    # A page that does not match never fires (another browser: not fired there yet).
    other = await visitor_on(browser, f"{base}/demo?p=about")
    await other.wait_for_timeout(3500)
    assert await other.locator(f"{WIDGET} .m[data-kind=trigger]").count() == 0

    # The visitor answers: the conversation carries the trigger's name.
    await visitor.click(f"{WIDGET} button.la")
    await visitor.fill(f"{WIDGET} textarea", "Do you ship to Riga?")
    await visitor.press(f"{WIDGET} textarea", "Enter")
    await visitor.locator(f"{WIDGET} .m[data-kind=visitor_message][data-status=sent]",
                          has_text="ship to Riga").wait_for(timeout=15000)
    await app.goto(f"{base}/app/#/inbox/new")
    await app.get_by_test_id("inbox-row").filter(has_text="ship to Riga").click()
    params = app.get_by_test_id("custom-params")
    await params.filter(has_text="parley_trigger").wait_for(timeout=15000)
    assert "parley_trigger\nShipping" in await params.inner_text()
    assert app.dialogs == [] and visitor.dialogs == [] and other.dialogs == []
