"""Issue 13's journey in a real Chromium: the project offers new conversations round
robin; the operator's app pops the offer up and Accept opens it; the visitor sees
"Read" and the operator typing, the operator sees the visitor typing and "Seen", and
once the chat is closed the visitor rates it - once - and the admin finds it on the
Ratings page. (tests/web/test_auto_assignment.py covers nobody online.)"""
from tests.chromium import open_app, open_demo, screenshot_path, visitor_says
from tests.web.test_auto_assignment import offer_round_robin
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

WIDGET = "#parley-widget"


async def test_typing_read_and_rating_between_widget_and_app(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    await offer_round_robin(stack)
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    visitor = await open_demo(browser, base)

    await visitor_says(visitor, "Hello! Is the blue kettle in stock?")
    # Offered to the one operator online: Accept makes it theirs and opens it.
    accept = app.get_by_test_id("offer-accept")
    await accept.wait_for(timeout=15000)
    await accept.click()
    await app.get_by_text("accepted the conversation").wait_for(timeout=15000)
    # Opened: the visitor's message shows as read.
    await visitor.locator(f"{WIDGET} .me[data-status=read]").wait_for(timeout=15000)

    # The operator types: the widget says so (the signal goes through typing.signals).
    reply = app.get_by_test_id("reply-input")
    await reply.press_sequentially("Let me check", delay=20)
    typing = visitor.locator(f"{WIDGET} .ty")
    await typing.wait_for(state="visible", timeout=15000)
    await visitor.screenshot(path=screenshot_path("widget-operator-typing"))

    # The visitor types: the app says so.
    await visitor.locator(f"{WIDGET} .fm textarea").press_sequentially("And the red", delay=20)
    await app.get_by_test_id("visitor-typing").wait_for(state="visible", timeout=15000)
    await visitor.fill(f"{WIDGET} .fm textarea", "")

    # The reply, shown in the open widget, is Seen in the app.
    await reply.fill("Yes, the blue kettle is in stock.")
    await reply.press("Enter")
    await visitor.locator(f"{WIDGET} .m[data-kind=operator_message]").wait_for(timeout=15000)
    await app.get_by_test_id("seen").wait_for(timeout=15000)
    await app.screenshot(path=screenshot_path("app-seen"))

    # Closed: the widget asks for a rating once; after it, a thank-you and no second form.
    await app.get_by_test_id("status-select").select_option("closed")
    form = visitor.locator(f"{WIDGET} form[data-kind=rating]")
    await form.wait_for(timeout=15000)
    await form.locator("button[data-score='4']").click()
    await form.locator("textarea").fill("Quick answer, thanks")
    await visitor.screenshot(path=screenshot_path("widget-rating"))
    await form.locator("button[type=submit]").click()
    await visitor.locator(f"{WIDGET} [data-kind=rated]").wait_for(timeout=15000)
    assert await visitor.locator(f"{WIDGET} form[data-kind=rating]").count() == 0
    await app.get_by_test_id("rating").wait_for(timeout=15000)
    assert "Quick answer, thanks" in await app.get_by_test_id("rating").inner_text()

    # A reload replays the history: rated already, so nobody asks again.
    await visitor.reload()
    await visitor.click(f"{WIDGET} button.la")
    await visitor.locator(f"{WIDGET} [data-kind=closed]").wait_for(timeout=15000)
    await visitor.locator(f"{WIDGET} .me[data-status=read]").wait_for(timeout=15000)
    assert await visitor.locator(f"{WIDGET} form[data-kind=rating]").count() == 0

    # The admin's Ratings page has it, per operator and per week.
    await app.goto(f"{base}/app/#/settings/ratings")
    by_operator = app.get_by_test_id("ratings-by-operator")
    await by_operator.wait_for(timeout=15000)
    assert "4.00" in await by_operator.inner_text()
    assert "Quick answer, thanks" in await app.get_by_test_id("ratings-recent").inner_text()
    # Each column says what it holds (issue 19: "Week of" stood over a timestamp, "Average" over "4 / 5").
    assert await app.get_by_test_id("ratings-recent").locator("th").all_inner_texts() == [
        "RATED AT", "OPERATOR", "RATING", "COMMENT"]
    await app.screenshot(path=screenshot_path("app-ratings"))
    assert app.dialogs == [] and visitor.dialogs == []
