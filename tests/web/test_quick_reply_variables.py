"""Quick replies with variables (issue 24, item 6), in a real Chromium against the real
services: an admin writes a template with {{visitor.name}}, {{operator.name}},
{{project.name}} and custom params, sees it previewed, and cannot save one with a
variable Parley does not know; an operator uses it in a conversation where the visitor
sent some params but not their name, is asked for what is missing, cannot insert it
with a gap, and the visitor receives the reply filled in."""
from tests.chromium import open_app, open_demo, open_from_inbox, screenshot_path, visitor_says
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

TEMPLATE = ("Hello {{visitor.name}}! {{operator.name}} from {{project.name}} here. "
            "Our {{ params.office }} office ships {{params.product}} by {{params.courier}}.")


async def test_a_quick_reply_is_filled_in_and_asks_for_what_nobody_knows(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    project_name = (await (await stack.call("GET", "/api/project", owner)).json())["name"]
    my_name = (await (await stack.call("GET", "/api/session", owner)).json())["name"]
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)

    await app.get_by_test_id("settings-link").click()
    await app.get_by_test_id("settings-nav-templates").click()
    await app.get_by_test_id("template-title").fill("Shipping")
    await app.get_by_test_id("template-text").fill("Hi {{visitor.phone}}")
    await app.get_by_test_id("template-save").click()
    refused = app.locator("[data-testid=settings-templates] .form-message", has_text="is not a variable")
    await refused.wait_for(timeout=10000)   # the server's reason, before anything is stored
    assert "{{visitor.phone}}" in await refused.inner_text()

    await app.get_by_test_id("template-text").fill(TEMPLATE)
    preview = app.get_by_test_id("template-preview")
    assert await preview.inner_text() == (f"Hello Anna! {my_name} from {project_name} here. "
                                          "Our ‹office› office ships ‹product› by ‹courier›.")
    await app.screenshot(path=screenshot_path("app-template-variables-editor"))
    await app.get_by_test_id("template-save").click()
    await app.get_by_test_id("template-item").filter(has_text="Shipping").wait_for(timeout=10000)
    templates = (await (await stack.call("GET", "/api/templates", owner)).json())["templates"]
    assert [t["text"] for t in templates if t["title"] == "Shipping"] == [TEMPLATE]   # stored as written

    visitor = await open_demo(browser, base)    # the demo page sends product = Windows, office = Moscow
    await visitor_says(visitor, "Do you ship windows?")
    await open_from_inbox(app, "Do you ship windows?")
    await app.get_by_test_id("take-button").click()
    reply = app.get_by_test_id("reply-input")
    await reply.focus()
    await app.keyboard.press("Control+/")
    await app.get_by_test_id("template-search").fill("Shipping")
    await app.get_by_test_id("template-option").first.wait_for()
    await app.keyboard.press("Enter")

    form = app.get_by_test_id("template-fill")
    await form.wait_for()
    asked = [await f.get_attribute("data-variable") for f in await app.get_by_test_id("template-value").all()]
    assert asked == ["visitor.name", "params.courier"]    # the params the visitor sent are not asked for
    await app.get_by_test_id("template-value").first.fill("Olga")
    await app.get_by_test_id("template-fill-insert").click()   # the courier still empty
    await app.locator("[data-testid=template-fill] .field-error", has_text="Fill in every value").wait_for()
    assert await reply.input_value() == ""                      # nothing went into the composer with a gap
    await app.get_by_test_id("template-value").nth(1).fill("DHL")
    filled = f"Hello Olga! {my_name} from {project_name} here. Our Moscow office ships Windows by DHL."
    assert await app.get_by_test_id("template-fill-preview").inner_text() == filled
    await app.screenshot(path=screenshot_path("app-template-variables-fill"))
    await app.get_by_test_id("template-fill-insert").click()
    assert await reply.input_value() == filled
    await reply.press("Enter")

    await visitor.locator("#parley-widget .m", has_text="ships Windows by DHL").wait_for(timeout=15000)
    assert "{{" not in " ".join(await visitor.locator("#parley-widget .m").all_inner_texts())
    assert app.dialogs == [] and visitor.dialogs == []
