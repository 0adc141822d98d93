"""Issue 19 in a real Chromium, as a support lead would meet it on day one: an offer the
only operator online lets expire comes back to them after the round pause (it used to
strand the visitor under "Hang tight" for good); the offer pop-up says what the visitor
wrote and counts down; and while pop-ups stand, the conversation header's actions (take,
status, assign, Send to CRM) stay clickable - they used to be covered.

The scheduler's offer timers run on real seconds here (a timer minute of 60 s), so an
offer of 5 s stands 5 s in the browser. Screenshots: offer-popup-preview,
offer-back-next-round."""
from __future__ import annotations

import re

from playwright.async_api import expect

from parley.service import POOL

from conversation import auto_assign
from tests.chromium import open_app, open_demo, screenshot_path, visitor_says
from tests.presence.test_auto_assignment import wire
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

HEADER_ACTIONS = ("take-button", "status-select", "assign-button", "lead-button")


async def header_is_usable(app) -> None:
    """Each action in the conversation header takes a click where it is drawn: Playwright's
    trial click fails when another element (a pop-up) would receive it."""
    for testid in HEADER_ACTIONS:
        await app.get_by_test_id(testid).click(trial=True, timeout=3000)


async def test_an_expired_offer_comes_back_and_pop_ups_leave_the_header_usable(sched_stack, browser,
                                                                              monkeypatch):
    stack, scheduler = sched_stack, sched_stack.scheduler
    monkeypatch.setenv("PARLEY_SCHEDULER_MINUTE_SECONDS", "60")   # offers last their real seconds
    wire(stack, scheduler)
    stack.conversation.app[auto_assign.TUNING].round_pause_seconds = 1.0
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("PUT", "/api/project/assignment", owner,
                         json={"assignment_mode": "round_robin", "offer_seconds": 5})
    assert r.status == 200, await r.text()

    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)   # the only operator online
    visitor = await open_demo(browser, base)
    await visitor_says(visitor, "Is anyone there? Order #4417 never arrived")

    # The offer pop-up: what the visitor wrote, and how long is left.
    accept = app.get_by_test_id("offer-accept")
    await accept.wait_for(timeout=15000)
    await expect(app.get_by_test_id("offer-preview")).to_contain_text("Order #4417", timeout=5000)
    await expect(app.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"\b[0-5] s\b"))

    # With the pop-ups standing, the operator opens the conversation: every header action works.
    row = app.get_by_test_id("inbox-row").filter(has_text="Order #4417")
    await row.click()
    await app.get_by_test_id("take-button").wait_for()
    await header_is_usable(app)
    await app.screenshot(path=screenshot_path("offer-popup-preview"))

    # Nobody accepts: the offer expires and its pop-up goes...
    await accept.wait_for(state="detached", timeout=15000)
    cid = await row.get_attribute("data-conversation-id")
    assert await stack.conversation.app[POOL].fetchval(
        "select offer_id is null and status = 'new' from conversations where id = $1", cid)
    # ...and after the round pause it comes back to the same operator, who takes it.
    await accept.wait_for(timeout=20000)
    await app.screenshot(path=screenshot_path("offer-back-next-round"))
    await accept.click()

    async def owners():
        r = await stack.call("GET", f"/api/conversations/{cid}", owner)
        return (await r.json())["conversation"]["assignee_name"] is not None
    await eventually(owners, timeout=10, what="the owner is the assignee")
    await visitor.locator("#parley-widget [data-kind=operator_joined]").wait_for(timeout=10000)
    assert app.dialogs == [] and visitor.dialogs == []
