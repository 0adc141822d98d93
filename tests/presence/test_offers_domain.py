"""Auto-assignment's pure part (conversation/offers.py): who is chosen next, and the
offer's steps - offered, expired (and moved on in the same decision), accepted - on
states folded from schema-checked events. Exactly one owner at any time."""
from __future__ import annotations

import uuid

import pytest

from conversation import domain, offers
from conversation.offers import Candidate, Settings
from tests.conversations.test_conversation_domain import ADMIN, OLGA, PETR, History, refusal, started

ROUND_ROBIN = Settings("round_robin", 30)
IDS = sorted(str(uuid.uuid4()) for _ in range(3))
A, B, C = (Candidate(i, n) for i, n in zip(IDS, ("Ann", "Bob", "Cid")))
OLGA_C, PETR_C = Candidate(OLGA.id, OLGA.name), Candidate(PETR.id, PETR.name)


def test_round_robin_rotates_after_the_last_offered_and_wraps():
    assert offers.choose(ROUND_ROBIN, [C, A, B]) == A
    assert offers.choose(ROUND_ROBIN, [C, A, B], last_offered=A.id) == B
    assert offers.choose(ROUND_ROBIN, [C, A, B], last_offered=B.id) == C
    assert offers.choose(ROUND_ROBIN, [C, A, B], last_offered=C.id) == A
    assert offers.choose(ROUND_ROBIN, [A, B, C], last_offered=A.id, tried=[B.id]) == C
    assert offers.choose(ROUND_ROBIN, [A, B], tried=[A.id, B.id]) is None   # everyone had it: New
    assert offers.choose(ROUND_ROBIN, []) is None                            # nobody online: New
    assert offers.choose(Settings("manual"), [A, B]) is None


def test_least_busy_takes_the_least_loaded_under_capacity():
    s = Settings("least_busy", 30, default_capacity=2, capacities={C.id: 5})
    assert offers.choose(s, [A, B, C], load={A.id: 1, B.id: 0, C.id: 3}) == B
    assert offers.choose(s, [A, B, C], load={A.id: 2, B.id: 2, C.id: 3}) == C   # A and B are full
    assert offers.choose(s, [A, B], load={A.id: 2, B.id: 2}) is None            # all full: it waits in New
    assert offers.choose(s, [A, B, C], load={A.id: 1, B.id: 1, C.id: 1}, last_offered=A.id) == B   # ties rotate


def offered(history: History, to: Candidate, settings: Settings = ROUND_ROBIN) -> str:
    offer_id = str(uuid.uuid4())
    assert history.add(offers.decide_offer(history.state, to, offer_id, settings))
    return offer_id


def test_an_offer_stands_alone_until_accepted_and_the_acceptor_owns_it():
    history = started()
    offer_id = offered(history, OLGA_C)
    assert history.state.offer_to == OLGA.id
    assert offers.decide_offer(history.state, PETR_C, str(uuid.uuid4()), ROUND_ROBIN) == []   # one at a time
    assert refusal(lambda: offers.decide_accept(history.state, PETR, offer_id)) == ("conflict", "offer_gone")
    events = history.add(offers.decide_accept(history.state, OLGA, offer_id))
    assert [e.type for e in events] == ["assignment.accepted", "status.changed"]
    state = history.state
    assert (state.assignee_id, state.status, state.offer_id) == (OLGA.id, "in_work", None)
    assert offers.decide_accept(state, OLGA, offer_id) == []                     # a retried Accept
    assert offers.decide_expire(state, offer_id, PETR_C, str(uuid.uuid4()), ROUND_ROBIN) == []   # too late: nothing


def test_expiry_moves_on_once_and_never_back_to_who_let_it_expire():
    history = started()
    first = offered(history, OLGA_C)
    events = history.add(offers.decide_expire(history.state, first, PETR_C, str(uuid.uuid4()), ROUND_ROBIN))
    assert [(e.type, e.data["operator_id"]) for e in events] == [("assignment.offer_expired", OLGA.id),
                                                                  ("assignment.offered", PETR.id)]
    # The same timer again (a retry after a crash): that offer is no longer current.
    assert offers.decide_expire(history.state, first, PETR_C, str(uuid.uuid4()), ROUND_ROBIN) == []
    # Olga let it expire: she is not offered it again this round.
    second = history.state.offer_id
    assert refusal(lambda: offers.decide_accept(history.state, OLGA, first)) == ("conflict", "offer_gone")
    events = history.add(offers.decide_expire(history.state, second, OLGA_C, str(uuid.uuid4()), ROUND_ROBIN))
    assert [e.type for e in events] == ["assignment.offer_expired"]
    assert history.state.status == "new" and history.state.offer_id is None     # it waits in New


def test_a_new_round_offers_it_again_to_who_let_it_expire_and_nothing_else_does():
    history = started()
    first = offered(history, OLGA_C)
    history.add(offers.decide_expire(history.state, first, None, str(uuid.uuid4()), ROUND_ROBIN))
    assert history.state.offer_id is None and history.state.offered_ids == (OLGA.id,)
    # Within the round Olga is not asked again; only a new round may.
    assert offers.decide_offer(history.state, OLGA_C, str(uuid.uuid4()), ROUND_ROBIN) == []
    [again] = history.add(offers.decide_offer(history.state, OLGA_C, str(uuid.uuid4()), ROUND_ROBIN, new_round=True))
    assert again.data["new_round"] is True
    assert history.state.offer_to == OLGA.id and history.state.offered_ids == (OLGA.id,)   # the round starts over
    # Petr, online now, is next in this round; a round never stacks a second offer.
    assert offers.decide_offer(history.state, PETR_C, str(uuid.uuid4()), ROUND_ROBIN, new_round=True) == []
    events = history.add(offers.decide_expire(history.state, again.data["offer_id"], PETR_C, str(uuid.uuid4()),
                                              ROUND_ROBIN))
    assert [e.type for e in events] == ["assignment.offer_expired", "assignment.offered"]
    assert "new_round" not in events[1].data and history.state.offered_ids == (OLGA.id, PETR.id)
    # A taken conversation gets no new round.
    history.add(domain.decide_take(history.state, PETR))
    assert offers.decide_offer(history.state, OLGA_C, str(uuid.uuid4()), ROUND_ROBIN, new_round=True) == []


def test_taking_or_assigning_voids_the_offer():
    history = started()
    offer_id = offered(history, OLGA_C)
    history.add(domain.decide_take(history.state, PETR))
    assert history.state.offer_id is None
    assert refusal(lambda: offers.decide_accept(history.state, OLGA, offer_id)) == ("conflict", "offer_gone")
    assert offers.decide_expire(history.state, offer_id, OLGA_C, str(uuid.uuid4()), ROUND_ROBIN) == []
    history = started()
    offer_id = offered(history, OLGA_C)
    history.add(domain.decide_assign(history.state, ADMIN, PETR))
    assert refusal(lambda: offers.decide_accept(history.state, OLGA, offer_id)) == ("conflict", "offer_gone")


def test_no_offer_for_taken_or_closed_conversations_or_in_manual_mode():
    assert offers.decide_offer(started(assignee=OLGA).state, PETR_C, str(uuid.uuid4()), ROUND_ROBIN) == []
    assert offers.decide_offer(started(assignee=OLGA, status="closed").state, PETR_C, str(uuid.uuid4()),
                               ROUND_ROBIN) == []
    assert offers.decide_offer(started().state, PETR_C, str(uuid.uuid4()), Settings("manual")) == []


def test_the_kept_state_keeps_the_offer():
    history = started()
    offered(history, OLGA_C)
    state = history.state
    assert domain.from_state(domain.to_state(state)) == domain.kept(state)
    assert domain.from_state({**domain.to_state(state), "format": 1}) is None   # older rows are rebuilt


@pytest.mark.parametrize("body, code", [
    ({"assignment_mode": "random"}, "assignment_mode_invalid"),
    ({"assignment_mode": "round_robin", "offer_seconds": 2}, "offer_seconds_invalid"),
    ({"assignment_mode": "least_busy", "default_capacity": 0}, "default_capacity_invalid"),
    ({"assignment_mode": "least_busy", "capacities": {"x": "many"}}, "capacities_invalid"),
    ({"mode": "round_robin"}, "field_unknown"),
])
def test_settings_are_checked_field_by_field(body, code):
    assert refusal(lambda: offers.parse_settings(body)) == ("invalid", code)
    assert offers.parse_settings({"assignment_mode": "least_busy", "offer_seconds": 45,
                                  "capacities": {A.id: 3}}).capacity_of(A.id) == 3
