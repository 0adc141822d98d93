"""Issue 23 in a real Chromium: an operator sets up two-factor login from their profile
(scans the QR code's key, confirms a code, sees ten recovery codes), logs out, logs in
with a code, then with a recovery code; the owner requires it, and an operator without it
gets the set-up screen and nothing else until it is done."""
import time

import pyotp

from tests.chromium import open_app, screenshot_path
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

PASSWORD = "operator-pass-1"


async def log_in(page, base: str, email: str) -> None:
    await page.goto(f"{base}/app/")
    await page.get_by_test_id("login-project").fill("demo")
    await page.get_by_test_id("login-email").fill(email)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-password").press("Enter")


async def enrol_in_the_page(page) -> tuple[str, list[str]]:
    await page.get_by_test_id("tf-enrol").click()
    await page.get_by_test_id("tf-qr").wait_for()
    secret = (await page.get_by_test_id("tf-secret").inner_text()).strip()
    assert await page.get_by_test_id("tf-qr").evaluate("img => img.complete && img.naturalWidth > 0")
    await page.get_by_test_id("tf-code").fill("000000")
    await page.get_by_test_id("tf-confirm").click()
    await page.get_by_test_id("tf-message").filter(has_text="does not match").wait_for()
    await page.get_by_test_id("tf-code").fill(pyotp.TOTP(secret).now())
    await page.get_by_test_id("tf-confirm").click()
    codes_list = page.get_by_test_id("tf-recovery-codes")
    await codes_list.wait_for()
    codes = [c.strip() for c in (await codes_list.inner_text()).split("\n") if c.strip()]
    assert len(codes) == 10
    return secret, codes


async def test_set_up_then_log_in_with_a_code_and_with_a_recovery_code(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await stack.add_operator(owner, "Sveta Secure")
    page = await (await browser.new_context(viewport={"width": 1366, "height": 860})).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await log_in(page, base, email)
    await page.get_by_test_id("tab-new").wait_for()
    await page.get_by_test_id("me-link").click()       # the profile: Settings › Security
    await page.get_by_test_id("tf-state").filter(has_text="Off").wait_for()
    await page.screenshot(path=screenshot_path("app-two-factor-off"))
    secret, codes = await enrol_in_the_page(page)
    await page.screenshot(path=screenshot_path("app-two-factor-recovery-codes"))
    await page.get_by_test_id("tf-done").click()
    await page.get_by_test_id("tf-state").filter(has_text="Recovery codes left: 10").wait_for()

    await page.get_by_test_id("logout").click()
    await log_in(page, base, email)
    await page.get_by_test_id("login-code-field").wait_for()
    await page.screenshot(path=screenshot_path("app-login-code"))
    await page.get_by_test_id("login-code").fill("111111")
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("login-error").filter(has_text="wrong").wait_for()
    await page.get_by_test_id("login-code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("tab-new").wait_for()

    await page.get_by_test_id("logout").click()
    await log_in(page, base, email)
    await page.get_by_test_id("login-code").fill(codes[3])
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("tab-new").wait_for()
    await page.get_by_test_id("me-link").click()
    await page.get_by_test_id("tf-state").filter(has_text="Recovery codes left: 9").wait_for()
    assert errors == []


async def test_a_required_second_factor_is_set_up_before_anything_else(stack, browser):
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await stack.add_operator(owner, "Nina New")
    # The owner sets up their own, then requires it of everyone from the same page.
    owner_page = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await owner_page.goto(f"{base}/app/#/settings/security")
    await enrol_in_the_page(owner_page)
    await owner_page.get_by_test_id("tf-done").click()
    await owner_page.get_by_test_id("tf-required").check()
    await owner_page.get_by_test_id("tf-owner-status").filter(has_text="Required").wait_for()
    await owner_page.screenshot(path=screenshot_path("app-two-factor-owner"))

    page = await (await browser.new_context(viewport={"width": 1366, "height": 860})).new_page()
    await log_in(page, base, email)
    await page.get_by_test_id("enrolment").wait_for()
    assert await page.get_by_test_id("tab-new").count() == 0
    await page.screenshot(path=screenshot_path("app-two-factor-required"))
    await enrol_in_the_page(page)
    await page.get_by_test_id("tf-done").click()
    await page.get_by_test_id("tab-new").wait_for()       # the app, now that it is set up


async def test_the_sessions_page_ends_another_device(stack, browser):
    """Issue 23: an operator sees where they are logged in and ends a session of another
    device from the page; that device is logged out at once."""
    base = str(stack.gateway.make_url("")).rstrip("/")
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await stack.add_operator(owner, "Two Devices")
    desk = await (await browser.new_context(viewport={"width": 1366, "height": 860})).new_page()
    phone = await (await browser.new_context(viewport={"width": 390, "height": 844},
                                             user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 Mobile/15E148 Safari/604.1")).new_page()
    for page in (phone, desk):
        await log_in(page, base, email)
        await page.get_by_test_id("tab-new").wait_for()
    await desk.get_by_test_id("me-link").click()
    sessions = desk.get_by_test_id("my-sessions")
    row = sessions.get_by_test_id("session").filter(has_text="Safari on iOS")
    await row.wait_for()
    assert await sessions.get_by_test_id("session-current").count() == 1
    await desk.screenshot(path=screenshot_path("app-sessions"))
    await row.get_by_test_id("session-end").click()
    await row.wait_for(state="detached")
    # The phone's app is told its session ended: back to the login form.
    await phone.get_by_test_id("login-password").wait_for(timeout=15000)
    r = await stack.call("GET", "/api/session", owner)
    assert r.status == 200      # nobody else's session was touched
    assert await sessions.get_by_test_id("session-end").count() == 1   # add_operator's own login stays listed
