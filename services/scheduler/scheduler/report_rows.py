"""Reports (issue 24, item 4), the pure part: what each conversation event does to the
conversation's report row, and what a report counts from the rows. No I/O.

A report row holds no personal data - when the conversation started, who it is
assigned to, when an operator first replied and who, when it was closed (while it is),
its rating - and the stream version of the last event applied: an event at or below it
changes nothing, so a redelivered or replayed event leaves the row as it was, and a
rebuild from the topic makes the same rows (`evolve`). Offers that expired are kept
apart, one row per offer (`offer_expired`), so each counts once.

What a report counts, per group (a local day of the project's time zone, or an operator):
- conversations: started in the period (the day they started; the operator they are
  assigned to now, or nobody);
- missed: of those, with no operator reply;
- first response: from the start to the first operator reply, in working time as the
  timers count it (parley/working_hours.py; plain time when the project shows the chat
  at any time), median and p90 (nearest rank) over those replied to;
- resolution: from the start to the close, for those closed now, median and p90;
- offers expired: offers that lapsed in the period (the day they lapsed; the operator
  who let them);
- CSAT: the average rating and how many, of the conversations counted."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from parley import working_hours as wh
from parley.contract import id_of
from parley.envelope import Event

EVENT_TYPES = frozenset({"chat.conversation_started", "chat.operator_replied", "assignment.taken",
                         "assignment.assigned", "assignment.accepted", "assignment.offered",
                         "assignment.offer_expired", "status.changed", "chat.rated"})


@dataclass(frozen=True)
class ReportRow:
    conversation_id: str
    project_id: str
    version: int
    started_at: datetime
    assignee_id: str | None = None
    first_reply_at: datetime | None = None
    first_reply_by: str | None = None
    closed_at: datetime | None = None
    rating: int | None = None


@dataclass(frozen=True)
class OfferExpired:
    offer_id: str
    project_id: str
    conversation_id: str
    operator_id: str
    at: datetime


def _at(event: Event) -> datetime:
    return datetime.fromisoformat(event.occurred_at)


def evolve(row: ReportRow | None, event: Event) -> ReportRow | None:
    """The row after `event` (None: a conversation this projection has not seen start)."""
    if event.type == "chat.conversation_started":
        return row or ReportRow(id_of(event.stream_id), event.project_id, event.stream_version, _at(event))
    if row is None or event.stream_version <= row.version:
        return row
    d, moved = event.data, replace(row, version=event.stream_version)
    match event.type:
        case "assignment.taken" | "assignment.assigned" | "assignment.accepted":
            return replace(moved, assignee_id=d["operator_id"])
        case "chat.operator_replied" if row.first_reply_at is None:
            return replace(moved, first_reply_at=_at(event), first_reply_by=d["operator_id"])
        case "status.changed":
            return replace(moved, closed_at=_at(event) if d["status"] == "closed" else None)
        case "chat.rated":
            return replace(moved, rating=d["rating"])
    return moved


def offer_expired(event: Event) -> OfferExpired | None:
    if event.type != "assignment.offer_expired":
        return None
    return OfferExpired(event.data["offer_id"], event.project_id, id_of(event.stream_id), event.data["operator_id"],
                        _at(event))


def operator_names(event: Event) -> tuple[str, str] | None:
    """(operator id, name) an event tells, for naming the operators of a report."""
    d = event.data
    if isinstance(d.get("operator_id"), str) and isinstance(d.get("operator_name"), str):
        return d["operator_id"], d["operator_name"]
    return None


# ---- counting ------------------------------------------------------------------------

def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def period(schedule: wh.Schedule, first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) instants of the local days first..last in the project's zone."""
    zone = schedule.zone
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    return start, end


def summarise(schedule: wh.Schedule, rows: Iterable[ReportRow], offers: Iterable[OfferExpired],
              group: str) -> dict[Any, dict[str, Any]]:
    """Each group's figures (group 'day': a local date; 'operator': an operator id, None
    for nobody), and 'total' over all, even when there is nothing."""
    zone = schedule.zone
    rows = list(rows)
    # Each first response in working time once, whichever groups the row counts in.
    response = {r.conversation_id: wh.working_time_between(schedule, r.started_at, r.first_reply_at).total_seconds()
                for r in rows if r.first_reply_at}

    def key(at: datetime, operator: str | None) -> Any:
        return at.astimezone(zone).date() if group == "day" else operator

    bins: dict[Any, tuple[list[ReportRow], list[OfferExpired]]] = {"total": ([], [])}
    for row in rows:
        for k in (key(row.started_at, row.assignee_id), "total"):
            bins.setdefault(k, ([], []))[0].append(row)
    for offer in offers:
        for k in (key(offer.at, offer.operator_id), "total"):
            bins.setdefault(k, ([], []))[1].append(offer)
    return {k: figures(rows_in, offers_in, response) for k, (rows_in, offers_in) in bins.items()}


def figures(rows: list[ReportRow], offers: list[OfferExpired], response: dict[str, float]) -> dict[str, Any]:
    """One group's figures; `response`: each replied conversation's first response, in seconds."""
    replied = [response[r.conversation_id] for r in rows if r.first_reply_at]
    resolved = [(r.closed_at - r.started_at).total_seconds() for r in rows if r.closed_at]
    ratings = [r.rating for r in rows if r.rating is not None]
    return {"conversations": len(rows), "missed": sum(1 for r in rows if r.first_reply_at is None),
            "first_response_median_s": _median(replied), "first_response_p90_s": nearest_rank(replied, 90),
            "resolution_median_s": _median(resolved), "resolution_p90_s": nearest_rank(resolved, 90),
            "offers_expired": len(offers),
            "csat_average": round(sum(ratings) / len(ratings), 2) if ratings else None, "csat_count": len(ratings)}
