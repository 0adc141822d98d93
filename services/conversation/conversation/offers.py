"""Acknowledged auto-assignment, the pure part: who is offered a new conversation next,
and the offer's three steps as events (issue 13, item 2).

- A project's `assignment_mode` is `manual` (nobody is offered anything: today's
  behaviour), `round_robin` or `least_busy`.
- A new conversation is offered to one online operator at a time (`assignment.offered`,
  with the offer's id and how long it stands). The operator Accepts
  (`assignment.accepted` + `status.changed` in_work: they are the assignee), or the
  scheduler's durable timer fires and the conversation service expires that very offer
  (`assignment.offer_expired`), offering it to the next operator in the same decision.
- Each operator is offered a conversation at most once per round (the state's
  `offered_ids`, reset when it becomes new again). When every online operator has let it
  expire, or nobody is online, the round is over: it waits in "New" as in manual mode,
  an operator who comes online and has not had it this round is offered it at once, and
  after a pause (auto_assign.Tuning.round_pause_seconds) a new round starts
  (`assignment.offered` with `new_round`: `offered_ids` starts again from that operator),
  so the same people are asked again until someone accepts. A conversation is never
  stranded in "New" while anyone is online (docs/architecture.md, Presence and
  acknowledged auto-assignment).
- Exactly one owner: an offer is void the moment anyone takes, is assigned, or accepts
  another offer (evolve clears it), and Accept needs the current offer id; expiring an
  offer that is no longer current appends nothing (idempotent by offer id)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parley.contract import canonical_uuid, conversation_stream
from parley.envelope import Event, new_event

from conversation.domain import Conversation, DomainError, Operator, _not_found, evolve

MODES = ("manual", "round_robin", "least_busy")
OFFER_SECONDS = (5, 600)
OFFER_SECONDS_DEFAULT = 30
CAPACITY = (1, 100)
CAPACITY_DEFAULT = 5


@dataclass(frozen=True)
class Settings:
    mode: str = "manual"
    offer_seconds: int = OFFER_SECONDS_DEFAULT
    default_capacity: int = CAPACITY_DEFAULT
    capacities: Mapping[str, int] | None = None   # operator id -> capacity (least_busy)

    def capacity_of(self, operator_id: str) -> int:
        return (self.capacities or {}).get(operator_id, self.default_capacity)


def _int_in(value: Any, bounds: tuple[int, int], field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise DomainError(f"{field}_invalid", f"{field} is a whole number from {bounds[0]} to {bounds[1]}.")
    return value


def parse_settings(body: Any) -> Settings:
    """The admin's body: {"assignment_mode", "offer_seconds", "default_capacity",
    "capacities": {operator id: n}}; every field is checked and named when refused."""
    if not isinstance(body, dict):
        raise DomainError("body_invalid", "Send {assignment_mode, offer_seconds, default_capacity, capacities}.")
    unknown = set(body) - {"assignment_mode", "offer_seconds", "default_capacity", "capacities"}
    if unknown:
        raise DomainError("field_unknown", f"Unknown field {sorted(unknown)[0]!r}.")
    mode = body.get("assignment_mode", "manual")
    if mode not in MODES:
        raise DomainError("assignment_mode_invalid", "assignment_mode is manual, round_robin or least_busy.")
    seconds = _int_in(body.get("offer_seconds", OFFER_SECONDS_DEFAULT), OFFER_SECONDS,
                      "offer_seconds")
    default_capacity = _int_in(body.get("default_capacity", CAPACITY_DEFAULT), CAPACITY, "default_capacity")
    capacities = body.get("capacities") or {}
    if not isinstance(capacities, dict) or len(capacities) > 1000:
        raise DomainError("capacities_invalid", "capacities maps operator ids to whole numbers.")
    for operator_id, n in capacities.items():
        if canonical_uuid(operator_id) != operator_id:
            raise DomainError("capacities_invalid", "capacities maps operator ids (UUIDs) to whole numbers.")
        _int_in(n, CAPACITY, "capacities")
    return Settings(mode, seconds, default_capacity, dict(capacities))


def settings_json(s: Settings) -> dict[str, Any]:
    return {"assignment_mode": s.mode, "offer_seconds": s.offer_seconds, "default_capacity": s.default_capacity,
            "capacities": dict(s.capacities or {})}


@dataclass(frozen=True)
class Candidate:
    """An operator who is online now (presence), as the registry names them."""
    id: str
    name: str
    avatar_url: str | None = None


def choose(settings: Settings, online: Sequence[Candidate], *, tried: Sequence[str] = (),
           last_offered: str | None = None, load: Mapping[str, int] | None = None) -> Candidate | None:
    """The next operator to offer a conversation to, or None (it waits in New).

    round_robin: the first online operator, in id order, after the one the project
    offered a conversation to last (wrapping), skipping those already tried.
    least_busy: among those under their capacity (open conversations plus standing
    offers, `load`), the least loaded; ties go round robin."""
    if settings.mode == "manual":
        return None
    pool = sorted((c for c in online if c.id not in tried), key=lambda c: c.id)
    if settings.mode == "least_busy":
        load = load or {}
        pool = [c for c in pool if load.get(c.id, 0) < settings.capacity_of(c.id)]
        if pool:
            least = min(load.get(c.id, 0) for c in pool)
            pool = [c for c in pool if load.get(c.id, 0) == least]
    if not pool:
        return None
    after = [c for c in pool if last_offered is not None and c.id > last_offered]
    return (after or pool)[0]


def _offered(state: Conversation, to: Candidate, offer_id: str, settings: Settings, new_round: bool) -> Event:
    data = {"offer_id": offer_id, "operator_id": to.id, "operator_name": to.name,
            "operator_avatar_url": to.avatar_url, "seconds": settings.offer_seconds, "mode": settings.mode}
    if new_round:
        data["new_round"] = True
    return new_event("assignment.offered", conversation_stream(state.id), data, project_id=state.project_id)


def open_for_offers(state: Conversation | None) -> bool:
    """New, nobody on it, no offer standing."""
    return state is not None and state.status == "new" and state.assignee_id is None and state.offer_id is None


def decide_offer(state: Conversation | None, to: Candidate | None, offer_id: str, settings: Settings,
                 *, new_round: bool = False) -> list[Event]:
    """Offer the conversation to `to` (chosen on a read that may be stale: the state
    decides). Nothing when it is not open for offers or `to` has had it this round;
    `new_round` starts the next round with `to` (the sweep asks for it once a round
    ended with nobody accepting and the pause is over)."""
    if to is None or settings.mode == "manual" or not open_for_offers(state):
        return []
    if to.id in state.offered_ids and not new_round:
        return []
    return [_offered(state, to, offer_id, settings, new_round)]


def decide_expire(state: Conversation | None, offer_id: str, next_to: Candidate | None, next_offer_id: str,
                  settings: Settings) -> list[Event]:
    """The offer's timer fired: expire exactly that offer and offer the conversation to
    `next_to` in the same decision. An offer that is no longer current (accepted,
    expired, the conversation taken): nothing."""
    if state is None:
        raise _not_found()
    if state.offer_id != offer_id:
        return []
    expired = new_event("assignment.offer_expired", conversation_stream(state.id),
                        {"offer_id": offer_id, "operator_id": state.offer_to}, project_id=state.project_id)
    after = evolve(state, expired)
    return [expired] + decide_offer(after, next_to, next_offer_id, settings)   # this round's next, if any


def decide_accept(state: Conversation | None, who: Operator, offer_id: Any) -> list[Event]:
    """The offered operator accepts: they become the assignee. Accepting again the offer
    one already holds appends nothing; any other offer id, or someone else's offer, is
    409 offer_gone (it expired, or the conversation went to someone else)."""
    if state is None or state.project_id != who.project_id:
        raise _not_found()
    if not isinstance(offer_id, str) or not offer_id:
        raise DomainError("offer_id_required", "Name the offer to accept (offer_id).")
    if state.assignee_id == who.id:
        return []   # already theirs (a retried Accept is also absorbed by its command id)
    if state.offer_id != offer_id or state.offer_to != who.id:
        owner = f" It is {state.assignee_name}'s now." if state.assignee_name else ""
        raise DomainError("offer_gone", f"This offer has expired or was withdrawn.{owner}", "conflict")
    stream = conversation_stream(state.id)
    return [new_event("assignment.accepted", stream, {"offer_id": offer_id, "operator_id": who.id,
                                                      "operator_name": who.name,
                                                      "operator_avatar_url": who.avatar_url},
                      project_id=state.project_id),
            new_event("status.changed", stream, {"status": "in_work", "by_operator_id": who.id},
                      project_id=state.project_id)]

