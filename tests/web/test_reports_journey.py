"""Reports (issue 24, item 4) in a real Chromium: an admin opens Reports for a seeded
week (tests/reports/seed.py: appended to the conversation service's store with the
times they happened, projected by the scheduler from the topic) and the table equals
the hand count, day by day and in total, with the chart drawn beside it."""
from datetime import datetime, timezone

from parley.service import POOL

from tests.chromium import open_app, screenshot_path
from tests.reports.seed import hand_count, plan_week, seed
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

SHOWN = ("conversations", "missed", "offers_expired", "csat_count")


def minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{round(seconds) // 60} min"


async def test_the_report_for_a_seeded_week_equals_a_hand_count(sched_stack, browser):
    week = plan_week(datetime.now(timezone.utc).date())
    count = await seed(sched_stack, week)

    async def projected():
        return await sched_stack.scheduler.app[POOL].fetchval(
            "select count(*) from report_conversations where closed_at is not null") == count
    await eventually(projected, timeout=60, what="the seeded week projected")

    base = str(sched_stack.gateway.make_url("")).rstrip("/")
    app = await open_app(browser, base, OWNER_EMAIL, OWNER_PASSWORD)
    await app.get_by_test_id("reports-link").click()
    await app.get_by_test_id("report-from").fill(week.first.isoformat())
    await app.get_by_test_id("report-to").fill(week.last.isoformat())
    await app.get_by_test_id("report-show").click()
    await app.locator(f"[data-testid=report-row][data-key='{week.first.isoformat()}']").wait_for(timeout=15000)
    for key, plans in [*((p.day.isoformat(), None) for p in week.plan), ("total", None)]:
        expected = hand_count([p for p in week.plan if key == "total" or p.day.isoformat() == key])
        row = app.locator(f"[data-testid=report-row][data-key='{key}']")
        cells = {c: await row.locator(f"td[data-column={c}]").inner_text() for c in (*SHOWN, "csat_average",
                                                                                    "first_response_median_s")}
        assert {c: cells[c] for c in SHOWN} == {c: str(expected[c]) for c in SHOWN}, key
        assert cells["csat_average"] == ("—" if expected["csat_average"] is None else
                                         f"{expected['csat_average']:g}"), key
        assert cells["first_response_median_s"] == minutes(expected["first_response_median_s"]), key
    assert await app.locator("[data-testid=report-chart] rect.bar").count() == 7
    await app.screenshot(path=screenshot_path("app-reports"), full_page=True)
    csv = app.get_by_test_id("report-csv")
    assert "format=csv" in await csv.get_attribute("href")
    assert app.dialogs == []
