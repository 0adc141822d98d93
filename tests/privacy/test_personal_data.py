"""Sealing personal data for the bus (parley/cipher.py, parley/personal.py), without I/O:
every personal field of every event type leaves `data` and comes back with the key;
without it (an erased subject) the event reads erased and still has its shape; a sealed
value does not open under another key or in another event."""
from __future__ import annotations

import uuid

import orjson
import pytest

from parley import cipher, personal
from parley.envelope import new_event

MARK = "MARKER-7f3a"


def conversation_event(type_: str, data: dict):
    return new_event(type_, f"conversation-{uuid.uuid4()}", data, project_id="demo").with_version(3)


EXAMPLES = {
    "chat.conversation_started": {"visitor_id": "v1", "page_url": f"https://shop.example/?utm={MARK}"},
    "chat.visitor_message_posted": {"message_id": "m1", "text": f"call me {MARK}",
                                    "attachment": {"file_id": "a" * 32, "name": f"{MARK}.pdf", "size": 3,
                                                   "content_type": "application/pdf"}},
    "chat.operator_replied": {"message_id": "r1", "operator_id": "o", "operator_name": "Olga",
                              "operator_avatar_url": None, "text": f"hi {MARK}", "attachment": None},
    "chat.note_added": {"note_id": "n1", "operator_id": "o", "operator_name": "Olga", "text": f"VIP {MARK}"},
    "chat.custom_params_set": {"params": {"office": MARK}},
    "chat.contacts_given": {"name": MARK, "phone": "+79001234567", "email": f"{MARK}@example.com"},
    "chat.page_visited": {"page_url": f"https://shop.example/{MARK}"},
    "chat.rated": {"rating": 5, "comment": MARK, "operator_id": "o", "operator_name": "Olga"},
    "chat.transcript_requested": {"email": f"{MARK}@example.com"},
    "lead.requested": {"conversation_id": "c", "visitor_id": "v1", "transcript": [{"text": MARK}],
                       "contacts": {"name": MARK}, "custom_params": {"k": MARK}, "page_url": MARK,
                       "operator_id": "o", "operator_email": "olga@example.com"},
}


def test_every_personal_type_has_an_example_and_every_field_an_erased_value():
    assert set(EXAMPLES) == set(personal.PERSONAL)
    assert {f for fields in personal.PERSONAL.values() for f in fields} <= set(personal.ERASED)


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_sealed_events_carry_no_personal_field_and_open_to_the_same(type_):
    event = conversation_event(type_, EXAMPLES[type_])
    key = cipher.new_key()
    sealed = personal.seal_event(event, key)
    assert MARK not in orjson.dumps(sealed.to_dict()).decode()
    assert not set(personal.PERSONAL[type_]) & set(sealed.data)
    assert personal.open_event(sealed, key) == event
    assert personal.seal_event(sealed, key) == sealed            # sealing twice changes nothing


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_without_its_key_an_event_reads_erased_with_its_shape(type_):
    event = conversation_event(type_, EXAMPLES[type_])
    erased = personal.open_event(personal.seal_event(event, cipher.new_key()), None)
    assert erased.data["erased"] is True and MARK not in orjson.dumps(erased.to_dict()).decode()
    for field in personal.PERSONAL[type_]:
        assert erased.data[field] == personal.ERASED[field]
    kept = {k: v for k, v in event.data.items() if k not in personal.PERSONAL[type_]}
    assert {k: erased.data[k] for k in kept} == kept               # what is not personal stays


def test_a_sealed_value_opens_only_with_its_key_in_its_own_event():
    key = cipher.new_key()
    a = personal.seal_event(conversation_event("chat.note_added", EXAMPLES["chat.note_added"]), key)
    b = conversation_event("chat.note_added", EXAMPLES["chat.note_added"])
    with pytest.raises(cipher.Unreadable):
        personal.open_event(a, cipher.new_key())
    moved = b.__class__(**{**b.__dict__, "data": {**a.data}})      # the sealed value pasted into another event
    with pytest.raises(cipher.Unreadable):
        personal.open_event(moved, key)


def test_events_without_personal_fields_pass_untouched():
    event = conversation_event("status.changed", {"status": "closed", "by_operator_id": None})
    assert personal.seal_event(event, cipher.new_key()) == event
    assert personal.open_event(event, None) == event
