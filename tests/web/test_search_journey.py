"""Search in the operator app (issue 24, item 1), in a real Chromium against the real
services: a visitor asks about "окна"; the operator types "окно" in the search box above
the inbox, sees the conversation with the word form marked, opens it from the result,
and Esc brings the inbox back."""
from tests.chromium import open_app, open_demo, screenshot_path, visitor_says
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


async def test_search_finds_a_russian_word_form_and_opens_the_conversation(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    visitor = await open_demo(browser, base)
    await visitor_says(visitor, "Сколько стоят пластиковые окна?")
    await app.get_by_test_id("inbox-row").filter(has_text="пластиковые окна").wait_for(timeout=15000)

    box = app.get_by_test_id("search-input")
    result = app.get_by_test_id("search-result").filter(has_text="пластиковые")
    for _ in range(40):   # searchable within a consumer poll of being stored
        await box.fill("окно")
        await box.press("Enter")
        try:
            await result.wait_for(timeout=500)
            break
        except Exception:
            continue
    assert await result.count() == 1
    assert await result.locator("mark").all_inner_texts() == ["окна"]
    assert not await app.get_by_test_id("tab-new").is_visible()        # the results stand in for the inbox
    await app.screenshot(path=screenshot_path("app-search"))

    await result.click()
    await app.locator("[data-testid=message]", has_text="пластиковые окна").wait_for()
    await box.focus()
    await box.press("Escape")
    await app.get_by_test_id("tab-new").wait_for()
    assert await box.input_value() == "" and not await app.get_by_test_id("search-results").is_visible()

    await box.fill("холодильник")
    await box.press("Enter")
    await app.locator("[data-testid=search-status]", has_text="Nothing found").wait_for()
    assert app.dialogs == [] and visitor.dialogs == []
