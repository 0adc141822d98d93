"""Issue 19, item 2 in a real Chromium: when nobody takes a conversation for the
project's unanswered minutes, the visitor is told so - no more "Hang tight" for good -
and asked for an email or phone (the contact form opens), also after a reload; the
admin's alert goes by itself once someone takes the conversation. A timer minute is
0.5 s here (tests/stack.py). Screenshot: widget-unanswered."""
from __future__ import annotations

from playwright.async_api import expect

from tests.chromium import open_app, open_demo, screenshot_path, visitor_says
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

W = "#parley-widget"


async def test_an_unanswered_visitor_is_told_and_asked_for_contacts(sched_stack, browser):
    stack, scheduler = sched_stack, sched_stack.scheduler
    base = str(stack.gateway.make_url("")).rstrip("/")
    assert (await scheduler.put({"show_any_time": True, "time_zone": "UTC", "unanswered_alert_minutes": 4,
                                 "idle_close_hours": None})).status == 200
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    visitor = await open_demo(browser, base)
    await visitor_says(visitor, "Hello? I need help with a refund")
    waiting = visitor.locator(f"{W} .wt")
    await visitor.locator(f"{W} .wt[data-waiting=open]").wait_for(timeout=5000)     # first the usual promise

    # Nobody takes it for 4 timer minutes: the admin is alerted and the visitor is told.
    await app.locator("[data-testid=toast][data-kind=unanswered]").wait_for(timeout=20000)
    await visitor.locator(f"{W} .wt[data-waiting=unanswered]").wait_for(timeout=10000)
    assert "everyone is busy" in await waiting.inner_text()
    await expect(waiting).to_be_in_viewport()
    assert await visitor.locator(f"{W} form.cf").is_visible()                       # asked how to answer
    assert "online" not in (await visitor.locator(f"{W} .hd p").inner_text()).lower()
    await visitor.screenshot(path=screenshot_path("widget-unanswered"))
    await visitor.reload()
    await visitor.click(f"{W} button.la")
    await visitor.locator(f"{W} .wt[data-waiting=unanswered]").wait_for(timeout=10000)
    assert "online" not in (await visitor.locator(f"{W} .hd p").inner_text()).lower()   # after a reload too

    # The owner takes it: the alert goes without being dismissed, and the visitor is joined.
    await app.get_by_test_id("inbox-row").filter(has_text="refund").click()
    await app.get_by_test_id("take-button").click()
    await app.locator("[data-testid=toast][data-kind=unanswered]").wait_for(state="detached", timeout=10000)
    await visitor.locator(f"{W} [data-kind=operator_joined]").wait_for(timeout=10000)
    await expect(waiting).to_be_hidden(timeout=5000)
