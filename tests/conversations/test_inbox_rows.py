"""The inbox's rules, pure (conversation/inbox.py): what each event does to a
conversation's inbox row, and the rows it adds beside it. No database: the live
append and the rebuild both write what these functions return (projection.py)."""
from __future__ import annotations

import uuid

import pytest

from parley.envelope import Event

from conversation import inbox

CID = str(uuid.uuid4())
STREAM = f"conversation-{CID}"


class Stream:
    """Events of one conversation, numbered as the event store numbers them, folded
    into the row as they come."""

    def __init__(self):
        self.version = 0
        self.row: inbox.Row | None = None
        self.visitor_seqs: list[int] = []

    def add(self, type: str, at: str | None = None, **data) -> Event:
        self.version += 1
        event = Event(type=type, stream_id=STREAM, data=data, stream_version=self.version, project_id="demo",
                      occurred_at=at or f"2024-05-01T10:{self.version:02d}:00+00:00")
        self.row = inbox.evolve(self.row, event, self.visitor_seqs)
        if type == "chat.visitor_message_posted":
            self.visitor_seqs.append(self.version)
        return event

    def started(self, **data) -> "Stream":
        self.add("chat.conversation_started", visitor_id="v-1", page_url="https://x.test/a", **data)
        return self

    def visitor(self, text: str = "Hi", **extra) -> Event:
        return self.add("chat.visitor_message_posted", message_id=str(uuid.uuid4()), text=text,
                        attachment=extra.get("attachment"))

    def reply(self, text: str = "Hello") -> Event:
        return self.add("chat.operator_replied", message_id=str(uuid.uuid4()), text=text, attachment=None,
                        operator_id=str(uuid.uuid4()), operator_name="Olga")


def test_a_start_makes_the_row_with_the_tables_defaults():
    s = Stream().started(left_while_closed=True)
    assert s.row == {**dict.fromkeys(inbox.COLUMNS), "id": CID, "project_id": "demo", "visitor_id": "v-1",
                     "status": "new", "contacts": {}, "contacts_confirmed": [], "custom_params": {},
                     "page_url": "https://x.test/a",
                     "unread": 0, "started_at": "2024-05-01T10:01:00+00:00", "version": 1,
                     "left_while_closed": True}


def test_only_what_an_operator_entered_counts_as_confirmed_contacts():
    """Issue 23: a visitor typing a phone is not proof it is theirs."""
    s = Stream().started()
    s.add("chat.contacts_given", name="Ivan", phone="+79990000001")
    assert s.row["contacts"] == {"name": "Ivan", "phone": "+79990000001"} and s.row["contacts_confirmed"] == []
    s.add("chat.contacts_given", name="Ivan", phone="+79990000001", by_operator_id=str(uuid.uuid4()))
    assert s.row["contacts_confirmed"] == ["name", "phone"]
    s.add("chat.contacts_given", phone="+79990000002", email="i@example.com")   # the visitor changes the phone
    assert s.row["contacts"]["phone"] == "+79990000002" and s.row["contacts_confirmed"] == ["name"]
    s.add("chat.conversation_erased")
    assert s.row["contacts_confirmed"] == []


def test_visitor_messages_count_as_unread_and_wait_from_the_first_until_a_reply():
    s = Stream().started()
    s.visitor("Anyone?")
    s.visitor("Hello?")
    assert (s.row["unread"], s.row["waiting_since"], s.row["last_message_at"]) == (
        2, "2024-05-01T10:02:00+00:00", "2024-05-01T10:03:00+00:00")
    assert (s.row["last_message_text"], s.row["last_message_from"]) == ("Hello?", "visitor")
    s.reply("Yes?")
    assert (s.row["unread"], s.row["waiting_since"], s.row["last_message_from"]) == (0, None, "operator")
    s.visitor("x" * 500)
    assert s.row["last_message_text"] == "x" * 139 + "…"
    s.visitor("", attachment={"name": "cv.pdf"})
    assert s.row["last_message_text"] == "📎 cv.pdf" and s.row["waiting_since"] == "2024-05-01T10:05:00+00:00"


def test_an_operators_read_leaves_unread_what_the_visitor_wrote_after_the_mark():
    s = Stream().started()
    s.visitor()                     # 2
    s.visitor()                     # 3
    s.visitor()                     # 4
    s.add("chat.read_by_operator", seq=3, operator_id=str(uuid.uuid4()), operator_name="Olga")   # 5
    assert s.row["unread"] == 1     # message 4
    s.visitor()                     # 6
    assert s.row["unread"] == 2
    s.add("chat.read_by_operator", seq=6, operator_id=str(uuid.uuid4()), operator_name="Olga")
    assert s.row["unread"] == 0
    # only messages before the read count, whatever the caller passes beside them
    read = Event(type="chat.read_by_operator", stream_id=STREAM, data={"seq": 2}, stream_version=8)
    assert inbox.evolve(s.row, read, [2, 3, 4, 6, 9, 10])["unread"] == 3


def test_contacts_from_the_visitor_add_and_from_an_operator_replace():
    s = Stream().started()
    s.add("chat.contacts_given", name="Vera", phone="+79000000000", email=None)
    s.add("chat.contacts_given", name=None, phone=None, email="vera@example.com")
    assert s.row["contacts"] == {"name": "Vera", "phone": "+79000000000", "email": "vera@example.com"}
    assert s.row["visitor_name"] == "Vera"           # a form without a name keeps the known one
    s.add("chat.contacts_given", name=None, phone="+79000000001", email=None, by_operator_id=str(uuid.uuid4()))
    assert s.row["contacts"] == {"phone": "+79000000001"} and s.row["visitor_name"] is None


def test_params_merge_and_the_page_follows_the_visitor():
    s = Stream().started()
    s.add("chat.custom_params_set", params={"product": "Windows"})
    s.add("chat.custom_params_set", params={"office": "Moscow", "product": "Linux"})
    s.add("chat.page_visited", page_url="https://x.test/b")
    assert s.row["custom_params"] == {"product": "Linux", "office": "Moscow"}
    assert s.row["page_url"] == "https://x.test/b"


def test_offers_stand_until_taken_expired_or_the_status_clears_them():
    s = Stream().started()
    olga, petr = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    s.add("assignment.offered", offer_id=first, operator_id=olga, operator_name="Olga")
    assert (s.row["offer_id"], s.row["offered_to"], s.row["last_offered_to"]) == (first, olga, olga)
    s.add("assignment.offered", offer_id=second, operator_id=petr, operator_name="Petr")
    s.add("assignment.offer_expired", offer_id=first.upper())   # an older offer expiring: the newer stands
    assert s.row["offer_id"] == second
    s.add("assignment.offer_expired", offer_id=second)
    assert (s.row["offer_id"], s.row["offered_to"], s.row["offered_at"]) == (None, None, None)
    assert (s.row["last_offered_to"], s.row["last_offered_at"]) == (petr, "2024-05-01T10:03:00+00:00")
    s.add("assignment.offered", offer_id=first, operator_id=olga, operator_name="Olga")
    s.add("assignment.accepted", offer_id=first, operator_id=olga, operator_name="Olga")
    assert (s.row["assignee_id"], s.row["assignee_name"], s.row["offer_id"]) == (olga, "Olga", None)
    s.add("assignment.offered", offer_id=second, operator_id=petr, operator_name="Petr")
    s.add("status.changed", status="in_work")
    assert s.row["offer_id"] == second                # only new and closed end an offer
    s.add("status.changed", status="closed")
    assert (s.row["status"], s.row["offer_id"]) == ("closed", None)


def test_every_event_moves_the_version_and_a_lead_request_is_dated():
    s = Stream().started()
    s.add("chat.note_added", note_id="n-1", text="VIP")
    s.add("chat.read_by_visitor", seq=1)
    assert s.row["version"] == 3
    s.add("lead.requested", transcript=[])
    assert (s.row["version"], s.row["lead_requested_at"]) == (4, "2024-05-01T10:04:00+00:00")


def test_a_missing_row_stays_missing_a_second_start_fails_and_the_row_given_is_not_changed():
    orphan = Event(type="chat.visitor_message_posted", stream_id=STREAM, stream_version=2,
                   data={"message_id": "m", "text": "Hi", "attachment": None})
    assert inbox.evolve(None, orphan) is None
    s = Stream().started()
    before = dict(s.row)
    assert inbox.evolve(s.row, orphan)["unread"] == 1 and s.row == before
    with pytest.raises(ValueError):
        s.started()


def test_the_rows_beside_the_inbox():
    s = Stream()
    previous = str(uuid.uuid4())
    start = s.add("chat.conversation_started", visitor_id="v-1", page_url=None, previous_conversation_id=previous)
    assert inbox.visitor_conversation(start) == ("demo", "v-1", CID, previous)
    message, reply = s.visitor(), s.reply()
    assert inbox.message(message) == (CID, "visitor", message.data["message_id"], 2)
    assert inbox.message(reply) == (CID, "operator", reply.data["message_id"], 3)
    rated = s.add("chat.rated", rating=5, comment="Thanks", operator_id=None, operator_name=None)
    assert inbox.rating(rated) == (CID, "demo", None, None, 5, "Thanks", rated.occurred_at)
    assert (inbox.message(start), inbox.rating(start), inbox.visitor_conversation(message)) == (None, None, None)
