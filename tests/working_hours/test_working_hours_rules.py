"""The working-hours rules (parley.working_hours), pure: Moscow boundaries, Berlin on
both daylight-saving change days, intervals crossing midnight, holidays and special
dates, show-any-time, working-time arithmetic, and the validation errors that name
their field."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from parley import working_hours as wh
from parley.working_hours import ScheduleInvalid, add_working_time, is_open, next_change, next_open_at


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def schedule(**body) -> wh.Schedule:
    return wh.parse({"show_any_time": False, **body})


MOSCOW = schedule(time_zone="Europe/Moscow", week={"mon": [["09:00", "18:00"]], "tue": [["09:00", "13:00"], ["14:00", "18:00"]],
                                                   "sat": [["22:00", "02:00"]]})


def test_moscow_boundaries():
    # Monday 2026-11-30; Moscow is UTC+3 all year.
    assert not is_open(MOSCOW, utc(2026, 11, 30, 5, 59))
    assert is_open(MOSCOW, utc(2026, 11, 30, 6, 0))
    assert next_change(MOSCOW, utc(2026, 11, 30, 6, 30)) == utc(2026, 11, 30, 15, 0)
    assert not is_open(MOSCOW, utc(2026, 11, 30, 15, 0))                  # the end is not open
    # Tuesday's lunch break, then Wednesday to Friday closed: next is Saturday 22:00.
    assert next_change(MOSCOW, utc(2026, 12, 1, 10, 0)) == utc(2026, 12, 1, 10, 0) + timedelta(hours=1)
    assert next_open_at(MOSCOW, utc(2026, 12, 1, 10, 30)) == utc(2026, 12, 1, 11, 0)
    assert next_open_at(MOSCOW, utc(2026, 12, 2, 12, 0)) == utc(2026, 12, 5, 19, 0)
    assert next_open_at(MOSCOW, utc(2026, 11, 30, 7, 0)) is None          # open now


def test_an_interval_crossing_midnight_runs_into_the_next_day():
    saturday_night = utc(2026, 12, 5, 19, 0)                               # Sat 22:00 Moscow
    assert is_open(MOSCOW, saturday_night)
    assert is_open(MOSCOW, utc(2026, 12, 5, 22, 59))                        # Sun 01:59
    assert not is_open(MOSCOW, utc(2026, 12, 5, 23, 0))                     # Sun 02:00
    assert next_change(MOSCOW, saturday_night) == utc(2026, 12, 5, 23, 0)
    assert next_open_at(MOSCOW, utc(2026, 12, 5, 23, 0)) == utc(2026, 12, 7, 6, 0)   # Monday 09:00


def test_a_holiday_closes_its_own_hours_but_not_the_night_before():
    s = schedule(time_zone="Europe/Moscow", week={"sun": [["22:00", "03:00"]], "mon": [["09:00", "18:00"]]},
                 dates_off=["2026-12-07"])
    assert is_open(s, utc(2026, 12, 6, 23, 30))                              # Mon 02:30, Sunday's interval
    assert not is_open(s, utc(2026, 12, 7, 7, 0))                            # Monday 10:00, a holiday
    assert next_open_at(s, utc(2026, 12, 7, 7, 0)) == utc(2026, 12, 13, 19, 0)   # next Sunday 22:00


def test_special_dates_replace_the_weekday():
    s = schedule(time_zone="Europe/Moscow", week={"wed": [["09:00", "18:00"]]},
                 special_dates={"2026-12-30": [["10:00", "15:00"]], "2026-12-31": [["11:00", "12:00"]]})
    assert not is_open(s, utc(2026, 12, 30, 6, 30))                          # 09:30: not on that day
    assert is_open(s, utc(2026, 12, 30, 7, 0))
    assert next_change(s, utc(2026, 12, 30, 7, 0)) == utc(2026, 12, 30, 12, 0)
    assert next_open_at(s, utc(2026, 12, 30, 12, 0)) == utc(2026, 12, 31, 8, 0)  # a Thursday with hours


BERLIN_SUNDAYS = schedule(time_zone="Europe/Berlin", week={"sun": [["01:00", "04:00"]]})


def test_berlin_spring_forward_day():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST. 01:00-04:00 local lasts two hours.
    opens, closes = utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0)
    assert next_open_at(BERLIN_SUNDAYS, utc(2026, 3, 28, 12, 0)) == opens
    assert next_change(BERLIN_SUNDAYS, opens) == closes
    assert add_working_time(BERLIN_SUNDAYS, opens, timedelta(hours=2)) == closes
    # one more minute waits for the next Sunday (01:00 CEST = 23:00 UTC on Saturday)
    assert add_working_time(BERLIN_SUNDAYS, opens, timedelta(hours=2, minutes=1)) == utc(2026, 4, 4, 23, 1)
    # An interval starting inside the gap starts when the clocks jump.
    gap = schedule(time_zone="Europe/Berlin", week={"sun": [["02:30", "05:00"]]})
    assert next_open_at(gap, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    assert next_change(gap, utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 3, 0)


def test_berlin_fall_back_day():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET. 01:00-04:00 local lasts four hours.
    opens, closes = utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0)
    assert next_open_at(BERLIN_SUNDAYS, utc(2026, 10, 24, 12, 0)) == opens
    assert next_change(BERLIN_SUNDAYS, opens) == closes
    assert add_working_time(BERLIN_SUNDAYS, opens, timedelta(hours=4)) == closes
    # A repeated local time means its first occurrence (CEST).
    again = schedule(time_zone="Europe/Berlin", week={"sun": [["02:30", "03:30"]]})
    assert next_open_at(again, utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 0, 30)
    assert next_change(again, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 2, 30)   # 03:30 CET


def test_show_any_time_is_always_open_and_counts_wall_time():
    s = wh.parse({"show_any_time": True, "time_zone": "Europe/Moscow", "week": {}})
    at = utc(2026, 11, 30, 3, 0)
    assert is_open(s, at) and next_change(s, at) is None and next_open_at(s, at) is None
    assert add_working_time(s, at, timedelta(minutes=5)) == at + timedelta(minutes=5)
    assert wh.DEFAULT.show_any_time and is_open(wh.DEFAULT, at)


def test_working_time_skips_closed_hours():
    # Monday 17:55 Moscow + 10 working minutes: 5 on Monday, 5 on Tuesday from 09:00.
    start = utc(2026, 11, 30, 14, 55)
    assert add_working_time(MOSCOW, start, timedelta(minutes=10)) == utc(2026, 12, 1, 6, 5)
    # Tuesday 12:55 + 10: over the lunch break.
    assert add_working_time(MOSCOW, utc(2026, 12, 1, 9, 55), timedelta(minutes=10)) == utc(2026, 12, 1, 11, 5)
    # From a closed time the count starts at the opening.
    assert add_working_time(MOSCOW, utc(2026, 12, 2, 0, 0), timedelta(minutes=1)) == utc(2026, 12, 5, 19, 1)


def test_a_schedule_that_never_opens():
    s = schedule(time_zone="UTC", week={})
    at = utc(2026, 11, 30)
    assert not is_open(s, at) and next_change(s, at) is None and next_open_at(s, at) is None
    assert add_working_time(s, at, timedelta(minutes=1)) is None


def test_to_json_normalises_and_round_trips():
    body = {"show_any_time": False, "time_zone": "Europe/Moscow",
            "week": {"tue": [["14:00", "18:00"], ["09:00", "13:00"]], "mon": [["22:00", "00:00"]]},
            "dates_off": ["2026-12-31", "2026-01-01"], "special_dates": {"2026-12-30": [["10:00", "15:00"]]},
            "unanswered_alert_minutes": None, "idle_close_hours": 48}
    out = wh.to_json(wh.parse(body))
    assert list(out["week"]) == ["mon", "tue"] and out["week"]["tue"][0] == ["09:00", "13:00"]
    assert out["week"]["mon"] == [["22:00", "24:00"]]
    assert out["dates_off"] == ["2026-01-01", "2026-12-31"]
    assert out["unanswered_alert_minutes"] is None and out["idle_close_hours"] == 48
    assert wh.parse(out) == wh.parse(body)
    assert wh.to_json(wh.parse({}))["unanswered_alert_minutes"] == 5            # defaults


@pytest.mark.parametrize("body, code, words", [
    ({"time_zone": "Mars/Base"}, "time_zone_invalid", "Mars/Base"),
    ({"time_zone": "../../etc/passwd"}, "time_zone_invalid", "IANA"),
    ({"time_zone": 3}, "time_zone_invalid", "IANA"),
    ({"week": {"tue": [["09:00", "14:00"], ["13:30", "15:00"]]}}, "week_invalid", "week.tue: 13:30-15:00 overlaps 09:00-14:00"),
    ({"week": {"mon": [["25:00", "26:00"]]}}, "week_invalid", "week.mon[0]"),
    ({"week": {"mon": [["24:00", "02:00"]]}}, "week_invalid", "week.mon[0]"),
    ({"week": {"mon": [["9:00", "18:00"]]}}, "week_invalid", "HH:MM"),
    ({"week": {"mon": "09:00-18:00"}}, "week_invalid", "week.mon"),
    ({"week": {"monday": []}}, "week_invalid", "days"),
    ({"week": {"mon": [["09:00", "18:00", "x"]]}}, "week_invalid", "week.mon[0]"),
    ({"dates_off": ["2026-02-30"]}, "dates_off_invalid", "dates_off[0]"),
    ({"dates_off": "2026-01-01"}, "dates_off_invalid", "dates_off"),
    ({"special_dates": {"30.12.2026": []}}, "special_dates_invalid", "30.12.2026"),
    ({"dates_off": ["2026-12-30"], "special_dates": {"2026-12-30": []}}, "special_dates_invalid", "also in dates_off"),
    ({"unanswered_alert_minutes": 0}, "unanswered_alert_minutes_invalid", "null"),
    ({"unanswered_alert_minutes": True}, "unanswered_alert_minutes_invalid", "minutes"),
    ({"idle_close_hours": 5.5}, "idle_close_hours_invalid", "hours"),
    ({"idle_close_hours": 721}, "idle_close_hours_invalid", "720"),
    ({"show_any_time": "yes"}, "show_any_time_invalid", "true or false"),
    ({"colour": "red"}, "field_unknown", "colour"),
])
def test_bad_schedules_name_their_field(body, code, words):
    with pytest.raises(ScheduleInvalid) as caught:
        wh.parse(body)
    assert caught.value.code == code and words in caught.value.message, caught.value.message


def test_a_body_that_is_not_an_object():
    with pytest.raises(ScheduleInvalid):
        wh.parse([])
