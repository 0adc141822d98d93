"""Visitor contacts without I/O: the phone normaliser, the email check, and who may give
or correct contacts (conversation.domain)."""
from __future__ import annotations

import pytest

from conversation import domain
from conversation.domain import DomainError

from tests.conversations.test_conversation_domain import ADMIN, CID, OLGA, PETR, PROJECT, STRANGER, History, started


@pytest.mark.parametrize("typed, stored", [
    ("+7 (900) 123-45-67", "+79001234567"),
    ("8 900 123 45 67", "+79001234567"),        # the Russian trunk prefix
    ("8(495)123-45-67", "+74951234567"),
    ("79001234567", "+79001234567"),           # 11 digits starting with 7
    ("900 123 45 67", "+79001234567"),         # a Russian mobile without its code
    ("+1-202-555-0100", "+12025550100"),
    ("0044 20 7946 0958", "+442079460958"),    # 00 is the international prefix
    ("+44.20.7946.0958", "+442079460958"),
    ("12345", "12345"),                        # too unsure to guess a country: digits as given
    ("4951234567", "4951234567"),              # 10 digits not starting with 9: no guess
    ("812345", "812345"),
])
def test_phones_are_normalised_to_e164_where_certain(typed, stored):
    assert domain.normalise_phone(typed) == stored


@pytest.mark.parametrize("typed", ["call me", "1234", "+", "+7 900 123 45 67 000000", "+7-900-12x-45-67",
                                   "８９００１２３４５６７", "++79001234567", "+7 900 123 45 67 ext 5"])
def test_phones_that_are_not_phones_are_refused(typed):
    with pytest.raises(DomainError) as info:
        domain.normalise_phone(typed)
    assert info.value.code == "phone_invalid" and info.value.kind == "invalid"


@pytest.mark.parametrize("email", ["vera@example.com", "v.e+ra@mail.example.co.uk", "x@y.ru", "Вера@пример.рф"])
def test_plausible_emails_pass(email):
    assert domain.check_email(email) == email


@pytest.mark.parametrize("email", ["vera", "vera@", "@example.com", "vera@example", "vera@@example.com",
                                   "ve ra@example.com", "vera@.example.com", "vera@example.com.",
                                   "a@b@c.d", "v" * 190 + "@example.com"])
def test_implausible_emails_are_refused(email):
    with pytest.raises(DomainError) as info:
        domain.check_email(email)
    assert info.value.code == "email_invalid"


def test_visitor_contacts_are_stored_normalised():
    history = started()
    history.add(domain.decide_contacts(history.state, {"name": " Vera ", "phone": "8 900 123-45-67",
                                                       "email": "vera@example.com"}))
    assert history.state.contacts == {"name": "Vera", "phone": "+79001234567", "email": "vera@example.com"}


@pytest.mark.parametrize("contacts, code", [({"phone": "abc"}, "phone_invalid"), ({"email": "vera@"}, "email_invalid"),
                                            ({"name": "V" * 201}, "name_invalid"),
                                            ({"name": "Vera", "email": "no"}, "email_invalid")])
def test_a_bad_field_is_named(contacts, code):
    with pytest.raises(DomainError) as info:
        domain.decide_contacts(started().state, contacts)
    assert (info.value.kind, info.value.code) == ("invalid", code)


def test_contacts_before_any_message_start_the_conversation_with_the_held_params():
    history = History()
    events = history.add(domain.decide_contacts(None, {"name": "Vera", "phone": "9001234567"}, conversation_id=CID,
                                                project_id=PROJECT, visitor_id="v1", page_url="https://shop/p",
                                                params={"product": "Windows"}))
    assert [e.type for e in events] == ["chat.conversation_started", "chat.custom_params_set", "chat.contacts_given"]
    state = history.state
    assert (state.visitor_id, state.page_url, state.custom_params, state.contacts) == (
        "v1", "https://shop/p", {"product": "Windows"}, {"name": "Vera", "phone": "+79001234567"})
    # the first message then goes into the same conversation
    history.add(domain.decide_visitor_message(history.state, conversation_id=CID, project_id=PROJECT, visitor_id="v1",
                                              message_id="m1", text="Hi", attachment=None, page_url=None))
    assert [e.type for e in history.events][-1] == "chat.visitor_message_posted"


def test_the_same_contacts_again_append_nothing_and_another_visitor_is_refused():
    history = started()
    history.add(domain.decide_contacts(history.state, {"name": "Vera", "phone": "+79001234567"}))
    assert domain.decide_contacts(history.state, {"name": "Vera", "phone": "8 900 123 45 67"}, visitor_id="v1") == []
    with pytest.raises(DomainError) as info:
        domain.decide_contacts(history.state, {"name": "Mallory"}, visitor_id="v2")
    assert info.value.kind == "forbidden"


def test_visitor_contacts_add_to_what_is_known():
    history = started()
    history.add(domain.decide_contacts(history.state, {"name": "Vera", "phone": "+79001234567"}))
    history.add(domain.decide_contacts(history.state, {"email": "vera@example.com"}))
    assert history.state.contacts == {"name": "Vera", "phone": "+79001234567", "email": "vera@example.com"}


def test_the_assignee_and_an_admin_correct_contacts_which_replace_what_was_known():
    history = started(OLGA)
    history.add(domain.decide_contacts(history.state, {"name": "Vera", "phone": "+79001234567", "email": "v@x.ru"}))
    events = history.add(domain.decide_operator_contacts(history.state, OLGA, {"name": "Vera Petrova",
                                                                               "phone": "8 (900) 765-43-21"}))
    assert events[0].data == {"name": "Vera Petrova", "phone": "+79007654321", "email": None,
                              "by_operator_id": OLGA.id}
    assert history.state.contacts == {"name": "Vera Petrova", "phone": "+79007654321"}  # the email was cleared
    history.add(domain.decide_operator_contacts(history.state, ADMIN, {"name": "Vera P.", "phone": "+79007654321"}))
    assert history.state.contacts == {"name": "Vera P.", "phone": "+79007654321"}
    assert domain.decide_operator_contacts(history.state, ADMIN, {"name": "Vera P.", "phone": "89007654321"}) == []


def test_an_operator_confirming_what_the_visitor_typed_is_an_event_once():
    """Issue 23: contacts the visitor typed are not confirmed; the operator confirming the
    same values makes them so (an event, though nothing changed), and only once."""
    history = started(OLGA)
    history.add(domain.decide_contacts(history.state, {"name": "Vera", "phone": "+79001234567"}))
    assert history.state.contacts_confirmed == ()
    events = history.add(domain.decide_operator_contacts(history.state, OLGA, {"name": "Vera", "phone": "+79001234567"}))
    assert len(events) == 1 and history.state.contacts_confirmed == ("name", "phone")
    assert domain.decide_operator_contacts(history.state, OLGA, {"name": "Vera", "phone": "+79001234567"}) == []
    history.add(domain.decide_contacts(history.state, {"phone": "+79001112233"}))   # the visitor changes it
    assert history.state.contacts_confirmed == ("name",)
    assert domain.from_state(domain.to_state(history.state)).contacts_confirmed == ("name",)


def test_others_may_not_correct_contacts():
    for who, kind, code in ((PETR, "not_found", "not_found"), (STRANGER, "not_found", "not_found")):
        with pytest.raises(DomainError) as info:
            domain.decide_operator_contacts(started(OLGA).state, who, {"name": "X"})
        assert (info.value.kind, info.value.code) == (kind, code)
    with pytest.raises(DomainError) as info:  # unclaimed: take it first (as for replies)
        domain.decide_operator_contacts(started().state, PETR, {"name": "X"})
    assert info.value.code == "not_taken"
    with pytest.raises(DomainError) as info:
        domain.decide_operator_contacts(started(OLGA).state, OLGA, {"phone": "12"})
    assert info.value.code == "phone_invalid"
