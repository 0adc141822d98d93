"""The closed-hours rule and the idle close in the Conversation aggregate, without I/O
(docs/working-hours.md): while closed nothing starts or reopens a conversation, one
that is going carries on; the offline form starts a conversation marked
left_while_closed; the idle timer closes once, with its reason."""
from __future__ import annotations

import uuid

import pytest

from conversation import domain
from conversation.domain import DomainError
from tests.conversations.test_conversation_domain import OLGA, PROJECT, History

VISITOR = "v-1"


def message(h: History, cid: str, text: str = "hi", *, chat_open: bool = True, message_id: str | None = None):
    return domain.decide_visitor_message(h.state, conversation_id=cid, project_id=PROJECT, visitor_id=VISITOR,
                                         message_id=message_id or str(uuid.uuid4()), text=text, attachment=None,
                                         page_url="https://shop.example/", chat_open=chat_open)


def offline(h: History, cid: str, *, message_id: str = "m-1", chat_open: bool = False, previous=None, **contacts):
    return domain.decide_offline(h.state, conversation_id=cid, project_id=PROJECT, visitor_id=VISITOR,
                                 message_id=message_id, contacts=contacts or {"phone": "8 900 123-45-67"},
                                 text="Call me tomorrow", page_url="https://shop.example/", params={"product": "X"},
                                 chat_open=chat_open, previous_conversation_id=previous)


def test_closed_a_first_message_or_contacts_start_nothing():
    h, cid = History(), str(uuid.uuid4())
    with pytest.raises(DomainError) as e:
        message(h, cid, chat_open=False)
    assert e.value.code == "chat_closed" and e.value.kind == "conflict"
    with pytest.raises(DomainError) as e:
        domain.decide_contacts(None, {"name": "Vera"}, conversation_id=cid, project_id=PROJECT, visitor_id=VISITOR,
                               chat_open=False)
    assert e.value.code == "chat_closed"


def test_closed_a_conversation_that_is_going_carries_on_but_a_closed_one_does_not_reopen():
    h, cid = History(), str(uuid.uuid4())
    first = str(uuid.uuid4())
    h.add(message(h, cid, message_id=first))
    assert [e.type for e in h.add(message(h, cid, "still here", chat_open=False))] == ["chat.visitor_message_posted"]
    h.add(domain.decide_take(h.state, OLGA))
    h.add(domain.decide_status(h.state, OLGA, "closed"))
    with pytest.raises(DomainError) as e:
        message(h, cid, "again", chat_open=False)
    assert e.value.code == "chat_closed"
    assert message(h, cid, chat_open=False, message_id=first) == []   # a resend of a stored message is not a start


def test_the_offline_form_starts_a_left_while_closed_conversation_with_contacts_and_message():
    h, cid = History(), str(uuid.uuid4())
    events = h.add(offline(h, cid, name="Vera", phone="8 900 123-45-67"))
    assert [e.type for e in events] == ["chat.conversation_started", "chat.custom_params_set", "chat.contacts_given",
                                        "chat.visitor_message_posted"]
    assert events[0].data["left_while_closed"] is True
    assert events[2].data["phone"] == "+79001234567"
    assert events[3].data == {"message_id": "m-1", "text": "Call me tomorrow", "attachment": None}
    state = h.state
    assert state.left_while_closed and state.contacts["name"] == "Vera"
    assert offline(h, cid) == []                       # the same form again: nothing


def test_the_offline_form_needs_a_phone_or_an_email_and_a_message():
    h, cid = History(), str(uuid.uuid4())
    with pytest.raises(DomainError) as e:
        offline(h, cid, name="Only a name")
    assert e.value.code == "contact_required"
    with pytest.raises(DomainError) as e:
        domain.decide_offline(None, conversation_id=cid, project_id=PROJECT, visitor_id=VISITOR, message_id="m",
                              contacts={"email": "a@b.co"}, text="  ", page_url=None)
    assert e.value.code == "text_empty"
    with pytest.raises(DomainError) as e:
        offline(h, cid, email="not-an-email")
    assert e.value.code == "email_invalid"


def test_the_offline_form_after_a_closed_conversation_links_it_and_while_open_is_not_marked():
    h, cid = History(), str(uuid.uuid4())
    events = h.add(offline(h, cid, chat_open=True, previous="6f1c1d58-3c1e-4a8f-9d7e-2b7f1c5e0a11", email="a@b.co"))
    assert "left_while_closed" not in events[0].data
    assert events[0].data["previous_conversation_id"] == "6f1c1d58-3c1e-4a8f-9d7e-2b7f1c5e0a11"


def test_the_offline_form_into_a_conversation_that_is_going_adds_to_it():
    h, cid = History(), str(uuid.uuid4())
    h.add(message(h, cid))
    events = h.add(offline(h, cid, message_id="m-2", email="a@b.co"))
    assert [e.type for e in events] == ["chat.contacts_given", "chat.visitor_message_posted"]
    assert not h.state.left_while_closed


def test_idle_close_once_with_its_reason():
    h, cid = History(), str(uuid.uuid4())
    h.add(message(h, cid))
    events = h.add(domain.decide_close_idle(h.state, 24))
    assert [(e.type, e.data) for e in events] == [
        ("status.changed", {"status": "closed", "by_operator_id": None, "reason": "idle", "idle_hours": 24})]
    assert domain.decide_close_idle(h.state, 24) == []
    with pytest.raises(DomainError):
        domain.decide_close_idle(None, 24)
    for bad in (0, 721, "24", True, None):
        h2 = History()
        h2.add(message(h2, str(uuid.uuid4())))
        with pytest.raises(DomainError) as e:
            domain.decide_close_idle(h2.state, bad)
        assert e.value.code == "hours_invalid"


def test_idle_close_waits_when_a_message_came_after_the_event_that_set_the_timer():
    """The scheduler sets the idle timer at the start (and on status changes), not on
    every message: a message either way after that event keeps the conversation open."""
    h, cid = History(), str(uuid.uuid4())
    h.add(message(h, cid))                       # v1 started, v2 the message
    set_at = len(h.events)
    h.add(domain.decide_take(h.state, OLGA))
    assert domain.decide_close_idle(h.state, 24, since_version=set_at)   # a take is not a message
    h.add(domain.decide_reply(h.state, OLGA, "r-1", "An answer", None))
    assert domain.decide_close_idle(h.state, 24, since_version=set_at) == []
    assert domain.decide_close_idle(h.state, 24, since_version=len(h.events))   # set again from the reply
    h.add(message(h, cid, "one more", message_id="m-9"))
    assert domain.decide_close_idle(h.state, 24, since_version=len(h.events) - 1) == []
