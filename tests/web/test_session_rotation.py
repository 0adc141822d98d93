"""Issue 8, item 6 in a real Chromium: the operator app stays logged in while its
session token rotates underneath it (every minute here, with a 90 s grace, time moved
on by `Stack.elapse_sessions`; 24 h in production). Before, the gateway threw the
rotated token away on the inbox, the conversation routes and the socket, and the app
fell back to the login form once the old token's grace ran out."""
from tests.chromium import open_app, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

ROTATE_SECONDS, GRACE_SECONDS = 60, 90
PAST_GRACE = GRACE_SECONDS + 1   # longer than the grace: a token rotated out before this wait is dead after it


async def session_cookie(page) -> str:
    return next(c["value"] for c in await page.context.cookies() if c["name"] == "parley_session")


async def still_in_the_app(page, what: str) -> None:
    await page.get_by_test_id("tab-new").wait_for(timeout=15000)
    assert await page.get_by_test_id("login-email").count() == 0, f"{what}: the app shows the login form"


async def test_the_app_stays_logged_in_across_rotations(stack, browser, monkeypatch):
    monkeypatch.setenv("PARLEY_SESSION_ROTATE_SECONDS", str(ROTATE_SECONDS))
    monkeypatch.setenv("PARLEY_SESSION_ROTATION_GRACE_SECONDS", str(GRACE_SECONDS))
    base = str(stack.gateway.make_url("")).rstrip("/")
    page = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    cookies = [await session_cookie(page)]

    for round_ in range(4):
        await stack.elapse_sessions(PAST_GRACE)
        if round_ % 2 == 0:
            await page.reload()          # a fresh start: /api/session, the inbox, the socket
        else:
            await page.get_by_test_id("tab-mine").click()   # a REST call from the running app
            await page.get_by_test_id("tab-new").click()
        await still_in_the_app(page, f"round {round_}")
        cookies.append(await session_cookie(page))

    # The cookie really rotated on the way (so the app lived on new tokens, not on the first one).
    assert len(set(cookies)) >= 3, cookies
    await stack.elapse_sessions(PAST_GRACE)
    await page.reload()
    await still_in_the_app(page, "last reload")
    await page.screenshot(path=screenshot_path("app-after-session-rotations"))
    r = await stack.call("GET", "/api/session", cookies[0])
    assert r.status == 401  # the first token is long dead: the app survived on its successors
