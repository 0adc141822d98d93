"""Read receipts: who has read the conversation up to where (issue 13, item 3). Pure.

Reads are events (chat.read_by_operator, chat.read_by_visitor) because they change
durable state - the inbox's unread count, the "Read" and "Seen" marks after a reload -
but they are cheap and bounded: each names the seq (stream version) read up to, clamped
to the other side's last message, and nothing is appended unless it moves forward. So
a read is idempotent (the same seq again appends nothing), monotonic (an older seq
appends nothing), and there are never more read events than messages to read.

Who may mark read: an operator who may see the conversation (opening an unclaimed one
in "New" counts: the visitor is being looked at); the conversation's own visitor."""
from __future__ import annotations

from typing import Any

from parley.contract import conversation_stream
from parley.envelope import Event, new_event

from conversation.domain import Conversation, DomainError, Operator, can_see


def _seq(seq: Any) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise DomainError("seq_invalid", "seq is the last event the reader has shown, a whole number.")
    return seq


def decide_operator_read(state: Conversation | None, who: Operator, seq: Any) -> list[Event]:
    """An operator has the conversation open, showing it up to `seq`. Nothing while
    nobody has taken it: "Read" tells the visitor that whoever answers has seen their
    message, which an admin or an operator only previewing the queue has not promised."""
    seq = _seq(seq)
    if state is None or not can_see(state, who):
        raise DomainError("not_found", "Conversation not found.", "not_found")
    if state.assignee_id is None:
        return []
    upto = min(seq, state.last_visitor_seq)
    if upto <= state.read_by_operator_seq:
        return []
    return [new_event("chat.read_by_operator", conversation_stream(state.id),
                      {"seq": upto, "operator_id": who.id, "operator_name": who.name}, project_id=state.project_id)]


def decide_visitor_read(state: Conversation | None, visitor_id: str, seq: Any) -> list[Event]:
    """The widget has shown the operators' messages up to `seq` to its visitor."""
    seq = _seq(seq)
    if state is None or state.visitor_id != visitor_id:
        raise DomainError("not_found", "Conversation not found.", "not_found")
    upto = min(seq, state.last_reply_seq)
    if upto <= state.read_by_visitor_seq:
        return []
    return [new_event("chat.read_by_visitor", conversation_stream(state.id), {"seq": upto},
                      project_id=state.project_id)]
