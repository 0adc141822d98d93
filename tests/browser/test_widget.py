"""The widget in a real browser: /demo, open the widget, send, see the operator's reply."""
from tests.browser.conftest import screenshot_path
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
    source = (REPO_ROOT / "services/gateway/gateway/static/widget.js").read_bytes()
    assert len(gzip.compress(source, 9)) < 20 * 1024
    assert b"innerHTML" not in source and b"outerHTML" not in source  # text is inserted as text


def test_the_demo_page_pastes_the_snippet_as_a_site_owner_would():
    from parley.config import REPO_ROOT
    page = (REPO_ROOT / "services/gateway/gateway/static/demo.html").read_text()
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
