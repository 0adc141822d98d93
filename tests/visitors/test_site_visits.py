"""Issue 24, item 2: what a widget says of a visit, cleaned (gateway/live/site_visits.py),
and the live table's rules (gateway/live/site_visitors.py) - without I/O."""
from __future__ import annotations

import pytest

from gateway.live import site_visitors, site_visits
from gateway.live.site_visitors import LiveVisitors

NOW = 1_800_000_000_000


def test_a_page_frame_is_cut_to_size_and_stripped_never_refused():
    long_url = "https://shop.example/p?" + "utm_term=x&" * 500   # 5,500 characters
    page = site_visits.page_view({"url": long_url, "title": "Red\x00 chair\x07" + "!" * 500,
                                  "referrer": "https://search.example/?q=chair", "landing_url": long_url,
                                  "started_at": NOW - 60_000, "pages_seen": 3}, NOW)
    assert len(page["url"]) == site_visits.URL_MAX and page["url"] == long_url[:site_visits.URL_MAX]
    assert page["title"].startswith("Red chair!") and len(page["title"]) == site_visits.TITLE_MAX
    assert page["referrer"] == "https://search.example/?q=chair"
    assert page["started_at"] == NOW - 60_000 and page["pages_seen"] == 3
    assert page["utm"] == {"utm_term": "x"}


@pytest.mark.parametrize("frame", [
    {"url": 5, "title": ["x"], "referrer": {"a": 1}, "pages": "x", "pages_seen": "3", "started_at": "yesterday"},
    {"url": "javascript:alert(1)", "referrer": "data:text/html,hi", "pages": [{"url": "javascript:x"}, 7, None]},
    {},
])
def test_wrong_types_and_foreign_schemes_are_no_value(frame):
    page = site_visits.page_view(frame, NOW)
    assert page["url"] is None and page["referrer"] is None and page["pages"] == []
    assert page["started_at"] == NOW and page["pages_seen"] == 1


def test_a_visit_starts_at_most_a_day_ago_and_never_in_the_future():
    assert site_visits.page_view({"started_at": NOW + 10_000}, NOW)["started_at"] == NOW
    assert site_visits.page_view({"started_at": 0}, NOW)["started_at"] == NOW - site_visits.VISIT_MAX_SECONDS * 1000
    assert site_visits.page_view({"started_at": True}, NOW)["started_at"] == NOW


def test_the_last_pages_newest_first_with_the_current_one_on_top():
    pages = [{"url": f"https://shop.example/{n}", "title": f"Page {n}", "at": NOW - n * 1000} for n in range(1, 9)]
    page = site_visits.page_view({"url": "https://shop.example/now", "title": "Now", "pages": pages,
                                  "pages_seen": 2}, NOW)
    assert [p["url"] for p in page["pages"]] == ["https://shop.example/now"] + [f"https://shop.example/{n}"
                                                                             for n in range(1, 5)]
    assert page["pages_seen"] == 5   # at least the pages it lists


def test_utm_comes_from_the_landing_page_once_per_key():
    landing = "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_source=other&gclid=1&utm_campaign="
    assert site_visits.utm(landing) == {"utm_source": "newsletter", "utm_medium": "email"}
    assert site_visits.utm(None) == {} and site_visits.utm("https://[broken/?utm_source=x") == {}


def test_an_invitation_is_one_to_a_thousand_characters():
    assert site_visits.invitation_text("  Can I help?\x00 ") == "Can I help?"
    for bad, code in (("", "text_required"), ("   ", "text_required"), (None, "text_required"), (5, "text_required"),
                      ("x" * 1001, "text_too_long")):
        with pytest.raises(ValueError, match=code):
            site_visits.invitation_text(bad)


def _visit(visitor_id: str, project: str = "demo", **over) -> dict:
    return site_visits.visit(visitor_id, project, None, params={}, conversation_id=None, chatting=False,
                             invitation=None, connected_at=NOW) | over


def test_a_departure_counts_only_from_the_gateway_that_told_of_the_visitor_last():
    live = LiveVisitors(gateway="a")
    live.put(_visit("v1"), "a", 0.0)
    live.put(_visit("v1", url="https://shop.example/2"), "b", 1.0)   # the next page opened on gateway b
    live.drop("v1", "a")                                             # a's late "left" for the page before
    assert live.of_project("demo")[0]["url"] == "https://shop.example/2"
    live.drop("v1", "b")
    assert live.of_project("demo") == [] and live.by_project == {}
    assert live.to_push == {"demo": {"v1": None}}   # the watchers are told once, with the last word


def test_a_visit_moves_between_projects_index_and_all():
    live = LiveVisitors(gateway="a")
    live.put(_visit("v1", "p1"), "a", 0.0)
    live.put(_visit("v1", "p2"), "a", 0.0)
    assert live.of_project("p1") == [] and [v["project_id"] for v in live.of_project("p2")] == ["p2"]


def test_unchanged_refreshes_are_not_pushed_to_operators():
    live = LiveVisitors(gateway="a")
    live.put(_visit("v1"), "b", 0.0)
    live.to_push.clear()
    live.put(_visit("v1"), "b", 30.0)
    assert live.to_push == {} and live.known["v1"].refreshed == 30.0


def test_the_table_is_bounded(monkeypatch):
    monkeypatch.setattr(site_visitors, "MAX_KNOWN", 3)
    live = LiveVisitors(gateway="a")
    for n in range(5):
        live.put(_visit(f"v{n}"), "b", 0.0)
    assert sorted(live.known) == ["v0", "v1", "v2"]
    live.put(_visit("v0", url="https://shop.example/x"), "b", 1.0)   # those known still change
    assert live.known["v0"].visit["url"] == "https://shop.example/x"


def test_an_invitation_stands_until_it_lapses(monkeypatch):
    live = LiveVisitors(gateway="a")
    live.put(_visit("v1", invitation={"id": "i", "expires_at": NOW + 1000}), "b", 0.0)
    monkeypatch.setattr(site_visitors, "_now_ms", lambda: NOW)
    assert live.invitation("v1")["id"] == "i"
    monkeypatch.setattr(site_visitors, "_now_ms", lambda: NOW + 1000)
    assert live.invitation("v1") is None and live.invitation("nobody") is None
