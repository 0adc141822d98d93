"""Transcripts by email (issue 24, item 5) in a real Chromium against the real services
and a real SMTP server (aiosmtpd): the owner sets the project's email in Settings › Email
and sends a test; a visitor asks "Email me this conversation" in the widget; the mail
sink holds the transcript once, with both sides and without the operator's note, and
the log in the app says it was sent."""
from tests.chromium import open_app, open_demo, screenshot_path, visitor_says
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

WIDGET = "#parley-widget"
NOTE = "Internal: ships from the Riga warehouse"


async def test_the_transcript_arrives_in_the_mail_sink_once_without_notes(crm_stack, sink, browser):
    base = str(crm_stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.goto(f"{base}/app/#/settings/email")
    await app.get_by_test_id("email-host").fill("127.0.0.1")
    await app.get_by_test_id("email-port").fill(str(sink.port))
    await app.get_by_test_id("email-security").select_option("none")
    await app.get_by_test_id("email-from-address").fill("chat@shop.example")
    await app.get_by_test_id("email-from-name").fill("Shop Example")
    await app.get_by_test_id("email-save").click()
    await app.get_by_test_id("email-message").filter(has_text="saved").wait_for()
    await app.get_by_test_id("email-test-to").fill("owner@shop.example")
    await app.get_by_test_id("email-test").click()
    await app.get_by_test_id("email-test-result").filter(has_text="Sent").wait_for(timeout=15000)
    assert [m["to"] for m in sink.messages] == ["owner@shop.example"]

    visitor = await open_demo(browser, base)
    await visitor_says(visitor, "Can you deliver the blue sofa on Friday?")
    owner = await crm_stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    cid = None

    async def started():
        nonlocal cid
        rows = (await (await crm_stack.call("GET", "/api/inbox?view=new", owner)).json())["conversations"]
        cid = next((r["id"] for r in rows if "blue sofa" in (r.get("last_message_text") or "")), None)
        return cid is not None
    await eventually(started, timeout=15, what="the conversation in the inbox")
    assert (await crm_stack.call("POST", f"/api/conversations/{cid}/take", owner, json={})).status == 200
    assert (await crm_stack.call("POST", f"/api/conversations/{cid}/messages", owner,
                                 json={"text": "Yes, Friday between 10 and 14."})).status == 200
    assert (await crm_stack.call("POST", f"/api/conversations/{cid}/notes", owner, json={"text": NOTE})).status == 200
    await visitor.locator(f"{WIDGET} .m[data-kind=operator_message]", has_text="Friday between").wait_for(timeout=15000)

    await visitor.locator(f"{WIDGET} button.cl", has_text="Email me this conversation").click()
    await visitor.fill(f"{WIDGET} form.tf input[type=email]", "anna@client.example")
    await visitor.locator(f"{WIDGET} form.tf button[type=submit]").click()
    await visitor.locator(f"{WIDGET} .n", has_text="We will email this conversation to anna@client.example").wait_for(
        timeout=15000)
    await visitor.screenshot(path=screenshot_path("widget-transcript-requested"))
    await eventually(lambda: len(sink.messages) == 2, timeout=30, what="the transcript in the sink")
    await visitor.wait_for_timeout(1500)
    assert len(sink.messages) == 2   # once
    mail = sink.messages[1]
    assert mail["rcpt_to"] == ["anna@client.example"]
    assert "blue sofa on Friday" in mail["text"] and "between 10 and 14" in mail["text"]
    assert NOTE not in mail["text"] and "Riga warehouse" not in mail["html"]

    await app.get_by_test_id("email-log-refresh").click()
    await app.locator("[data-testid=email-log-row][data-status=sent]").wait_for(timeout=15000)
    await app.screenshot(path=screenshot_path("app-email-settings"), full_page=True)
    assert app.dialogs == [] and visitor.dialogs == []
