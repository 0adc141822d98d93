"""Read receipts and CSAT, the pure decisions (conversation/receipts.py, ratings.py):
reads are monotonic, idempotent and clamped to the other side's last message; a
rating is once, of a closed conversation, by its own visitor."""
from __future__ import annotations

import uuid

import pytest

from conversation import domain, ratings, receipts
from conversation.domain import DomainError
from tests.conversations.test_conversation_domain import ADMIN, OLGA, PETR, STRANGER, History, started, visitor_says


def _reply(history: History, who=OLGA, text="Hello, how can I help?"):
    return history.add(domain.decide_reply(history.state, who, str(uuid.uuid4()), text, None))


def test_an_operator_reads_up_to_the_visitors_last_message_once():
    h = started(OLGA)                           # 1 started, 2 message, 3 taken, 4 in_work
    visitor_says(h, "Anyone?")                  # 5
    [read] = h.add(receipts.decide_operator_read(h.state, OLGA, 99))   # clamped to the last visitor message
    assert read.type == "chat.read_by_operator" and read.data["seq"] == 5 and read.data["operator_name"] == "Olga"
    assert receipts.decide_operator_read(h.state, OLGA, 5) == []       # the same again: nothing
    assert receipts.decide_operator_read(h.state, OLGA, 2) == []       # older: nothing (monotonic)
    assert receipts.decide_operator_read(h.state, ADMIN, 9) == []      # read is read, whoever looks next
    visitor_says(h, "Still there?")             # 7
    [later] = h.add(receipts.decide_operator_read(h.state, ADMIN, 7))
    assert later.data["seq"] == 7 and h.state.read_by_operator_seq == 7


def test_only_operators_who_may_see_it_mark_it_read():
    h = started(OLGA)
    with pytest.raises(DomainError) as e:
        receipts.decide_operator_read(h.state, PETR, 2)   # Olga's conversation: Petr does not see it
    assert e.value.code == "not_found"
    with pytest.raises(DomainError):
        receipts.decide_operator_read(h.state, STRANGER, 2)
    # Previewing one in "New" (an admin, or anyone) promises the visitor nothing (issue 19);
    # whoever takes it reads it.
    unclaimed = started()
    assert receipts.decide_operator_read(unclaimed.state, PETR, 2) == []
    assert receipts.decide_operator_read(unclaimed.state, ADMIN, 2) == []
    unclaimed.add(domain.decide_take(unclaimed.state, PETR))
    assert receipts.decide_operator_read(unclaimed.state, PETR, 2)
    with pytest.raises(DomainError) as e:
        receipts.decide_operator_read(h.state, OLGA, "2")
    assert e.value.code == "seq_invalid"


def test_the_visitor_reads_the_operators_replies_and_only_their_own_conversation():
    h = started(OLGA)
    assert receipts.decide_visitor_read(h.state, "v1", 4) == []          # no reply yet: nothing to read
    _reply(h)                                                            # 5
    [seen] = h.add(receipts.decide_visitor_read(h.state, "v1", 5))
    assert seen.type == "chat.read_by_visitor" and seen.data == {"seq": 5}
    assert receipts.decide_visitor_read(h.state, "v1", 5) == []
    with pytest.raises(DomainError) as e:
        receipts.decide_visitor_read(h.state, "someone-else", 5)
    assert e.value.code == "not_found"


def test_a_closed_conversation_is_rated_once_by_its_visitor():
    h = started(OLGA)
    with pytest.raises(DomainError) as e:
        ratings.decide_rating(h.state, "v1", 5, None)
    assert (e.value.code, e.value.kind) == ("not_closed", "conflict")
    h.add(domain.decide_status(h.state, OLGA, "closed"))
    with pytest.raises(DomainError) as e:
        ratings.decide_rating(h.state, "intruder", 1, "bad")
    assert e.value.code == "not_found"
    for bad in (0, 6, "5", 4.5, True, None):
        with pytest.raises(DomainError) as e:
            ratings.decide_rating(h.state, "v1", bad, None)
        assert e.value.code == "rating_invalid"
    with pytest.raises(DomainError) as e:
        ratings.decide_rating(h.state, "v1", 4, "x" * 1001)
    assert e.value.code == "comment_invalid"
    [rated] = h.add(ratings.decide_rating(h.state, "v1", 4, "  Quick and kind \x00 "))
    assert rated.data == {"rating": 4, "comment": "Quick and kind", "operator_id": OLGA.id, "operator_name": "Olga"}
    with pytest.raises(DomainError) as e:
        ratings.decide_rating(h.state, "v1", 5, None)
    assert (e.value.code, e.value.kind) == ("already_rated", "conflict")


def test_an_unclaimed_closed_conversation_is_rated_without_an_operator():
    h = started()
    h.add(domain.decide_status(h.state, ADMIN, "closed"))
    [rated] = h.add(ratings.decide_rating(h.state, "v1", 2, ""))
    assert rated.data == {"rating": 2, "comment": None, "operator_id": None, "operator_name": None}


def test_the_kept_row_round_trips_the_marks():
    h = started(OLGA)
    _reply(h)
    h.add(receipts.decide_visitor_read(h.state, "v1", 5))
    h.add(receipts.decide_operator_read(h.state, OLGA, 5))
    h.add(domain.decide_status(h.state, OLGA, "closed"))
    h.add(ratings.decide_rating(h.state, "v1", 5, None))
    assert domain.from_state(domain.to_state(h.state)) == domain.kept(h.state)
    assert h.state.rated and h.state.read_by_visitor_seq == 5 and h.state.read_by_operator_seq == 2
