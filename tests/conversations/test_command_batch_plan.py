"""Set-based commands (conversation.command_batch.plan, issue 21), without I/O: a batch
decides every command in order, each on what the ones before it left, and what it
writes - one append per stream, with every command's record - equals what the commands
one at a time would have written."""
from __future__ import annotations

import uuid

from conversation import domain
from conversation.command_batch import Basis, Command, plan, with_key
from conversation.domain import DomainError
from parley.contract import conversation_stream
from tests.conversations.test_conversation_domain import ADMIN, PROJECT

A, B = str(uuid.uuid4()), str(uuid.uuid4())


def message(cid: str, message_id: str, text: str = "hello", command_id: str | None = None) -> Command:
    def decide(state):
        return domain.decide_visitor_message(state, conversation_id=cid, project_id=PROJECT, visitor_id=f"v-{cid}",
                                             message_id=message_id, text=text, attachment=None, page_url=None,
                                             chat_open=True)
    return Command(command_id or f"visitor-message:{cid}:{message_id}", cid, decide, visitor_message_id=message_id)


def valid(_event) -> None:
    return None


def fresh(*cids: str) -> Basis:
    return Basis({cid: (0, None) for cid in cids})


def test_a_stream_twice_in_one_batch_decides_the_second_time_on_the_first_result():
    planned = plan([message(A, "m1"), message(B, "b1"), message(A, "m2")], fresh(A, B), valid)
    first, other, second = planned.outcomes
    assert [e.type for e in first.events] == ["chat.conversation_started", "chat.visitor_message_posted"]
    # The second message continues the stream the first started: no second start, next version.
    assert [(e.type, e.stream_version) for e in second.events] == [("chat.visitor_message_posted", 3)]
    assert [a.stream_id for a in planned.appends] == [conversation_stream(A), conversation_stream(B)]
    a_append = planned.appends[0]
    assert a_append.expected_version == 0   # as read: the whole stream's events in one append
    assert [e.stream_version for e in a_append.events] == [1, 2, 3]
    assert [c for c, _ in a_append.commands] == [f"visitor-message:{A}:m1", f"visitor-message:{A}:m2"]
    versions = {state.id: version for version, state in planned.states}
    assert versions == {A: 3, B: 2}


def test_the_same_message_twice_in_one_batch_is_stored_once():
    planned = plan([message(A, "m1", command_id="c1"), message(A, "m1", command_id="c2")], fresh(A), valid)
    first, resend = planned.outcomes
    assert len(first.events) == 2 and resend.events == [] and not resend.replayed
    assert [c for c, _ in planned.appends[0].commands] == ["c1"]   # nothing appended, nothing recorded


def test_a_command_id_already_run_or_run_earlier_in_the_batch_returns_its_first_outcome():
    recorded = Basis({A: (0, None)}, recorded={"done-before": {"conversation_id": A}})
    planned = plan([message(A, "m0", command_id="done-before"), message(A, "m1", command_id="c1"),
                    message(A, "m1-again", command_id="c1")], recorded, valid)
    before, first, retry = planned.outcomes
    assert before.replayed and before.events == [] and before.result == {"conversation_id": A}
    assert not first.replayed and retry.replayed and retry.result == first.result and retry.events == []
    assert [e.data.get("message_id") for e in planned.events if e.type == "chat.visitor_message_posted"] == ["m1"]


def test_a_refused_command_fails_alone_and_the_stream_goes_on_from_the_last_accepted():
    def refused(state):
        raise DomainError("invalid", "text_required", "A message needs text.")
    planned = plan([message(A, "m1"), Command("bad", A, refused), message(A, "m2")], fresh(A), valid)
    ok1, bad, ok2 = planned.outcomes
    assert isinstance(bad, DomainError)
    assert [e.stream_version for e in ok2.events] == [3]
    assert [c for c, _ in planned.appends[0].commands] == [f"visitor-message:{A}:m1", f"visitor-message:{A}:m2"]


def test_an_event_that_breaks_its_schema_fails_only_its_command():
    def strict(event):
        if event.data.get("text") == "bad":
            raise ValueError("breaks its schema")
    planned = plan([message(A, "m1", text="bad"), message(B, "b1")], fresh(A, B), strict)
    assert isinstance(planned.outcomes[0], ValueError)
    assert [a.stream_id for a in planned.appends] == [conversation_stream(B)]


def test_a_resend_of_a_stored_message_is_absorbed_by_the_ids_found():
    started = domain.fold(domain.decide_visitor_message(
        None, conversation_id=A, project_id=PROJECT, visitor_id=f"v-{A}", message_id="m1", text="hi",
        attachment=None, page_url=None, chat_open=True))
    kept = domain.kept(started)
    planned = plan([message(A, "m1", command_id="resend")],
                   Basis({A: (2, kept)}, found=frozenset({(A, "visitor", "m1")})), valid)
    assert planned.outcomes[0].events == [] and planned.appends == []


def test_operator_commands_decide_on_the_batch_state_too():
    planned = plan([message(A, "m1"),
                    Command("take", A, lambda s: domain.decide_take(s, ADMIN)),
                    Command("take-again", A, lambda s: domain.decide_take(s, ADMIN))], fresh(A), valid)
    _, take, again = planned.outcomes
    assert [e.type for e in take.events][0] == "assignment.taken"
    # The second take sees the first's assignee: refused or nothing, never a second assignment.
    assert isinstance(again, DomainError) or again.events == []


def test_only_the_command_that_started_a_conversation_is_handed_its_key():
    planned = plan([message(A, "m1"), message(A, "m2"), message(B, "b1", text=""), message(A, "m1")],
                   fresh(A, B), valid)
    made = {conversation_stream(A): b"k" * 32, conversation_stream(B): b"j" * 32}
    started, later, refused, resent = (with_key(o, made) for o in planned.outcomes)
    assert started.subject_key == b"k" * 32            # the gateway that asked opens the first pushes with it
    assert later.subject_key is None and resent.subject_key is None   # A's key went out once
    assert isinstance(refused, DomainError)            # a refusal stays what it was
    assert with_key(planned.outcomes[0], {}).subject_key is None   # no key made (erased): nothing to hand on
