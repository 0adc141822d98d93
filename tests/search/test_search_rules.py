"""Search's rules without I/O (conversation/search_index.py): which entries an event
makes, replaces or removes, a batch's net effect, and phones in any formatting."""
from __future__ import annotations

import uuid

import pytest

from parley.envelope import new_event

from conversation import search_index
from conversation.search_index import Entry, Erased, Removal
from conversation.search_views import snippet_parts

CID = str(uuid.uuid4())


def ev(type_: str, data: dict, version: int = 1):
    return new_event(type_, f"conversation-{CID}", data, version=1, project_id="demo")


def test_messages_notes_contacts_and_params_become_entries_under_keys_of_their_own():
    said = search_index.changes(ev("chat.visitor_message_posted", {
        "message_id": "m1", "text": "Call me: +7 (916) 123-45-67", "attachment": {"file_id": "f", "name": "invoice.pdf"}}))
    assert [(e.key, e.kind, e.text, e.phones) for e in said] == [
        ("m:m1", "visitor", "Call me: +7 (916) 123-45-67 invoice.pdf", ("9161234567",))]
    assert search_index.changes(ev("chat.note_added", {"note_id": "n1", "operator_id": "o", "operator_name": "A",
                                                        "text": "VIP"}))[0].key == "n:n1"
    params = search_index.changes(ev("chat.custom_params_set", {"params": {"office": "Kazan", "empty": ""}}))
    assert [(e.key, e.text) for e in params] == [("param:office", "office: Kazan")]
    contacts = search_index.changes(ev("chat.contacts_given", {"name": "Olga", "phone": "+79161234567", "email": None}))
    assert [(e.key, e.phones) for e in contacts] == [("contact:name", ()), ("contact:phone", ("9161234567",))]


def test_an_operators_correction_removes_a_field_a_visitors_leaves_it():
    by_operator = search_index.changes(ev("chat.contacts_given", {"name": "Olga", "phone": None, "email": None,
                                                                  "by_operator_id": str(uuid.uuid4())}))
    assert Removal(CID, "contact:phone") in by_operator and Removal(CID, "contact:email") in by_operator
    by_visitor = search_index.changes(ev("chat.contacts_given", {"name": None, "phone": "89161234567", "email": None}))
    assert [type(c) for c in by_visitor] == [Entry]


def test_an_erased_event_makes_no_entry_and_the_erasure_removes_all():
    erased_message = ev("chat.visitor_message_posted", {"message_id": "m1", "text": "", "attachment": None})
    assert search_index.changes(erased_message) == []
    assert search_index.changes(ev("chat.conversation_erased", {"erasure_id": "e", "reason": "request",
                                                                "file_ids": []})) == [Erased(CID)]


def test_a_batch_writes_each_key_once_with_its_last_value_and_nothing_after_an_erasure():
    other = str(uuid.uuid4())
    events = [ev("chat.custom_params_set", {"params": {"office": "Moscow"}}),
              ev("chat.custom_params_set", {"params": {"office": "Kazan"}}),
              ev("chat.contacts_given", {"name": "Olga", "phone": None, "email": None}),
              ev("chat.contacts_given", {"name": None, "phone": None, "email": None, "by_operator_id": "x"}),
              new_event("chat.note_added", f"conversation-{other}", {"note_id": "n", "operator_id": "o",
                                                                       "operator_name": "A", "text": "kept"},
                        project_id="demo")]
    written, removed, erased = search_index.fold(events)
    assert {k: e.text for k, e in written.items()} == {(CID, "param:office"): "office: Kazan", (other, "n:n"): "kept"}
    assert (CID, "contact:name") in removed and not erased
    written, removed, erased = search_index.fold(events + [ev("chat.conversation_erased", {
        "erasure_id": "e", "reason": "request", "file_ids": []})])
    assert list(written) == [(other, "n:n")] and erased == {CID} and not any(k[0] == CID for k in removed)


@pytest.mark.parametrize("written, asked", [
    ("+7 (916) 123-45-67", "8 916 123 45 67"), ("8-916-123-4567", "+79161234567"), ("89161234567", "9161234567"),
    ("+44 20 7946 0958", "020 7946 0958")])
def test_a_phone_is_found_in_any_formatting(written, asked):
    assert search_index.phone_key(asked) in search_index.phone_keys(f"my number is {written}, thanks")


@pytest.mark.parametrize("query", ["окна", "order 12", "12-34", "+7 (916)", "1234567890123456"])
def test_a_query_that_is_not_a_whole_phone_is_searched_as_words(query):
    assert search_index.phone_key(query) is None


def test_snippets_come_as_text_parts_never_markup():
    assert snippet_parts("a <b>x</b> \x02окна\x03 and \x02order\x03") == [
        {"text": "a <b>x</b> ", "match": False}, {"text": "окна", "match": True}, {"text": " and ", "match": False},
        {"text": "order", "match": True}]
