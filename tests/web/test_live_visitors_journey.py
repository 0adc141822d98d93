"""Visitors on the site now and an invitation (issue 24, items 2 and 3), in a real
Chromium against the real services: a visitor lands from a newsletter and browses three
pages of the demo store without opening the chat; the operator, on the Visitors page,
sees them live - page, pages seen, source - and invites them; the widget opens with the
operator's words, the visitor answers, and the conversation is the operator's."""
from tests.chromium import open_app, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def test_a_visitor_browsing_three_pages_is_seen_live_invited_and_answers(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.get_by_test_id("visitors-link").click()
    await app.get_by_test_id("visitors-status").wait_for(state="attached")

    visitor = await (await browser.new_context()).new_page()
    visitor.dialogs = []
    visitor.on("dialog", lambda d: visitor.dialogs.append(d.message))
    for url in (f"{base}/demo?utm_source=newsletter&utm_medium=email", f"{base}/demo?p=chairs",
                f"{base}/demo?p=red-chair#details"):
        await visitor.goto(url)
        await visitor.locator("#parley-widget button.la").wait_for()
    assert await visitor.locator("#parley-widget .p").is_hidden()   # browsing: the chat is not open

    row = app.get_by_test_id("visitor-row").filter(has_text="newsletter")
    await row.wait_for(timeout=15000)
    await app.locator("[data-testid=visitor-row] a[href$='p=red-chair#details']").wait_for(timeout=15000)
    cells = await row.locator("td").all_inner_texts()
    assert cells[2] == "3" and "newsletter / email" in cells[4] and "Browsing" in cells[5], cells
    await app.screenshot(path=screenshot_path("app-visitors-live"))

    await row.get_by_test_id("visitor-invite").click()
    text = app.get_by_test_id("invite-text")
    await text.fill("Hello! The red chair ships tomorrow - any questions?")
    await app.get_by_test_id("invite-send").click()
    await row.get_by_test_id("visitor-invited").wait_for(timeout=15000)

    invitation = visitor.locator("#parley-widget .m[data-kind=invitation]", has_text="red chair ships tomorrow")
    await invitation.wait_for(timeout=15000)
    assert await visitor.locator("#parley-widget .p").is_visible()   # the widget opened itself
    await visitor.screenshot(path=screenshot_path("widget-invitation"))

    await visitor.fill("#parley-widget textarea", "Yes - does it come in blue?")
    await visitor.press("#parley-widget textarea", "Enter")
    await visitor.locator("#parley-widget .m[data-kind=visitor_message][data-status=sent]",
                          has_text="come in blue").wait_for(timeout=15000)
    await visitor.locator("#parley-widget .m[data-kind=operator_message]", has_text="red chair ships").wait_for()
    assert await visitor.locator("#parley-widget .m[data-kind=operator_message]").count() == 1   # shown once

    await row.get_by_test_id("visitor-open").wait_for(timeout=15000)     # chatting now
    await row.get_by_test_id("visitor-open").click()
    await app.locator("[data-testid=message][data-kind=operator]", has_text="red chair ships").wait_for(timeout=15000)
    await app.locator("[data-testid=message][data-kind=visitor]", has_text="come in blue").wait_for()
    await app.locator("[data-testid=tab-mine][aria-selected=true]").wait_for()   # it is the inviting operator's
    await app.screenshot(path=screenshot_path("app-invited-conversation"))
    assert app.dialogs == [] and visitor.dialogs == []
