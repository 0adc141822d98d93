"""Notifications that stay (issue 24, item 7), in a real Chromium against the real
services: an operator offered a conversation gets a desktop notification that stays
until acted on (requireInteraction), closed by the app once the offer is accepted; the
app's title and badge count what waits; with Settings › Notifications turned off, the
next offer's notification is one the system may close by itself."""
from __future__ import annotations

from conversation import auto_assign
from tests.chromium import open_app, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually
from tests.visitor import ScriptedVisitor

# What the page shows, recorded: desktop notifications (granted by open_app) with their
# options and whether the app closed them, and the badge counts it set.
RECORD = """() => {
  window.__shown = []; window.__badges = [];
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, opts) {
      super(title, opts);
      this.__record = { title, tag: opts.tag, requireInteraction: opts.requireInteraction, closed: false };
      window.__shown.push(this.__record);
    }
    close() { this.__record.closed = true; super.close(); }
  };
  Object.defineProperty(window.Notification, 'permission', { get: () => Real.permission });
  Object.defineProperty(navigator, 'setAppBadge', { configurable: true, value: (n) => { window.__badges.push(n); return Promise.resolve(); } });
  Object.defineProperty(navigator, 'clearAppBadge', { configurable: true, value: () => { window.__badges.push(0); return Promise.resolve(); } });
}"""


async def test_an_offer_stays_on_screen_until_acted_on_unless_the_operator_turns_that_off(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    stack.conversation.app[auto_assign.REGISTRY]["client"] = stack.registry_client
    stack.conversation.app[auto_assign.TUNING].sweep_seconds = 0.2
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("PUT", "/api/project/assignment", owner,
                         json={"assignment_mode": "round_robin", "offer_seconds": 600})
    assert r.status == 200, await r.text()
    assert (await stack.call("PUT", "/api/presence", owner, json={"status": "away"})).status == 200
    _, _, email = await stack.add_operator(owner, "Olga Offered")
    app = await open_app(browser, base, email, "operator-pass-1")
    await app.evaluate("localStorage.setItem('parley.lang', 'en')")
    await app.reload()
    await app.locator("[data-testid=connection].is-online").wait_for()
    await app.evaluate(RECORD)

    await app.get_by_test_id("me-link").click()
    await app.get_by_test_id("settings-nav-notifications").click()
    stay = app.get_by_test_id("notifications-stay")
    assert await stay.is_checked()                    # on unless the operator turns it off
    assert "are on" in await app.get_by_test_id("notifications-permission").inner_text()
    await app.screenshot(path=screenshot_path("app-settings-notifications"))
    await app.get_by_test_id("inbox-link").click()

    first = ScriptedVisitor(stack.gateway)
    await first.start()
    await first.send_and_wait("Is anyone there?")
    accept = app.get_by_test_id("offer-accept")
    await accept.wait_for(timeout=15000)
    shown = await app.evaluate("window.__shown")
    [offer] = [n for n in shown if n["tag"].startswith("offer-")]
    assert offer == {"title": "A new conversation for you", "tag": offer["tag"], "requireInteraction": True,
                     "closed": False}
    await eventually(lambda: _title_counts(app, 1), timeout=10, what="the title counts the waiting conversation")
    assert 1 in await app.evaluate("window.__badges")
    await accept.click()
    await app.get_by_test_id("reply-input").wait_for()
    await eventually(lambda: _closed(app, offer["tag"]), timeout=10, what="the offer's notification closed")

    await app.get_by_test_id("me-link").click()
    await app.get_by_test_id("settings-nav-notifications").click()
    await stay.uncheck()
    await app.reload()                                # the setting outlives the page
    await app.locator("[data-testid=connection].is-online").wait_for()
    await app.evaluate(RECORD)
    await app.get_by_test_id("me-link").click()
    await app.get_by_test_id("settings-nav-notifications").click()
    assert not await app.get_by_test_id("notifications-stay").is_checked()
    await app.get_by_test_id("inbox-link").click()

    second = ScriptedVisitor(stack.gateway)
    await second.start()
    await second.send_and_wait("Hello again, anyone?")
    await app.get_by_test_id("offer-accept").wait_for(timeout=15000)
    [offer] = [n for n in await app.evaluate("window.__shown") if n["tag"].startswith("offer-")]
    assert offer["requireInteraction"] is False       # the system may close it by itself
    await first.drop()
    await second.drop()


async def _title_counts(app, n: int) -> bool:
    return (await app.title()).startswith(f"({n}) ")


async def _closed(app, tag: str) -> bool:
    return any(n["tag"] == tag and n["closed"] for n in await app.evaluate("window.__shown"))
