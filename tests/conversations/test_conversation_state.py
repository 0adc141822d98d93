"""The kept state (domain.to_state / from_state, issue 12): commands decide on a row kept
beside the stream instead of folding it. The events stay the source of truth: the row,
kept command by command as the service keeps it, equals the state folded from scratch,
for a conversation with every kind of event; and deciding on it decides the same."""
from __future__ import annotations

import uuid

import orjson
import pytest

from conversation import domain, inbox
from conversation.domain import Conversation
from tests.conversations.test_conversation_domain import ADMIN, CID, OLGA, PETR, PROJECT, History

EVERY_KIND = {"chat.conversation_started", "chat.visitor_message_posted", "chat.operator_replied",
              "chat.custom_params_set", "chat.contacts_given", "chat.page_visited", "chat.note_added",
              "assignment.taken", "assignment.assigned", "status.changed", "lead.requested"}


class KeptHistory(History):
    """A History that also keeps the state row as the service does: each command decides
    on from_state(row) (with the message ids it asks about, if the conversation has them),
    and the row becomes to_state(fold(new events, that state)) - through JSON, as jsonb."""

    def __init__(self):
        super().__init__()
        self.row: dict | None = None
        self.ids: dict[str, set[str]] = {"visitor": set(), "operator": set()}  # conversation_messages

    def kept_state(self, visitor_ids=(), reply_ids=()) -> Conversation | None:
        if self.row is None:
            return None
        return domain.from_state(orjson.loads(orjson.dumps(self.row)),
                                 message_ids=frozenset(self.ids["visitor"] & set(visitor_ids)),
                                 reply_ids=frozenset(self.ids["operator"] & set(reply_ids)))

    def run(self, decide, visitor_ids=(), reply_ids=(), transcript=False):
        state = self.state if transcript else self.kept_state(visitor_ids, reply_ids)
        events = self.add(decide(state))
        if events:
            appended = self.events[-len(events):]
            for e in appended:
                side = {"chat.visitor_message_posted": "visitor", "chat.operator_replied": "operator"}.get(e.type)
                if side:
                    self.ids[side].add(e.data["message_id"])
            self.row = domain.to_state(domain.fold(appended, state))
        return events


def visitor(h: KeptHistory, text: str, message_id: str | None = None, page_url=None, chat_open=True):
    message_id = message_id or str(uuid.uuid4())
    return h.run(lambda s: domain.decide_visitor_message(
        s, conversation_id=CID, project_id=PROJECT, visitor_id="v1", message_id=message_id, text=text,
        attachment=None, page_url=page_url, chat_open=chat_open), visitor_ids=(message_id,))


def reply(h: KeptHistory, who, text: str, message_id: str | None = None):
    message_id = message_id or str(uuid.uuid4())
    return h.run(lambda s: domain.decide_reply(s, who, message_id, text, None), reply_ids=(message_id,))


def a_conversation_with_every_kind_of_event() -> KeptHistory:
    h = KeptHistory()
    h.run(lambda s: domain.decide_offline(
        s, conversation_id=CID, project_id=PROJECT, visitor_id="v1", message_id="form-1",
        contacts={"name": "Vera", "phone": "8 900 000-00-00"}, text="Call me back", page_url="https://x.test/a",
        params={"product": "Windows"}, chat_open=False), visitor_ids=("form-1",))
    first = str(uuid.uuid4())
    visitor(h, "Hello?", first, page_url="https://x.test/b")
    assert visitor(h, "Hello?", first) == []  # a resend, recognised by its id
    h.run(lambda s: domain.decide_custom_params(s, {"office": "Moscow"}))
    h.run(lambda s: domain.decide_contacts(s, {"email": "vera@example.com"}, visitor_id="v1"))
    h.run(lambda s: domain.decide_take(s, OLGA))
    reply_id = str(uuid.uuid4())
    reply(h, OLGA, "Hi, Olga here", reply_id)
    assert reply(h, OLGA, "Hi, Olga here", reply_id) == []
    h.run(lambda s: domain.decide_note(s, OLGA, str(uuid.uuid4()), "VIP"))
    h.run(lambda s: domain.decide_operator_contacts(s, OLGA, {"name": "Vera P.", "phone": "+7 900 000 00 01"}))
    h.run(lambda s: domain.decide_assign(s, ADMIN, PETR))
    h.run(lambda s: domain.decide_status(s, PETR, "closed"))
    visitor(h, "One more thing")  # reopens
    h.run(lambda s: domain.decide_request_lead(s, PETR), transcript=True)
    h.run(lambda s: domain.decide_close_idle(s, 2))
    return h


def test_the_kept_state_equals_the_state_folded_from_the_events():
    h = a_conversation_with_every_kind_of_event()
    assert {e.type for e in h.events} == EVERY_KIND
    assert h.kept_state() == domain.kept(h.state)
    assert h.row["status"] == "closed" and h.row["assignee_id"] == PETR.id
    # the ids the row leaves out are all in the message table
    assert h.ids == {"visitor": set(h.state.message_ids), "operator": set(h.state.reply_ids)}


def test_the_kept_state_equals_the_fold_after_every_command():
    h = KeptHistory()
    visitor(h, "Hi")
    for step in (lambda: h.run(lambda s: domain.decide_take(s, OLGA)), lambda: reply(h, OLGA, "Yes?"),
                 lambda: h.run(lambda s: domain.decide_status(s, OLGA, "closed")), lambda: visitor(h, "Back")):
        step()
        assert h.kept_state() == domain.kept(h.state)


def test_the_row_keeps_what_decisions_read_but_not_what_grows_with_the_conversation():
    h = a_conversation_with_every_kind_of_event()
    for _ in range(50):
        visitor(h, "x" * 100)
    assert set(h.row) == {"format", "id", "project_id", "visitor_id", "status", "assignee_id", "assignee_name",
                          "custom_params", "contacts", "contacts_confirmed", "page_url", "left_while_closed",
                          "offer_id", "offer_to", "offered_ids",   # offered_ids: one per operator per round
                          "last_visitor_seq", "last_reply_seq", "read_by_operator_seq", "read_by_visitor_seq",
                          "rated", "leads_requested", "erased"}
    assert len(orjson.dumps(h.row)) < 1000


def test_a_lead_still_carries_the_whole_transcript():
    h = a_conversation_with_every_kind_of_event()
    [lead] = [e for e in h.events if e.type == "lead.requested"]
    assert [m["text"] for m in lead.data["transcript"]] == ["Call me back", "Hello?", "Hi, Olga here",
                                                           "One more thing"]


def test_round_trip_and_a_row_of_another_format_is_rebuilt():
    state = a_conversation_with_every_kind_of_event().state
    assert domain.from_state(domain.to_state(state)) == domain.kept(state)
    assert domain.from_state({**domain.to_state(state), "format": domain.STATE_FORMAT + 1}) is None
    assert domain.from_state({"id": CID}) is None
    assert domain.fold([], None) is None


@pytest.mark.parametrize("known", [True, False])
def test_deciding_on_the_kept_state_decides_what_the_fold_decides(known):
    h = a_conversation_with_every_kind_of_event()
    message_id = next(iter(h.state.message_ids)) if known else "new-id"
    decide = lambda s: domain.decide_visitor_message(  # noqa: E731
        s, conversation_id=CID, project_id=PROJECT, visitor_id="v1", message_id=message_id, text="again",
        attachment=None, page_url="https://x.test/c")
    on_kept, on_fold = decide(h.kept_state(visitor_ids=(message_id,))), decide(h.state)
    assert [(e.type, e.data) for e in on_kept] == [(e.type, e.data) for e in on_fold]


def test_an_erased_conversation_keeps_nothing_of_the_visitor_and_refuses_work():
    """Issue 20: erasure closes the conversation and marks it erased; the kept state and
    the inbox row keep no contacts, params, page or text, only the record."""
    h = a_conversation_with_every_kind_of_event()
    erasure = str(uuid.uuid4())
    events = h.run(lambda s: domain.decide_erase(s, erasure))
    assert [e.type for e in events] == ["chat.conversation_erased"]    # it was closed already
    assert h.kept_state() == domain.kept(h.state)
    state = h.state
    assert state.erased and state.contacts == {} and state.custom_params == {} and state.page_url is None
    assert domain.decide_erase(state, str(uuid.uuid4())) == []          # erased once
    with pytest.raises(domain.DomainError) as e:
        domain.decide_reply(state, PETR, str(uuid.uuid4()), "Hello?", None)
    assert e.value.code == "conversation_erased"
    row = None
    for event in h.events:
        row = inbox.evolve(row, event)
    assert row["erased_at"] == h.events[-1].occurred_at and row["status"] == "closed"
    assert (row["visitor_name"], row["contacts"], row["custom_params"], row["page_url"],
            row["last_message_text"]) == (None, {}, {}, None, None)


def test_erasing_an_open_conversation_closes_it_first():
    h = KeptHistory()
    visitor(h, "Hello")
    events = h.run(lambda s: domain.decide_erase(s, str(uuid.uuid4()), "retention"))
    assert [(e.type, e.data.get("reason")) for e in events] == [("status.changed", "erased"),
                                                                ("chat.conversation_erased", "retention")]
    assert h.state.status == "closed" and h.state.erased
