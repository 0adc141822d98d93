"""A week of conversations for the reports' tests, appended to the conversation service's
event store with the times they happened (the relay publishes them; the scheduler's
report projection reads them from the topic like any other), and the week's figures
counted by hand from the same plan - plain loops, not report_rows."""
from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from parley.envelope import Event
from parley.service import STORE


@dataclass
class Planned:
    day: date
    start: datetime
    operator: str | None          # the name of whoever has it at the end
    reply_after: int | None       # seconds to the first reply
    close_after: int              # seconds to the close
    rating: int | None
    expired_offer_of: str | None  # an offer that lapsed, whose


@dataclass
class Week:
    first: date
    last: date
    operators: dict[str, str] = field(default_factory=dict)   # name -> id
    plan: list[Planned] = field(default_factory=list)


def plan_week(today: date) -> Week:
    week = Week(today - timedelta(days=7), today - timedelta(days=1),
                {"Anna": str(uuid.uuid4()), "Boris": str(uuid.uuid4())})
    for i in range(7):
        day = week.first + timedelta(days=i)
        for j in range(i % 3 + 1):
            start = datetime.combine(day, time(10, 0), timezone.utc) + timedelta(minutes=30 * j)
            if j == 0:
                week.plan.append(Planned(day, start, "Anna", 120, 1800, i % 5 + 1, "Boris" if i % 2 == 0 else None))
            elif j == 1:
                week.plan.append(Planned(day, start, "Boris", 300 + 60 * i, 3600, None, None))
            else:
                week.plan.append(Planned(day, start, None, None, 7200, None, None))   # nobody answered
    return week


def _events(week: Week, p: Planned, project: str) -> list[Event]:
    stream = f"conversation-{uuid.uuid4()}"

    def at(seconds: float) -> str:
        return (p.start + timedelta(seconds=seconds)).isoformat()

    def ev(kind: str, after: float, **data) -> Event:
        return Event(type=kind, stream_id=stream, data=data, occurred_at=at(after), project_id=project)

    def who(name: str) -> dict:
        return {"operator_id": week.operators[name], "operator_name": name, "operator_avatar_url": None}

    out = [ev("chat.conversation_started", 0, visitor_id=f"seed-{uuid.uuid4().hex[:12]}", page_url=None),
           ev("chat.visitor_message_posted", 1, message_id=str(uuid.uuid4()), text="Hello?", attachment=None)]
    if p.expired_offer_of:
        offer = str(uuid.uuid4())
        out += [ev("assignment.offered", 5, offer_id=offer, **who(p.expired_offer_of), seconds=30, mode="round_robin"),
                ev("assignment.offer_expired", 35, offer_id=offer, operator_id=week.operators[p.expired_offer_of])]
    if p.operator:
        out += [ev("assignment.taken", 40, **who(p.operator)),
                ev("status.changed", 40, status="in_work", by_operator_id=week.operators[p.operator])]
    if p.reply_after is not None:
        out.append(ev("chat.operator_replied", p.reply_after, message_id=str(uuid.uuid4()), **who(p.operator),
                      text="Hi, how can I help?", attachment=None))
    out.append(ev("status.changed", p.close_after, status="closed",
                  by_operator_id=week.operators[p.operator] if p.operator else None))
    if p.rating:
        out.append(ev("chat.rated", p.close_after + 60, rating=p.rating, comment=None, **{
            k: v for k, v in who(p.operator).items() if k != "operator_avatar_url"}))
    return out


async def seed(stack, week: Week, project: str = "demo") -> int:
    store = stack.conversation.app[STORE]
    for p in week.plan:
        await store.append(_events(week, p, project), 0)
    return len(week.plan)


def _nearest_rank_p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = -(-9 * len(ordered) // 10)   # ceil(0.9 n)
    return ordered[k - 1]


def hand_count(plans: list[Planned]) -> dict:
    replies = [p.reply_after for p in plans if p.reply_after is not None]
    closes = [p.close_after for p in plans]
    ratings = [p.rating for p in plans if p.rating]
    return {"conversations": len(plans), "missed": sum(1 for p in plans if p.reply_after is None),
            "first_response_median_s": float(statistics.median(replies)) if replies else None,
            "first_response_p90_s": float(_nearest_rank_p90(replies)) if replies else None,
            "resolution_median_s": float(statistics.median(closes)) if closes else None,
            "resolution_p90_s": float(_nearest_rank_p90(closes)) if closes else None,
            "offers_expired": sum(1 for p in plans if p.expired_offer_of),
            "csat_average": round(sum(ratings) / len(ratings), 2) if ratings else None, "csat_count": len(ratings)}
