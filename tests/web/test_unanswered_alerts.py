"""A morning of unanswered alerts does not wall off the inbox: the newest three stay as
toasts, the rest are counted in one "more waiting in New" toast, which opens New. (In a
long run, a pile of persistent alerts covered the inbox row a test had to click.)"""
import uuid

from parley.envelope import Event

from gateway.live import push
from gateway.live.operator_sockets import SOCKETS
from tests.chromium import open_app, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

ALERTS = 7


async def test_at_most_three_alert_toasts_and_one_for_the_rest(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    # Pushed only to open sockets: the app's must be open first (under load it opens
    # after the inbox shows).
    await eventually(lambda: len(stack.gateway.app[SOCKETS].all()) == 1, what="the app's socket")
    ids = [str(uuid.uuid4()) for _ in range(ALERTS)]
    for cid in ids:   # what the scheduler's schedule.unanswered_alert does on this gateway
        await push.on_unanswered_alert(stack.gateway.app, Event(
            "schedule.unanswered_alert", f"schedule-{cid}", {"project_id": "demo", "conversation_id": cid, "minutes": 5},
            project_id="demo"))
    more = app.locator("[data-kind=unanswered-more]")
    await more.wait_for(timeout=15000)
    await app.locator("[data-kind=unanswered]").nth(2).wait_for(timeout=15000)
    shown = [await t.get_attribute("data-conversation-id") for t in await app.locator("[data-kind=unanswered]").all()]
    assert shown == ids[-3:], "the newest three stay, in order"
    assert f"{ALERTS - 3} more" in await more.inner_text()
    await app.screenshot(path=screenshot_path("app-unanswered-alerts-capped"))

    await more.get_by_test_id("toast-open-new").click()
    assert app.url.endswith("#/inbox/new")
    assert await app.locator("[data-kind=unanswered-more]").count() == 0
    assert await app.locator("[data-kind=unanswered]").count() == 3, "Open New leaves the newest alerts"
