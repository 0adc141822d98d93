"""The operator app in a real Chromium against the real services: the operator's
journey, the admin's journey with a second operator notified in another browser
context, and visitor text that tries to be HTML. Screenshots go to
test-artifacts/screenshots/ for a person to look at."""
import asyncio

from PIL import Image

from parley.service import create_app

import gateway.__main__ as gateway_main
from tests.chromium import open_app, open_demo, open_from_inbox, screenshot_path, visitor_says
from tests.stack import GATEWAY, OWNER_EMAIL, OWNER_PASSWORD, serve, settings, spec_for
from tests.visitor import ScriptedVisitor


async def test_operator_journey(stack, browser, tmp_path):
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await stack.call("POST", "/api/templates", owner,
                     json={"title": "Delivery times", "text": "We deliver within 2-3 business days."})
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    visitor = await open_demo(browser, base)

    await visitor_says(visitor, "Hello! Do you ship to Kazan?")
    row = app.get_by_test_id("inbox-row").first
    await row.wait_for(timeout=15000)  # arrived live, no reload
    assert "Do you ship to Kazan?" in await row.inner_text()
    cid = await row.get_attribute("data-conversation-id")
    await app.locator("[data-testid=toast][data-kind=new]").first.wait_for(timeout=15000)
    await app.screenshot(path=screenshot_path("app-inbox"))

    await row.click()
    await app.get_by_test_id("take-button").click()
    reply = app.get_by_test_id("reply-input")
    await reply.fill("Hi! Yes, we ship everywhere.")
    await reply.press("Enter")
    await app.locator("[data-testid=message][data-kind=operator]").first.wait_for()

    await app.get_by_test_id("note-toggle").click()
    await reply.fill("VIP customer, be nice")
    await reply.press("Enter")
    await app.locator("[data-testid=message][data-kind=note]").first.wait_for()
    assert await app.get_by_test_id("note-toggle").get_attribute("aria-pressed") == "false"  # back to replies

    await reply.focus()
    await app.keyboard.press("Control+/")
    await app.get_by_test_id("template-search").fill("deliv")
    await app.get_by_test_id("template-option").first.wait_for()
    await app.keyboard.press("Enter")
    assert await reply.input_value() == "We deliver within 2-3 business days."
    await reply.press("Enter")
    await app.locator("[data-testid=message][data-kind=operator]").nth(1).wait_for()

    price_list = tmp_path / "prices.txt"
    price_list.write_text("Price list\n" * 100)
    await app.get_by_test_id("attach-input").set_input_files(str(price_list))
    await app.get_by_test_id("attachment-ready").wait_for()
    await app.get_by_test_id("send-button").click()
    await app.locator("[data-testid=message][data-kind=operator] a", has_text="prices.txt").wait_for()

    await app.get_by_test_id("status-select").select_option("closed")
    await visitor.locator("#parley-widget [data-kind=closed]").wait_for(timeout=15000)
    await app.screenshot(path=screenshot_path("app-conversation"))

    widget_text = " ".join(await visitor.locator("#parley-widget [data-kind]").all_inner_texts())
    assert "we ship everywhere" in widget_text and "2-3 business days" in widget_text
    assert "VIP customer" not in widget_text  # the note stays inside
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", owner)).json()
    events = [e["event"] for e in transcript["events"]]
    assert events.count("chat.operator_replied") == 3 and "chat.note_added" in events
    assert transcript["conversation"]["status"] == "closed"
    assert app.dialogs == [] and visitor.dialogs == []


async def test_admin_journey_and_the_assignee_is_notified_in_another_browser(stack, browser, tmp_path):
    base = str(stack.gateway.make_url("")).rstrip("/")
    bad, good = tmp_path / "wide.png", tmp_path / "square.png"
    Image.new("RGB", (640, 480), (200, 80, 80)).save(bad)
    Image.new("RGB", (300, 300), (40, 160, 120)).save(good)
    admin = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)

    await admin.get_by_test_id("settings-link").click()
    await admin.get_by_test_id("settings-operators").wait_for()
    await admin.get_by_test_id("operator-add-name").wait_for()  # the form is drawn after the list loads
    assert await admin.get_by_test_id("operator-add-admin").count() == 1  # the owner may make admins
    await admin.get_by_test_id("operator-add-name").fill("Anna Assignee")
    await admin.get_by_test_id("operator-add-email").fill("anna@example.com")
    await admin.get_by_test_id("operator-add-password").fill("anna-password-1")
    await admin.get_by_test_id("avatar-input").set_input_files(str(bad))
    await admin.get_by_test_id("operator-add-submit").click()
    refused = admin.locator("[data-testid=avatar-error]:not(:empty)")
    await refused.wait_for(timeout=10000)
    assert "640x480" in await refused.text_content()  # the server's reason, shown next to the avatar
    await admin.get_by_test_id("avatar-input").set_input_files(str(good))
    await admin.get_by_text("Avatar saved.").wait_for(timeout=10000)
    await admin.screenshot(path=screenshot_path("app-settings-operators"))
    for section in ("widget", "templates", "sites", "chat"):
        await admin.get_by_test_id(f"settings-nav-{section}").click()
        await admin.get_by_test_id(f"settings-{section}").wait_for()
        await admin.screenshot(path=screenshot_path(f"app-settings-{section}"))

    anna = await open_app(browser, base, "anna@example.com", "anna-password-1", size=(1024, 768))
    visitor = await open_demo(browser, base)
    await visitor_says(visitor, "I need Anna")
    await open_from_inbox(admin, "I need Anna")
    await admin.get_by_test_id("assign-button").click()
    await admin.locator("[data-testid=assign-option]", has_text="Anna Assignee").click()

    toast = anna.locator("[data-testid=toast][data-kind=assigned]")
    await toast.wait_for(timeout=10000)
    assert await toast.get_attribute("role") == "alert"
    await asyncio.sleep(6)
    assert await toast.count() == 1  # stays until acknowledged
    await anna.screenshot(path=screenshot_path("app-assignment-toast"))
    await toast.get_by_test_id("toast-open").click()
    await anna.locator("[data-testid=message][data-kind=visitor]", has_text="I need Anna").wait_for()
    assert await anna.locator("[data-testid=toast][data-kind=assigned]").count() == 0
    widget_text = " ".join(await visitor.locator("#parley-widget [data-kind]").all_inner_texts())
    assert "Anna Assignee" in widget_text


async def test_visitor_html_is_shown_as_text_in_the_operator_app(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    visitor = await open_demo(browser, base)
    attacks = ["<img src=x onerror=alert(1)>", "<script>alert('xss')</script>"]
    for text in attacks:
        await visitor_says(visitor, text)
    row = app.get_by_test_id("inbox-row").first
    await row.wait_for(timeout=15000)
    await row.click()
    messages = app.locator("[data-testid=message][data-kind=visitor]")
    await messages.nth(1).wait_for()
    texts = await messages.all_inner_texts()
    assert all(any(attack in t for t in texts) for attack in attacks)
    assert await app.locator("img[src=x]").count() == 0
    assert await app.locator("[data-testid=transcript] script").count() == 0
    await asyncio.sleep(1)
    assert app.dialogs == [] and visitor.dialogs == []


async def test_after_a_network_drop_the_app_resyncs_by_itself_and_says_so(stack, browser, platform):
    """The app's gateway goes away (a dropped network, a restart) while a visitor writes
    through another gateway; when it is back the app catches up on its own."""
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    other = await serve(create_app(await spec_for(platform, GATEWAY, "gw_other"), settings(platform, GATEWAY)))
    try:
        port = stack.gateway.port
        await stack.gateway.close()
        await app.get_by_text("Connection lost").first.wait_for(timeout=10000)
        visitor = ScriptedVisitor(other)
        await visitor.start()
        await visitor.send_and_wait("written while the operator was cut off")
        stack.gateways[0] = await serve(create_app(gateway_main.SPEC, settings(platform, GATEWAY)), port)
        await app.get_by_text("Reconnected — up to date").first.wait_for(timeout=40000)
        row = app.get_by_test_id("inbox-row").filter(has_text="written while the operator was cut off")
        await row.wait_for(timeout=10000)  # no reload asked for, none done
    finally:
        await other.close()


async def test_the_app_is_installable(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    manifest_href = await app.locator("link[rel=manifest]").get_attribute("href")
    manifest = await (await app.request.get(base + manifest_href if manifest_href.startswith("/") else f"{base}/app/{manifest_href}")).json()
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/app/"
    assert {icon["sizes"] for icon in manifest["icons"]} >= {"192x192", "512x512"}
    for _ in range(50):
        if await app.evaluate("navigator.serviceWorker.controller !== null || navigator.serviceWorker.ready.then(() => true)"):
            break
    registration = await app.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert registration == f"{base}/app/"


async def test_owner_only_controls_are_hidden_from_an_admin(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await stack.add_operator(owner, "Adam Admin", admin=True)
    admin = await open_app(browser, base, email, "operator-pass-1")
    await admin.get_by_test_id("settings-link").click()
    await admin.get_by_test_id("settings-nav-chat").click()
    await admin.get_by_test_id("settings-chat").wait_for()
    assert await admin.get_by_test_id("chat-toggle").count() == 0
    await admin.get_by_test_id("settings-nav-operators").click()
    await admin.get_by_test_id("operator-add-name").wait_for()
    assert await admin.get_by_test_id("operator-add-admin").count() == 0
    # and the server refuses them anyway
    r = await stack.call("POST", "/api/project/chat/disable", await stack.login(email, "operator-pass-1"))
    assert r.status == 403


async def test_an_operator_changes_their_own_password_with_the_current_one(stack, browser):
    """The app asks for the current password when you change your own (the server requires it)."""
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await stack.add_operator(owner, "Petra Password", admin=True, password="petra-password-1")
    app = await open_app(browser, base, email, "petra-password-1")
    await app.get_by_test_id("settings-link").click()
    await app.get_by_test_id("settings-operators").wait_for()
    row = app.get_by_test_id("operator-list").locator("tr", has_text="Petra Password")
    await row.get_by_test_id("operator-edit").click()
    await app.get_by_test_id("operator-edit-password").fill("petra-password-2")
    await app.get_by_test_id("operator-edit-current-password").fill("not-my-password")
    await app.get_by_test_id("operator-edit-submit").click()
    await app.locator("[data-testid=operator-edit-form] .form-message.error:not(:empty)").wait_for()
    await app.get_by_test_id("operator-edit-password").fill("petra-password-2")
    await app.get_by_test_id("operator-edit-current-password").fill("petra-password-1")
    await app.get_by_test_id("operator-edit-submit").click()
    await app.locator("[data-testid=operator-edit-form] .form-message.ok:not(:empty)").wait_for()
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": email,
                                                       "password": "petra-password-2"})
    assert r.status == 201
