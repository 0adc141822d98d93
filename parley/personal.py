"""Which event fields are personal data, and sealing them (docs/architecture.md,
Personal data). Pure: no I/O, no keys kept here.

Events are stored in the owning service's PostgreSQL as they were decided (plain), and
sealed by its relay on the way to Kafka: the personal fields of an event leave `data`
and travel as one sealed value, `data["sealed"]`, under the key of the event's stream
(its data subject: one conversation). A consumer that needs them opens the event with
that key; one whose key was erased gets the fields' erased values and `erased: true` -
a rebuild from the topics then shows an erased conversation, not its old text.

What counts as personal (issue 20's first cut): what visitors and operators write
(messages, notes, rating comments), visitors' contacts, custom params, page URLs (with
their query: UTM, referrers), attachment names, and lead requests' copies of them.
Operators' own names and ids are staff data and stay plain."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from parley import cipher
from parley.envelope import Event

SEALED = "sealed"

# event type -> its personal fields
PERSONAL: dict[str, tuple[str, ...]] = {
    "chat.conversation_started": ("page_url",),
    "chat.visitor_message_posted": ("text", "attachment"),
    "chat.operator_replied": ("text", "attachment"),
    "chat.note_added": ("text",),
    "chat.custom_params_set": ("params",),
    "chat.contacts_given": ("name", "phone", "email"),
    "chat.page_visited": ("page_url",),
    "chat.rated": ("comment",),
    "chat.transcript_requested": ("email",),
    "lead.requested": ("transcript", "contacts", "custom_params", "page_url"),
}

# What a personal field reads as once its key is gone: the same type, nothing in it.
ERASED: dict[str, Any] = {
    "page_url": None, "text": "", "attachment": None, "params": {}, "name": None, "phone": None, "email": None,
    "comment": None, "transcript": [], "contacts": {}, "custom_params": {},
}


def subject_of(event: Event) -> str:
    """Whose key seals the event: its stream's (a conversation)."""
    return event.stream_id


def is_personal(event: Event) -> bool:
    return event.type in PERSONAL


def is_sealed(event: Event) -> bool:
    return isinstance(event.data, dict) and SEALED in event.data


def is_plain(event: Event) -> bool:
    """Personal data readable as it stands: an event written before sealing (what
    `python -m parley.admin privacy migrate` rewrites, parley/topic_sealing.py)."""
    fields = PERSONAL.get(event.type)
    return bool(fields) and isinstance(event.data, dict) and not is_sealed(event) and not event.data.get("erased") \
        and any(event.data.get(k) not in (None, "", [], {}) for k in fields)


def _associated(event: Event) -> bytes:
    return f"{event.id}\n{event.type}".encode()


def seal_event(event: Event, key: bytes) -> Event:
    """The event with its personal fields sealed into `data["sealed"]` (unchanged when it
    has none, or is sealed already)."""
    fields = PERSONAL.get(event.type)
    if not fields or is_sealed(event):
        return event
    private = {k: event.data[k] for k in fields if k in event.data}
    if not private:
        return event
    rest = {k: v for k, v in event.data.items() if k not in private}
    rest[SEALED] = cipher.seal(key, orjson.dumps(private), _associated(event))
    return replace(event, data=rest)


def erase_event(event: Event) -> Event:
    """The event as it reads once its subject is erased: personal fields emptied, `erased`
    set (what a scrubbed store row and an unreadable sealed value both become)."""
    fields = PERSONAL.get(event.type)
    if not fields:
        return event
    data = {k: v for k, v in event.data.items() if k != SEALED}
    data.update({k: ERASED[k] for k in fields if k in data or is_sealed(event)})
    data["erased"] = True
    return replace(event, data=data)


def open_event(event: Event, key: bytes | None) -> Event:
    """The event with its personal fields back in `data`; `key` None (erased, or never
    made) gives the erased form. A value the key does not open raises cipher.Unreadable."""
    if not is_sealed(event):
        return event
    if key is None:
        return erase_event(event)
    private = orjson.loads(cipher.unseal(key, event.data[SEALED], _associated(event)))
    data = {k: v for k, v in event.data.items() if k != SEALED}
    data.update(private)
    return replace(event, data=data)
