"""The Conversation aggregate without I/O: decide_* on states folded from events, as
eventsourcing's functional-aggregate examples test theirs. The stack tests keep only
the wiring (HTTP, store, projection)."""
from __future__ import annotations

import itertools
import uuid
from dataclasses import replace

import orjson
import pytest

from parley.config import REPO_ROOT
from parley.envelope import Event
from parley.schemas import Catalog

from conversation import domain
from conversation.domain import Conversation, DomainError, Operator

CATALOG = Catalog(REPO_ROOT / "schemas")
PROJECT = "demo"
CID = str(uuid.uuid4())

OLGA = Operator(id=str(uuid.uuid4()), project_id=PROJECT, name="Olga")
PETR = Operator(id=str(uuid.uuid4()), project_id=PROJECT, name="Petr")
ADMIN = Operator(id=str(uuid.uuid4()), project_id=PROJECT, name="Anna Admin", is_admin=True)
STRANGER = Operator(id=str(uuid.uuid4()), project_id="other", name="Stranger")
STRANGE_ADMIN = Operator(id=str(uuid.uuid4()), project_id="other", name="Other Admin", is_admin=True)


class History:
    """A conversation's events so far, numbered and schema-checked as the store would."""

    def __init__(self):
        self.events: list[Event] = []

    def add(self, events: list[Event]) -> list[Event]:
        for e in events:
            numbered = e.with_version(len(self.events) + 1)
            CATALOG.validate(numbered)
            self.events.append(numbered)
        return events

    @property
    def state(self) -> Conversation | None:
        return domain.fold(self.events)


def visitor_says(history: History, text="Hello", message_id=None, page_url=None, attachment=None, visitor="v1"):
    return history.add(domain.decide_visitor_message(
        history.state, conversation_id=CID, project_id=PROJECT, visitor_id=visitor,
        message_id=message_id or str(uuid.uuid4()), text=text, attachment=attachment, page_url=page_url))


def started(assignee: Operator | None = None, status: str | None = None) -> History:
    history = History()
    visitor_says(history)
    if assignee is not None:
        history.add(domain.decide_take(history.state, assignee))
    if status is not None:
        history.add(domain.decide_status(history.state, assignee or ADMIN, status))
    return history


def refusal(call) -> tuple[str, str]:
    with pytest.raises(DomainError) as e:
        call()
    return e.value.kind, e.value.code


# ---- take: exactly one winner -------------------------------------------------------

def test_the_first_take_wins_and_only_an_admin_is_told_who_won():
    history = started()
    events = history.add(domain.decide_take(history.state, OLGA))
    assert [e.type for e in events] == ["assignment.taken", "status.changed"]
    assert (history.state.assignee_id, history.state.status) == (OLGA.id, "in_work")

    with pytest.raises(DomainError) as e:
        domain.decide_take(history.state, PETR)
    assert (e.value.kind, e.value.code) == ("conflict", "already_taken")
    assert "Olga" not in e.value.message      # Petr may not see Olga's conversation
    with pytest.raises(DomainError) as e:
        domain.decide_take(history.state, ADMIN)
    assert "Olga" in e.value.message
    assert domain.decide_take(history.state, OLGA) == []  # a retake by the winner appends nothing


def test_take_of_an_unknown_or_foreign_conversation_is_not_found():
    assert refusal(lambda: domain.decide_take(None, OLGA)) == ("not_found", "not_found")
    assert refusal(lambda: domain.decide_take(started().state, STRANGER)) == ("not_found", "not_found")
    assert refusal(lambda: domain.decide_take(started().state, STRANGE_ADMIN)) == ("not_found", "not_found")


# ---- the permission matrix ----------------------------------------------------------

ACTIONS = {
    "reply": lambda s, who: domain.decide_reply(s, who, str(uuid.uuid4()), "Hi", None),
    "note": lambda s, who: domain.decide_note(s, who, str(uuid.uuid4()), "internal"),
    "status": lambda s, who: domain.decide_status(s, who, "closed"),
    "lead": lambda s, who: domain.decide_request_lead(s, who, known={"phone": "+79001234567"}),
    "assign": lambda s, who: domain.decide_assign(s, who, OLGA),
}
WHO = {"operator": OLGA, "admin": ADMIN, "other project": STRANGER, "other project admin": STRANGE_ADMIN}
NOT_FOUND, NOT_TAKEN, FORBIDDEN = ("not_found", "not_found"), ("conflict", "not_taken"), ("forbidden", "forbidden")
# (who, whose conversation) -> outcome of reply, note, status and lead; and of assign
MATRIX = {
    ("operator", "unclaimed"): (NOT_TAKEN, FORBIDDEN),
    ("operator", "mine"): ("ok", FORBIDDEN),
    ("operator", "others"): (NOT_FOUND, FORBIDDEN),
    ("admin", "unclaimed"): ("ok", "ok"),
    ("admin", "mine"): ("ok", "ok"),
    ("admin", "others"): ("ok", "ok"),
    ("other project", "unclaimed"): (NOT_FOUND, FORBIDDEN),
    ("other project", "mine"): (NOT_FOUND, FORBIDDEN),
    ("other project", "others"): (NOT_FOUND, FORBIDDEN),
    ("other project admin", "unclaimed"): (NOT_FOUND, NOT_FOUND),
    ("other project admin", "mine"): (NOT_FOUND, NOT_FOUND),
    ("other project admin", "others"): (NOT_FOUND, NOT_FOUND),
}


def _conversation(who: Operator, whose: str) -> Conversation:
    if whose == "unclaimed":
        return started().state
    if whose == "others":
        return started(PETR).state
    if who.project_id == PROJECT:
        return started(who).state
    # "mine" for someone of another project: assigned to their id (a take would refuse them)
    return replace(started(PETR).state, assignee_id=who.id, assignee_name=who.name)


@pytest.mark.parametrize("who, whose, action", list(itertools.product(
    WHO, ("unclaimed", "mine", "others"), ACTIONS)))
def test_the_permission_matrix(who, whose, action):
    operator = WHO[who]
    state = _conversation(operator, whose)
    handlers, assign = MATRIX[(who, whose)]
    expected = assign if action == "assign" else handlers
    if expected == "ok":
        events = ACTIONS[action](state, operator)
        assert events, (who, whose, action)
        for e in events:
            CATALOG.validate(e.with_version(1))
    else:
        assert refusal(lambda: ACTIONS[action](state, operator)) == expected


def test_assigning_the_assignee_again_appends_nothing():
    assert domain.decide_assign(started(OLGA).state, ADMIN, OLGA) == []


def test_an_admin_cannot_assign_to_an_operator_of_another_project():
    assert refusal(lambda: domain.decide_assign(started().state, ADMIN, STRANGER)) == NOT_FOUND


def test_can_see_is_the_shared_rule_for_every_combination():
    from parley.contract import operator_may_see
    for operator, assignee, project in itertools.product((OLGA, ADMIN, STRANGER), (None, OLGA.id, PETR.id),
                                                         (PROJECT, "other")):
        state = Conversation(id=CID, project_id=project, visitor_id="v", assignee_id=assignee)
        assert domain.can_see(state, operator) == operator_may_see(
            project, assignee, project_id=operator.project_id, operator_id=operator.id, is_admin=operator.is_admin)


# ---- resends and ids ------------------------------------------------------------------

def test_a_resent_visitor_message_appends_nothing():
    history = started()
    visitor_says(history, "Are you there?", message_id="m-2")
    assert domain.decide_visitor_message(history.state, conversation_id=CID, project_id=PROJECT, visitor_id="v1",
                                         message_id="m-2", text="Are you there?", attachment=None,
                                         page_url=None) == []
    assert [t["text"] for t in history.state.transcript] == ["Hello", "Are you there?"]


def test_another_visitor_cannot_write_into_the_conversation():
    history = started()
    assert refusal(lambda: visitor_says(history, visitor="v2")) == ("forbidden", "forbidden")


def test_visitor_and_operator_message_ids_never_shadow_each_other():
    history = started(OLGA)
    visitor_says(history, "from the visitor", message_id="same-id")
    # an operator reply carrying an id the visitor used is still a new reply
    assert history.add(domain.decide_reply(history.state, OLGA, "same-id", "from Olga", None))
    # and a visitor message carrying a reply's id is still a new message
    history.add(domain.decide_reply(history.state, OLGA, "reply-id", "again", None))
    assert visitor_says(history, "me again", message_id="reply-id")
    assert [t["text"] for t in history.state.transcript] == ["Hello", "from the visitor", "from Olga", "again",
                                                             "me again"]
    # a reply resent with its own id appends nothing
    assert domain.decide_reply(history.state, OLGA, "reply-id", "again", None) == []


# ---- closed conversations -------------------------------------------------------------

def test_a_message_that_lost_its_race_with_the_close_reopens_it_with_the_same_operator():
    # (handlers.py sends a visitor's new message after a close to a new conversation; only a
    # message decided while the close was being stored lands here)
    history = started(OLGA, status="closed")
    assert history.state.status == "closed"
    events = visitor_says(history, "One more question")
    assert [e.type for e in events] == ["status.changed", "chat.visitor_message_posted"]
    assert (history.state.status, history.state.assignee_id) == ("in_work", OLGA.id)


def test_an_unclaimed_closed_conversation_reopens_as_new():
    history = started(status="closed")  # an admin closed it without taking it
    visitor_says(history, "Hello again")
    assert (history.state.status, history.state.assignee_id) == ("new", None)


def test_a_resend_into_a_closed_conversation_does_not_reopen_it():
    history = started(OLGA)
    visitor_says(history, "bye", message_id="m-bye")
    history.add(domain.decide_status(history.state, OLGA, "closed"))
    assert domain.decide_visitor_message(history.state, conversation_id=CID, project_id=PROJECT, visitor_id="v1",
                                         message_id="m-bye", text="bye", attachment=None, page_url=None) == []
    assert history.state.status == "closed"


def test_the_next_conversation_names_the_one_closed_before_it():
    events = domain.decide_visitor_message(None, conversation_id=CID, project_id=PROJECT, visitor_id="v1",
                                           message_id="m-next", text="Back again", attachment=None, page_url=None,
                                           previous_conversation_id="1b2c3d4e-0000-4000-8000-000000000000")
    assert [e.type for e in events] == ["chat.conversation_started", "chat.visitor_message_posted"]
    assert events[0].data["previous_conversation_id"] == "1b2c3d4e-0000-4000-8000-000000000000"
    first = domain.decide_visitor_message(None, conversation_id=CID, project_id=PROJECT, visitor_id="v1",
                                          message_id="m-1", text="Hi", attachment=None, page_url=None)
    assert "previous_conversation_id" not in first[0].data


def test_closing_twice_appends_nothing_and_status_must_be_known():
    history = started(OLGA, status="closed")
    assert domain.decide_status(history.state, OLGA, "closed") == []
    for bad in ("new", "open", 1, None, [], {"status": "closed"}):
        assert refusal(lambda: domain.decide_status(history.state, OLGA, bad)) == ("invalid", "status_invalid")


# ---- text cleaning ------------------------------------------------------------------

def test_control_characters_are_stripped_but_lines_and_tabs_kept():
    assert domain.clean_text("  a\x01b\x07c\x1b[0m\x7fd\te\nf\r\ng\rh  ") == "abc[0md\te\nf\ng\nh"
    assert domain.clean_text("lone \ud800surrogate\udfff") == "lone surrogate"
    assert domain.clean_text("Привет 👋") == "Привет 👋"


def test_text_that_is_only_controls_is_empty():
    assert refusal(lambda: domain.clean_text("\x01\x02 \x1f\x7f")) == ("invalid", "text_empty")
    assert domain.clean_text("\x01", allow_empty=True) == ""


@pytest.mark.parametrize("value", [5, [], {}, True, 1.5])
def test_text_of_the_wrong_type_is_invalid(value):
    assert refusal(lambda: domain.clean_text(value)) == ("invalid", "text_invalid")


def test_text_too_long_is_too_large():
    assert refusal(lambda: domain.clean_text("x" * (domain.TEXT_MAX + 1))) == ("too_large", "text_too_long")


def test_a_stored_message_and_note_are_cleaned():
    history = started(OLGA)
    events = visitor_says(history, "hi\x00 there\x08")
    assert events[-1].data["text"] == "hi there"
    note = domain.decide_note(history.state, OLGA, "n1", "\x1bcall back\x07")
    assert note[0].data["text"] == "call back"
    assert refusal(lambda: domain.decide_note(history.state, OLGA, "n2", "\x00\x01")) == ("invalid", "text_empty")


@pytest.mark.parametrize("attachment", ["x", 5, [], {"file_id": "x"},
                                        {"file_id": "a" * 32, "name": "", "size": 1, "content_type": "x"},
                                        {"file_id": "a" * 32, "name": "f", "size": True, "content_type": "x"},
                                        {"file_id": "a" * 32, "name": "f", "size": 1, "content_type": "x", "more": 1}])
def test_an_attachment_that_is_not_a_stored_file_is_invalid(attachment):
    assert refusal(lambda: visitor_says(History(), "", attachment=attachment)) == ("invalid", "attachment_invalid")
    assert refusal(lambda: domain.decide_reply(started(OLGA).state, OLGA, "m", "", attachment)) == (
        "invalid", "attachment_invalid")


@pytest.mark.parametrize("contacts, code", [({"name": 5}, "name_invalid"), ({"phone": []}, "phone_invalid"),
                                            ({"email": "x" * 201}, "email_invalid"), ({}, "contacts_empty"),
                                            ({"name": "\x01 \x02"}, "contacts_empty")])
def test_bad_contacts(contacts, code):
    assert refusal(lambda: domain.decide_contacts(started().state, contacts)) == ("invalid", code)


def test_contacts_and_params_are_stripped_of_controls():
    state = started().state
    assert domain.decide_contacts(state, {"name": "Ve\x00ra\x1b", "phone": None})[0].data == {
        "name": "Vera", "phone": None, "email": None}
    assert domain.decide_custom_params(state, {"prod\x01uct": "Win\x07dows", "n": 5})[0].data == {
        "params": {"product": "Windows", "n": "5"}}
    for bad in ([], "x", 5, {"": "v"}, {"k": ["v"]}, {"k": "v" * 257}):
        assert refusal(lambda: domain.decide_custom_params(state, bad))[1] == "params_invalid"


# ---- page URLs ----------------------------------------------------------------------

def _page_url_max_lengths() -> set[int]:
    lengths = set()
    for event_type in ("chat.conversation_started", "chat.page_visited", "lead.requested"):
        schema = orjson.loads((REPO_ROOT / "schemas" / "events" / event_type / "v1.schema.json").read_bytes())
        lengths.add(schema["properties"]["page_url"]["maxLength"])
    return lengths


def test_the_page_url_limit_is_the_schemas():
    assert _page_url_max_lengths() == {domain.PAGE_URL_MAX}


@pytest.mark.parametrize("length", [2000, 2001, 3000, 10_000])
def test_a_long_page_url_is_truncated_never_refused(length):
    url = "https://shop.example.com/p?" + "utm_content=x&" * (length // 14 + 1)
    url = url[:length]
    history = History()
    events = visitor_says(history, page_url=url)  # History.add validates against the schemas
    assert events[0].data["page_url"] == url[:domain.PAGE_URL_MAX]
    # a later page, just as long, is recorded truncated too
    other = "https://shop.example.com/other?" + "q" * length
    events = visitor_says(history, "next", page_url=other)
    assert [e.type for e in events] == ["chat.page_visited", "chat.visitor_message_posted"]
    assert events[0].data["page_url"] == other[:domain.PAGE_URL_MAX]
    history.add(domain.decide_take(history.state, OLGA))
    lead = history.add(domain.decide_request_lead(history.state, OLGA, known={"email": "a@example.com"}))
    assert lead[0].data["page_url"] == other[:domain.PAGE_URL_MAX]


@pytest.mark.parametrize("page_url", [5, [], {}, True, "", "   ", "\x01\x02"])
def test_a_page_url_that_is_not_text_is_no_page(page_url):
    events = visitor_says(History(), page_url=page_url)
    assert events[0].data["page_url"] is None


def test_the_same_page_again_records_no_visit():
    history = History()
    visitor_says(history, page_url="https://example.com/a")
    assert [e.type for e in visitor_says(history, "b", page_url="https://example.com/a")] == [
        "chat.visitor_message_posted"]


# ---- "Send to CRM": no empty lead, no second lead by accident ----------------------------

def test_a_lead_needs_a_phone_or_an_email_and_takes_the_known_name():
    history = started(OLGA)
    assert refusal(lambda: domain.decide_request_lead(history.state, OLGA)) == ("invalid", "lead_contacts_missing")
    # A name alone reaches nobody.
    history.add(domain.decide_operator_contacts(history.state, OLGA, {"name": "Maria"}))
    assert refusal(lambda: domain.decide_request_lead(history.state, OLGA)) == ("invalid", "lead_contacts_missing")
    # What an earlier conversation knew fills the gaps; this conversation's own contacts win.
    [lead] = history.add(domain.decide_request_lead(
        history.state, OLGA, known={"name": "Maria Ivanova", "phone": "+79001234567", "address": "x"}))
    assert lead.data["contacts"] == {"name": "Maria", "phone": "+79001234567"}


def test_a_second_lead_for_the_same_conversation_needs_again():
    history = started(OLGA)
    history.add(domain.decide_operator_contacts(history.state, OLGA, {"email": "maria@example.com"}))
    history.add(domain.decide_request_lead(history.state, OLGA))
    assert history.state.leads_requested == 1
    assert refusal(lambda: domain.decide_request_lead(history.state, OLGA)) == ("conflict", "lead_already_sent")
    assert refusal(lambda: domain.decide_request_lead(history.state, ADMIN)) == ("conflict", "lead_already_sent")
    [again] = history.add(domain.decide_request_lead(history.state, OLGA, again=True))
    assert again.type == "lead.requested" and history.state.leads_requested == 2
