"""The widget in a real browser: /demo, open the widget, send, see the operator's reply."""
from playwright.async_api import expect

from tests.chromium import open_app, open_demo, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

XSS = '<img src=x onerror=alert(1)>'


async def test_a_visitor_chats_from_the_demo_page_and_sees_the_reply(stack, browser):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, operator, _ = await stack.add_operator(owner, "Browser Bella")
    page = await browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    await page.goto(str(stack.gateway.make_url("/demo")))
    await page.click("#parley-widget button.la")
    await page.wait_for_selector("#parley-widget[data-state=open]", state="attached")
    await page.fill("#parley-widget textarea", "Hello from a real browser")
    await page.press("#parley-widget textarea", "Enter")
    await page.wait_for_selector('#parley-widget .m[data-kind=visitor_message][data-status=sent]', timeout=15000)

    inbox = await (await stack.call("GET", "/api/inbox?view=new", operator)).json()
    conversation = inbox["conversations"][0]
    assert conversation["last_message_text"] == "Hello from a real browser"
    assert conversation["custom_params"].get("product") == "Windows"  # the demo page's setCustomParams
    cid = conversation["id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", operator)).status == 200
    for text in ("Hi! How can I help?", XSS):
        r = await stack.call("POST", f"/api/conversations/{cid}/messages", operator, json={"text": text})
        assert r.status == 200

    replies = page.locator("#parley-widget .m[data-kind=operator_message]")
    await replies.nth(1).wait_for(timeout=15000)
    assert "Hi! How can I help?" in await replies.nth(0).inner_text()
    assert XSS in await replies.nth(1).inner_text()          # shown as text
    assert await page.locator("#parley-widget .m img[src=x]").count() == 0   # never as HTML
    assert "Browser Bella" in " ".join(await page.locator("#parley-widget [data-kind]").all_inner_texts())
    await page.screenshot(path=screenshot_path("widget-conversation"))
    assert dialogs == [] and errors == []


def test_the_widget_script_stays_under_20_kb_gzipped():
    import gzip
    from parley.config import REPO_ROOT
    source = (REPO_ROOT / "web/widget.js").read_bytes()
    assert len(gzip.compress(source, 9)) < 20 * 1024
    assert b"innerHTML" not in source and b"outerHTML" not in source  # text is inserted as text


def test_the_demo_page_pastes_the_snippet_as_a_site_owner_would():
    from parley.config import REPO_ROOT
    page = (REPO_ROOT / "web/demo.html").read_text()
    assert '<script async src="/widget.js" data-project="demo"></script>' in page


async def test_a_message_typed_while_the_server_is_down_survives_a_reload_and_is_stored_once(stack, browser, platform):
    import asyncio
    import dataclasses

    from aiohttp.test_utils import TestClient, TestServer

    import conversation.__main__ as conversation_main
    from parley.service import POOL, create_app
    from tests.stack import settings

    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    page = await browser.new_page()
    await page.goto(str(stack.gateway.make_url("/demo")))
    await page.click("#parley-widget button.la")
    await page.fill("#parley-widget textarea", "first, while all is well")
    await page.press("#parley-widget textarea", "Enter")
    await page.wait_for_selector('#parley-widget .m[data-kind=visitor_message][data-status=sent]', timeout=15000)

    schema = await stack.conversation.app[POOL].fetchval("select current_schema()")
    port = stack.conversation.port
    await stack.conversation.close()  # the conversation service goes down
    await page.fill("#parley-widget textarea", "typed during the outage")
    await page.press("#parley-widget textarea", "Enter")
    pending = page.locator('#parley-widget .m[data-kind=visitor_message][data-status=pending]')
    await pending.wait_for(state="attached", timeout=10000)
    await asyncio.sleep(1)
    await page.reload()  # the visitor reloads: the outbox is in localStorage
    await page.wait_for_selector("#parley-widget", state="attached")

    stack.conversation = TestClient(TestServer(create_app(
        dataclasses.replace(conversation_main.SPEC, schema=schema), settings(platform, "conversation")), port=port))
    await stack.conversation.start_server()
    sent = page.locator('#parley-widget .m[data-kind=visitor_message][data-status=sent]')
    for _ in range(300):
        if await sent.count() == 2:
            break
        await asyncio.sleep(0.1)
    assert await sent.count() == 2, await page.locator("#parley-widget [data-kind]").all_inner_texts()
    inbox = await (await stack.call("GET", "/api/inbox?view=all", owner)).json()
    cid = inbox["conversations"][0]["id"]
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", owner)).json()
    texts = [e["data"]["text"] for e in transcript["events"] if e["event"] == "chat.visitor_message_posted"]
    assert texts == ["first, while all is well", "typed during the outage"]


async def test_a_visitor_leaves_contacts_on_the_demo_page_and_the_operator_sees_and_corrects_them(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    visitor = await open_demo(browser, base)
    errors = []
    visitor.on("pageerror", lambda e: errors.append(str(e)))
    app.on("pageerror", lambda e: errors.append(str(e)))

    # before writing anything: the link opens the form above the composer
    await visitor.click("#parley-widget button.cl")
    form = visitor.locator("#parley-widget form.cf")
    await form.wait_for()
    await form.locator("input[name=name]").fill("Vera Browser")
    await form.locator("input[name=phone]").fill("8 (900) 123-45-67")
    await form.locator("input[name=email]").fill("vera@")
    await form.locator("button[type=submit]").click()
    assert await form.locator("input[name=email]").get_attribute("aria-invalid") == "true"  # checked in the widget
    assert await form.locator(".ce").inner_text()
    await form.locator("input[name=email]").fill("vera@example.com")
    await form.locator("button[type=submit]").click()
    await visitor.locator("#parley-widget .n[data-kind=contacts_saved]").wait_for(timeout=15000)
    assert await form.is_hidden()

    # the contacts started the conversation: the operator sees it live, with the name and the E.164 phone
    row = app.get_by_test_id("inbox-row").first
    await row.wait_for(timeout=15000)
    await row.click()
    contacts = app.get_by_test_id("contacts")
    await contacts.filter(has_text="Vera Browser").wait_for(timeout=15000)
    assert "+79001234567" in await contacts.inner_text() and "vera@example.com" in await contacts.inner_text()

    # the operator takes it and corrects the phone in the side panel
    await app.get_by_test_id("take-button").click()
    await app.get_by_test_id("edit-contacts").click()
    await app.get_by_test_id("contact-phone").fill("+7 900 765 43 21")
    await app.get_by_test_id("save-contacts").click()
    await contacts.filter(has_text="+79007654321").wait_for(timeout=15000)

    # the visitor writes and gives a new email: the panel follows live
    await visitor.fill("#parley-widget textarea", "Here is my new address")
    await visitor.press("#parley-widget textarea", "Enter")
    await visitor.click("#parley-widget button.cl")
    await form.locator("input[name=email]").fill("vera.new@example.com")
    await form.locator("button[type=submit]").click()
    await visitor.locator("#parley-widget .n[data-kind=contacts_saved]").nth(1).wait_for(timeout=15000)
    await contacts.filter(has_text="vera.new@example.com").wait_for(timeout=15000)
    assert "+79007654321" in await contacts.inner_text()
    await app.screenshot(path=screenshot_path("app-contacts"))
    await visitor.screenshot(path=screenshot_path("widget-contacts"))
    assert errors == [] and visitor.dialogs == [] and app.dialogs == []


async def test_a_new_widget_language_reaches_an_open_widget_without_a_reload(stack, browser):
    """Issue 19: the widget's language applied only after a reload. The admin switches it
    (and overrides a text); the open widget relabels itself in place from the gateway's
    `texts` frame - its conversation and its composer's draft stay as they were."""
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{base}/demo")
    await page.click("#parley-widget button.la")
    await page.fill("#parley-widget textarea", "Hello")
    await page.press("#parley-widget textarea", "Enter")
    await page.locator("#parley-widget .m[data-kind=visitor_message][data-status=sent]").wait_for(timeout=15000)
    await page.fill("#parley-widget textarea", "a draft")
    composer = page.locator("#parley-widget form.fm textarea")
    assert await composer.get_attribute("placeholder") == "Type your message…"

    r = await stack.call("PUT", "/api/project/widget", owner,
                         json={"language": "ru", "texts": {"window_title": "Поддержка магазина"}})
    assert r.status == 200, await r.text()
    await expect(composer).to_have_attribute("placeholder", "Введите сообщение…", timeout=15000)
    await expect(page.locator("#parley-widget h2")).to_have_text("Поддержка магазина")
    assert await page.locator("#parley-widget button.la").get_attribute("aria-label") == "Напишите нам"
    assert await page.locator("#parley-widget").get_attribute("lang") == "ru"
    assert await composer.input_value() == "a draft"
    assert await page.locator("#parley-widget .m[data-kind=visitor_message]", has_text="Hello").count() == 1
    await page.screenshot(path=screenshot_path("widget-language-live"))
