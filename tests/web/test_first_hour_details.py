"""The smaller things a new team noticed in its first hour (issue 19, item 8), walked in a
real Chromium as they met them: the console before the first login, the Add operator
form in both languages, the Assignment and Verified visitors pages, a file-only message
in the inbox, and a refused upload followed by a good one. Screenshots:
app-settings-assignment, app-settings-identity, app-inbox-file."""
from __future__ import annotations

from playwright.async_api import expect

from tests.chromium import open_app, open_demo, screenshot_path, visitor_says
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


async def test_a_newcomers_first_hour_in_the_app(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 860})
    app = await context.new_page()
    console: list[str] = []
    app.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)

    # The first visit asks the server nothing it can only refuse: no red 401 in the console.
    await app.goto(f"{base}/app/")
    await app.get_by_test_id("login-project").wait_for()
    assert console == [], console
    await app.get_by_test_id("login-project").fill("demo")
    await app.get_by_test_id("login-email").fill(OWNER_EMAIL)
    await app.get_by_test_id("login-password").fill(OWNER_PASSWORD)
    await app.get_by_test_id("login-password").press("Enter")
    await app.get_by_test_id("tab-new").wait_for()
    await app.reload()                                   # signed in: the session is asked for and kept
    await app.get_by_test_id("tab-new").wait_for()

    # Add operator: no stray "null" where a field is left out, in English and in Russian.
    for language in ("en", "ru"):
        await app.get_by_test_id("lang-select").select_option(language)
        await app.goto(f"{base}/app/#/settings/operators")
        form = app.locator("form", has=app.get_by_test_id("operator-add-admin"))
        await form.wait_for(timeout=10000)
        assert "null" not in await form.inner_text(), language
    await app.get_by_test_id("lang-select").select_option("en")

    # Assignment: styled controls (the number fields look like the others, not the browser's).
    await app.goto(f"{base}/app/#/settings/assignment")
    seconds = app.get_by_test_id("offer-seconds")
    await seconds.wait_for()
    radius = await seconds.evaluate("e => getComputedStyle(e).borderRadius")
    assert radius == "8px", radius
    await app.screenshot(path=screenshot_path("app-settings-assignment"))

    # Verified visitors: the example code stays inside its box.
    await app.goto(f"{base}/app/#/settings/identity")
    example = app.get_by_test_id("identity-example")
    await example.wait_for()
    assert await example.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && "
                                  "e.getBoundingClientRect().right <= document.documentElement.clientWidth")
    await app.screenshot(path=screenshot_path("app-settings-identity"))

    # A visitor sends only a file: the inbox shows the app's clip icon, not an emoji box.
    visitor = await open_demo(browser, base)
    await visitor.set_input_files("#parley-widget input[type=file]",
                                  files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": PNG}])
    await visitor.locator("#parley-widget .m[data-kind=visitor_message][data-status=sent]").wait_for(timeout=15000)
    await app.goto(f"{base}/app/#/inbox/new")
    row = app.get_by_test_id("inbox-row").filter(has_text="receipt.png")
    await row.wait_for(timeout=15000)
    assert await row.locator(".row-preview svg.icon").count() == 1
    assert "📎" not in await row.inner_text()
    await app.screenshot(path=screenshot_path("app-inbox-file"))

    # A refused upload's error goes once a good file is attached.
    await row.click()
    await app.get_by_test_id("take-button").click()
    attach = app.get_by_test_id("attach-input")
    await attach.set_input_files(files=[{"name": "tool.exe", "mimeType": "application/octet-stream",
                                         "buffer": b"MZ\x90\x00" + b"\x00" * 64}])
    error = app.locator(".composer-error")
    await app.locator(".composer-error:not(:empty)").wait_for(timeout=10000)
    await attach.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": PNG}])
    await app.get_by_test_id("attachment-ready").wait_for(timeout=10000)
    assert await error.inner_text() == ""
    assert [c for c in console if "401" in c] == [], console


async def test_an_operator_finds_their_closed_chats_under_closed(stack, browser):
    """Issue 19, item 7: a closed chat left "Mine" and a plain operator had no way back to it."""
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, olga, email = await stack.add_operator(owner, "Olga Closer")
    _, petr, _ = await stack.add_operator(owner, "Petr Other")
    app = await open_app(browser, base, email, "operator-pass-1")
    visitor = await open_demo(browser, base)
    await visitor_says(visitor, "Can I return the laptop?")
    row = app.get_by_test_id("inbox-row").filter(has_text="return the laptop")
    await row.click()
    await app.get_by_test_id("take-button").click()
    await app.get_by_test_id("status-select").select_option("closed")
    await app.get_by_test_id("tab-mine").click()
    await expect(app.get_by_test_id("inbox-row").filter(has_text="return the laptop")).to_have_count(0)
    await app.get_by_test_id("tab-closed").click()
    closed = app.get_by_test_id("inbox-row").filter(has_text="return the laptop")
    await closed.click()
    await app.get_by_test_id("message").filter(has_text="Can I return the laptop?").wait_for(timeout=10000)
    await app.screenshot(path=screenshot_path("app-inbox-closed"))
    # The API's view is one's own: not another operator's, and closed ones only.
    cid = await closed.get_attribute("data-conversation-id")
    mine = await (await stack.call("GET", "/api/inbox?view=closed", olga)).json()
    assert [c["id"] for c in mine["conversations"]] == [cid] and mine["conversations"][0]["status"] == "closed"
    others = await (await stack.call("GET", "/api/inbox?view=closed", petr)).json()
    assert others["conversations"] == []
