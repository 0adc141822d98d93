"""Search's rules, pure: what one event of a conversation does to that conversation's
search entries (search_projection.py writes them, search_views.py reads them).

An entry is one searchable piece of a conversation under a key of its own: a message or
a note (`m:<message id>`, `n:<note id>`), a contact (`contact:name|phone|email`), a
custom param (`param:<name>`). A later event with the same key replaces it (a param set
again, a contact corrected); an operator's correction without a field removes it; an
erased conversation loses them all. Phone numbers, in any text, are also kept as
`tel<last ten digits>` words, so "+7 (916) 123-45-67" and "8 916 1234567" find each
other; the query side is `phone_key`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from parley.contract import id_of
from parley.envelope import Event

TYPES = frozenset({"chat.visitor_message_posted", "chat.operator_replied", "chat.note_added", "chat.contacts_given",
                   "chat.custom_params_set", "chat.conversation_erased"})
CONTACT_FIELDS = ("name", "phone", "email")

# A run of digits with the punctuation people write phones with, 7-15 digits in all.
_PHONE = re.compile(r"\+?\d[\d\s().\-]{5,22}\d")
_PHONE_QUERY = re.compile(r"\s*\+?[\d\s().\-]+\s*")
PHONE_DIGITS_MIN, PHONE_DIGITS_MAX, PHONE_KEY_DIGITS = 7, 15, 10


@dataclass(frozen=True)
class Entry:
    conversation_id: str
    project_id: str
    key: str
    kind: str      # visitor | operator | note | contact | param
    text: str
    at: str        # the event's time, ISO
    phones: tuple[str, ...] = ()

    @property
    def phone_words(self) -> str:
        return " ".join(f"tel{p}" for p in self.phones)


@dataclass(frozen=True)
class Removal:
    conversation_id: str
    key: str


@dataclass(frozen=True)
class Erased:
    conversation_id: str


Change = Entry | Removal | Erased


def changes(event: Event) -> list[Change]:
    """What `event` does to its conversation's entries (an opened event: personal fields
    readable, or emptied by erasure - an empty text makes no entry)."""
    cid, d = id_of(event.stream_id), event.data
    entry = _entry_maker(cid, event)
    match event.type:
        case "chat.visitor_message_posted":
            return _listed(entry(f"m:{d['message_id']}", "visitor", _message_text(d)))
        case "chat.operator_replied":
            return _listed(entry(f"m:{d['message_id']}", "operator", _message_text(d)))
        case "chat.note_added":
            return _listed(entry(f"n:{d['note_id']}", "note", d.get("text") or ""))
        case "chat.custom_params_set":
            return [e for name, value in sorted((d.get("params") or {}).items())
                    if (e := entry(f"param:{name}", "param", f"{name}: {value}" if value else "")) is not None]
        case "chat.contacts_given":
            out: list[Change] = []
            replaces = bool(d.get("by_operator_id"))   # an operator's contacts replace what is known
            for field in CONTACT_FIELDS:
                value = d.get(field)
                if value:
                    out.append(entry(f"contact:{field}", "contact", value))
                elif replaces:
                    out.append(Removal(cid, f"contact:{field}"))
            return out
        case "chat.conversation_erased":
            return [Erased(cid)]
    return []


def fold(events: Iterable[Event]) -> tuple[dict[tuple[str, str], Entry], set[tuple[str, str]], set[str]]:
    """A batch's net effect, in event order: (entries to write by (conversation, key), keys
    to delete, conversations erased). One row is written once per batch."""
    written: dict[tuple[str, str], Entry] = {}
    removed: set[tuple[str, str]] = set()
    erased: set[str] = set()
    for event in events:
        for change in changes(event):
            if isinstance(change, Erased):
                erased.add(change.conversation_id)
                for key in [k for k in written if k[0] == change.conversation_id]:
                    del written[key]
                removed = {k for k in removed if k[0] != change.conversation_id}
            elif change.conversation_id in erased:
                continue
            elif isinstance(change, Removal):
                written.pop((change.conversation_id, change.key), None)
                removed.add((change.conversation_id, change.key))
            else:
                written[(change.conversation_id, change.key)] = change
                removed.discard((change.conversation_id, change.key))
    return written, removed, erased


def phone_keys(text: str) -> tuple[str, ...]:
    """The phones in `text`, each as its last ten digits (or all, when fewer)."""
    return tuple(dict.fromkeys(k for match in _PHONE.finditer(text) if (k := _key(match.group())) is not None))


def phone_key(query: str) -> str | None:
    """The query as a phone (only digits and phone punctuation, 7-15 digits), else None."""
    return _key(query) if _PHONE_QUERY.fullmatch(query) else None


def _key(written: str) -> str | None:
    """A phone as written, by its last ten digits; None unless it has 7-15 digits."""
    digits = re.sub(r"\D", "", written)
    return digits[-PHONE_KEY_DIGITS:] if PHONE_DIGITS_MIN <= len(digits) <= PHONE_DIGITS_MAX else None


def _message_text(d: dict[str, Any]) -> str:
    attachment = d.get("attachment") or {}
    name = attachment.get("name") if isinstance(attachment, dict) else None
    return " ".join(part for part in (d.get("text") or "", name or "") if part)


def _entry_maker(cid: str, event: Event):
    def make(key: str, kind: str, text: str) -> Entry | None:
        if not text or not text.strip():
            return None
        return Entry(cid, event.project_id, key, kind, text, event.occurred_at, phone_keys(text))
    return make


def _listed(entry: Entry | None) -> list[Change]:
    return [entry] if entry is not None else []
