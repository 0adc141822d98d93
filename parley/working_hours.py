"""A project's working hours, as pure rules (no I/O): parsing and validating the schedule
body, whether the chat is open at an instant, when that next changes, and how much
working time has passed - used by the scheduler (boundaries, timers) and the gateway
(the widget's config). The body's shape is in docs/working-hours.md.

Times are local wall times in the project's IANA zone; every instant in and out is an
aware datetime (UTC preferred). An interval belongs to the local date it starts on and
may cross midnight (`end <= start`). The open time is the union of every day's
intervals, so a Saturday 22:00-02:00 and a Sunday 01:00-05:00 simply run together.

Daylight saving: an interval's ends are converted one by one, so 09:00-18:00 lasts 8
or 10 hours on a change day. A local time inside a spring-forward gap means the instant
the clocks jump; a repeated local time (fall back) means its first occurrence."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
INTERVALS_PER_DAY_MAX = 10
DATES_MAX = 366
TIME_ZONE_MAX = 64
ALERT_MINUTES_MAX = 24 * 60
IDLE_HOURS_MAX = 30 * 24
LOOKAHEAD_DAYS = 800         # how far the next opening is looked for before "never"
FIELDS = ("show_any_time", "time_zone", "week", "dates_off", "special_dates", "unanswered_alert_minutes",
          "idle_close_hours")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Interval = tuple[int, int]   # minutes from the local day's midnight; end > start, end <= start + 24 h


class ScheduleInvalid(ValueError):
    """A bad schedule body: `field` is the top-level key (the error code is
    `<field>_invalid`), the message names the exact place."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message

    @property
    def code(self) -> str:
        return "field_unknown" if self.field == "*" else f"{self.field}_invalid"


@dataclass(frozen=True)
class Schedule:
    show_any_time: bool = True
    time_zone: str = "UTC"
    week: dict[str, tuple[Interval, ...]] = field(default_factory=dict)
    dates_off: frozenset[date] = frozenset()
    special_dates: dict[date, tuple[Interval, ...]] = field(default_factory=dict)
    unanswered_alert_minutes: int | None = 5
    idle_close_hours: int | None = 24

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.special_dates:
            return self.special_dates[day]
        if day in self.dates_off:
            return ()
        return self.week.get(DAYS[day.weekday()], ())


DEFAULT = Schedule()


# ---- parsing ---------------------------------------------------------------------------

def _minutes(value: Any, where: str, top: str, *, end: bool) -> int:
    if not isinstance(value, str) or not _TIME.fullmatch(value) or (value == "24:00" and not end):
        raise ScheduleInvalid(top, f"{where}: {value!r} is not a time HH:MM (00:00-23:59"
                                   + (", or 24:00 for an end)" if end else ")"))
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _intervals(value: Any, where: str, top: str) -> tuple[Interval, ...]:
    if not isinstance(value, list) or len(value) > INTERVALS_PER_DAY_MAX:
        raise ScheduleInvalid(top, f"{where}: a list of at most {INTERVALS_PER_DAY_MAX} [start, end] intervals")
    out: list[Interval] = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ScheduleInvalid(top, f"{where}[{i}]: an interval is [\"HH:MM\", \"HH:MM\"]")
        start = _minutes(pair[0], f"{where}[{i}]", top, end=False)
        end = _minutes(pair[1], f"{where}[{i}]", top, end=True)
        if end <= start:                       # crosses midnight into the next day
            end += DAY_MINUTES
        out.append((start, end))
    ordered = sorted(out)
    for (a_start, a_end), (b_start, b_end) in zip(ordered, ordered[1:]):
        if b_start < a_end:
            raise ScheduleInvalid(top, f"{where}: {_hhmm(b_start)}-{_hhmm(b_end)} overlaps "
                                       f"{_hhmm(a_start)}-{_hhmm(a_end)}")
    return tuple(ordered)


def _date(value: Any, where: str, top: str) -> date:
    try:
        if isinstance(value, str) and _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ScheduleInvalid(top, f"{where}: {value!r} is not a date YYYY-MM-DD")


def _timer(body: dict, name: str, maximum: int, unit: str) -> int | None:
    value = body.get(name, getattr(DEFAULT, name))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ScheduleInvalid(name, f"{name}: whole {unit} from 1 to {maximum}, or null to switch it off")
    return value


def parse(body: Any) -> Schedule:
    """A Schedule from the API body; a field left out takes its default."""
    if not isinstance(body, dict):
        raise ScheduleInvalid("*", "The schedule is a JSON object.")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ScheduleInvalid("*", f"Unknown field: {unknown[0]}.")
    show = body.get("show_any_time", DEFAULT.show_any_time)
    if not isinstance(show, bool):
        raise ScheduleInvalid("show_any_time", "show_any_time: true or false")
    zone = body.get("time_zone", DEFAULT.time_zone)
    try:
        if not isinstance(zone, str) or not 1 <= len(zone) <= TIME_ZONE_MAX or zone.startswith(("/", ".")) \
                or ".." in zone:
            raise ValueError
        ZoneInfo(zone)
    except Exception:  # ZoneInfoNotFoundError, ValueError, IsADirectoryError ...
        raise ScheduleInvalid("time_zone", f"time_zone: {zone!r} is not an IANA time zone, "
                                           "like Europe/Moscow") from None
    week_body = body.get("week", {})
    if not isinstance(week_body, dict) or set(week_body) - set(DAYS):
        raise ScheduleInvalid("week", f"week: an object with days {', '.join(DAYS)}")
    week = {day: _intervals(week_body[day], f"week.{day}", "week") for day in DAYS if day in week_body}
    off_body = body.get("dates_off", [])
    if not isinstance(off_body, list) or len(off_body) > DATES_MAX:
        raise ScheduleInvalid("dates_off", f"dates_off: a list of at most {DATES_MAX} dates")
    dates_off = frozenset(_date(v, f"dates_off[{i}]", "dates_off") for i, v in enumerate(off_body))
    special_body = body.get("special_dates", {})
    if not isinstance(special_body, dict) or len(special_body) > DATES_MAX:
        raise ScheduleInvalid("special_dates", f"special_dates: an object of at most {DATES_MAX} dates")
    special = {}
    for key, value in special_body.items():
        day = _date(key, f"special_dates.{key}", "special_dates")
        if day in dates_off:
            raise ScheduleInvalid("special_dates", f"special_dates.{key}: the date is also in dates_off")
        special[day] = _intervals(value, f"special_dates.{key}", "special_dates")
    return Schedule(show, zone, week, dates_off, special, _timer(body, "unanswered_alert_minutes",
                                                                  ALERT_MINUTES_MAX, "minutes"),
                    _timer(body, "idle_close_hours", IDLE_HOURS_MAX, "hours"))


def _hhmm(minutes: int) -> str:
    if minutes == DAY_MINUTES:
        return "24:00"
    minutes %= DAY_MINUTES
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _intervals_json(intervals: tuple[Interval, ...]) -> list[list[str]]:
    return [[_hhmm(start), _hhmm(end)] for start, end in intervals]


def to_json(s: Schedule) -> dict[str, Any]:
    """The body shape, normalised (days in order, intervals sorted, dates sorted)."""
    return {"show_any_time": s.show_any_time, "time_zone": s.time_zone,
            "week": {day: _intervals_json(s.week[day]) for day in DAYS if day in s.week},
            "dates_off": sorted(d.isoformat() for d in s.dates_off),
            "special_dates": {d.isoformat(): _intervals_json(v) for d, v in sorted(s.special_dates.items())},
            "unanswered_alert_minutes": s.unanswered_alert_minutes, "idle_close_hours": s.idle_close_hours}


# ---- local wall time -> instants ---------------------------------------------------------

def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of `minutes` after the local midnight of `day` (wall clock)."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first                           # exists (the first of two, when repeated)
    # In a spring-forward gap: the instant the clocks jumped, between the two readings.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)
    high = first
    while high - low > timedelta(minutes=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) > naive:
            high = mid
        else:
            low = mid
    return high.replace(second=0, microsecond=0)


def open_intervals(s: Schedule, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The open periods (merged, in order) that end after `start`, up to LOOKAHEAD_DAYS."""
    zone = s.zone
    first_day = start.astimezone(zone).date() - timedelta(days=1)   # its intervals may cross into today
    current: tuple[datetime, datetime] | None = None
    for offset in range(LOOKAHEAD_DAYS + 2):
        day = first_day + timedelta(days=offset)
        for a, b in s.intervals_on(day):
            begin, end = _instant(day, a, zone), _instant(day, b, zone)
            if end <= begin:
                continue                           # swallowed by a clock change
            if current is not None and begin <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None and current[1] > start:
                yield current
            current = (begin, end)
    if current is not None and current[1] > start:
        yield current


# ---- the questions ------------------------------------------------------------------------

def is_open(s: Schedule, at: datetime) -> bool:
    if s.show_any_time:
        return True
    for begin, end in open_intervals(s, at):
        return begin <= at < end
    return False


def next_change(s: Schedule, at: datetime) -> datetime | None:
    """The next instant after `at` when is_open flips; None if it never does."""
    if s.show_any_time:
        return None
    for begin, end in open_intervals(s, at):
        return end if begin <= at else begin
    return None


def next_open_at(s: Schedule, at: datetime) -> datetime | None:
    """When the chat opens next: None when it is open now, or never opens."""
    if is_open(s, at):
        return None
    return next_change(s, at)


def add_working_time(s: Schedule, start: datetime, duration: timedelta) -> datetime | None:
    """The instant when `duration` of open time has passed since `start` (None if the
    schedule never gives that much). With show_any_time it is plain wall time."""
    if s.show_any_time:
        return start + duration
    remaining = duration
    for begin, end in open_intervals(s, start):
        begin = max(begin, start)
        if end - begin >= remaining:
            return begin + remaining
        remaining -= end - begin
    return None


def working_time_between(s: Schedule, start: datetime, end: datetime) -> timedelta:
    """Open time between two instants (the reports' first-response time, counted as the
    timers count): the inverse of add_working_time. With show_any_time, plain time."""
    if end <= start:
        return timedelta(0)
    if s.show_any_time:
        return end - start
    total = timedelta(0)
    for begin, finish in open_intervals(s, start):
        if begin >= end:
            break
        total += min(finish, end) - max(begin, start)
    return total
