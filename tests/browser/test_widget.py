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
