"""Reports (issue 24, item 4), the pure part (scheduler/report_rows.py and
parley/working_hours.working_time_between): rows from events, replay-proof, and what a
report counts - checked against counts made by hand."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from parley import working_hours as wh
from parley.envelope import Event

from scheduler import report_rows
from scheduler.report_rows import ReportRow

CID = "11111111-1111-4111-8111-111111111111"
ANNA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
BORIS = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)   # a Monday


def event(kind: str, version: int, at: datetime, **data) -> Event:
    return Event(type=kind, stream_id=f"conversation-{CID}", data=data, project_id="demo", stream_version=version,
                 occurred_at=at.isoformat())


STREAM = [
    event("chat.conversation_started", 1, T0, visitor_id="v", page_url=None),
    event("assignment.offered", 2, T0 + timedelta(seconds=5), offer_id="o1", operator_id=BORIS, operator_name="Boris",
          operator_avatar_url=None, seconds=30, mode="round_robin"),
    event("assignment.offer_expired", 3, T0 + timedelta(seconds=35), offer_id="o1", operator_id=BORIS),
    event("assignment.taken", 4, T0 + timedelta(seconds=60), operator_id=ANNA, operator_name="Anna",
          operator_avatar_url=None),
    event("chat.operator_replied", 5, T0 + timedelta(seconds=90), message_id="m1", operator_id=ANNA,
          operator_name="Anna", operator_avatar_url=None, text="Hi", attachment=None),
    event("chat.operator_replied", 6, T0 + timedelta(seconds=200), message_id="m2", operator_id=ANNA,
          operator_name="Anna", operator_avatar_url=None, text="More", attachment=None),
    event("status.changed", 7, T0 + timedelta(minutes=10), status="closed", by_operator_id=ANNA),
    event("chat.rated", 8, T0 + timedelta(minutes=11), rating=4, comment=None, operator_id=ANNA, operator_name="Anna"),
]


def fold(events, row=None):
    for e in events:
        row = report_rows.evolve(row, e)
    return row


def test_a_conversations_row_and_a_replay_of_any_part_changes_nothing():
    row = fold(STREAM)
    assert row == ReportRow(CID, "demo", 8, T0, assignee_id=ANNA, first_reply_at=T0 + timedelta(seconds=90),
                            first_reply_by=ANNA, closed_at=T0 + timedelta(minutes=10), rating=4)
    assert fold(STREAM, row) == row                      # the whole stream again
    assert fold(STREAM[3:5], row) == row                 # an old part again
    reopened = report_rows.evolve(row, event("status.changed", 9, T0 + timedelta(hours=1), status="in_work",
                                             by_operator_id=None))
    assert reopened.closed_at is None and report_rows.evolve(reopened, STREAM[6]) == reopened   # no stale close
    assert report_rows.evolve(None, STREAM[3]) is None   # a conversation never seen starting has no row
    assert report_rows.offer_expired(STREAM[2]).operator_id == BORIS
    assert report_rows.operator_names(STREAM[3]) == (ANNA, "Anna") and report_rows.operator_names(STREAM[0]) is None


def test_working_time_between_counts_open_time_only():
    week = {d: ((9 * 60, 18 * 60),) for d in ("mon", "tue", "wed", "thu", "fri")}
    moscow = wh.Schedule(show_any_time=False, time_zone="Europe/Moscow", week=week)
    friday_evening = datetime(2026, 12, 4, 14, 50, tzinfo=timezone.utc)     # 17:50 in Moscow
    monday_morning = datetime(2026, 12, 7, 6, 10, tzinfo=timezone.utc)      # 09:10 in Moscow
    assert wh.working_time_between(moscow, friday_evening, monday_morning) == timedelta(minutes=20)
    assert wh.working_time_between(moscow, monday_morning, friday_evening) == timedelta(0)
    assert wh.working_time_between(wh.DEFAULT, friday_evening, monday_morning) == monday_morning - friday_evening
    # the inverse of the timers' arithmetic
    assert wh.add_working_time(moscow, friday_evening, timedelta(minutes=20)) == monday_morning


def _row(n: int, day: int, *, assignee=ANNA, reply_after=None, close_after=None, rating=None) -> ReportRow:
    start = T0 + timedelta(days=day, minutes=n)
    return ReportRow(f"{n:08d}-0000-4000-8000-000000000000", "demo", 9, start, assignee_id=assignee,
                     first_reply_at=start + timedelta(seconds=reply_after) if reply_after is not None else None,
                     first_reply_by=assignee if reply_after is not None else None,
                     closed_at=start + timedelta(seconds=close_after) if close_after is not None else None,
                     rating=rating)


def test_a_report_equals_a_hand_count():
    rows = [_row(1, 0, reply_after=30, close_after=600, rating=5), _row(2, 0, reply_after=90, close_after=1200),
            _row(3, 0, assignee=None), _row(4, 1, assignee=BORIS, reply_after=60, rating=2),
            _row(5, 1, assignee=BORIS, reply_after=600, close_after=3600, rating=3)]
    offers = [report_rows.OfferExpired("o1", "demo", CID, BORIS, T0 + timedelta(days=1, hours=2))]
    by_day = report_rows.summarise(wh.DEFAULT, rows, offers, "day")
    monday, tuesday = date(2026, 11, 30), date(2026, 12, 1)
    assert by_day[monday] == {"conversations": 3, "missed": 1, "first_response_median_s": 60.0,
                              "first_response_p90_s": 90.0, "resolution_median_s": 900.0, "resolution_p90_s": 1200.0,
                              "offers_expired": 0, "csat_average": 5.0, "csat_count": 1}
    assert by_day[tuesday] == {"conversations": 2, "missed": 0, "first_response_median_s": 330.0,
                               "first_response_p90_s": 600.0, "resolution_median_s": 3600.0,
                               "resolution_p90_s": 3600.0, "offers_expired": 1, "csat_average": 2.5, "csat_count": 2}
    assert by_day["total"]["conversations"] == 5 and by_day["total"]["first_response_p90_s"] == 600.0
    by_operator = report_rows.summarise(wh.DEFAULT, rows, offers, "operator")
    assert by_operator[ANNA]["conversations"] == 2 and by_operator[None]["missed"] == 1
    assert by_operator[BORIS]["offers_expired"] == 1 and by_operator[BORIS]["csat_average"] == 2.5


def test_days_are_the_project_zones():
    late = [_row(1, 0)]   # 09:01 UTC on Monday
    tokyo = wh.Schedule(time_zone="Pacific/Kiritimati")   # UTC+14: already Monday 23:01
    honolulu = wh.Schedule(time_zone="Pacific/Honolulu")  # UTC-10: still Sunday 23:01
    assert set(report_rows.summarise(tokyo, late, [], "day")) == {date(2026, 11, 30), "total"}
    assert set(report_rows.summarise(honolulu, late, [], "day")) == {date(2026, 11, 29), "total"}
    start, end = report_rows.period(honolulu, date(2026, 11, 29), date(2026, 11, 29))
    assert start <= late[0].started_at < end and end - start == timedelta(days=1)
