"""Which conversation events move the scheduler's timers (scheduler/timers.py), without
I/O. The consumer is given only the types it names (ConsumerSpec.types), so a type that
moves a timer but is missing from that list would silently never move it."""
from __future__ import annotations

from parley.config import REPO_ROOT
from parley.envelope import new_event

from scheduler import timers

ALL_TYPES = sorted(p.name for p in (REPO_ROOT / "schemas" / "events").iterdir())


def moves(event_type: str, **data) -> list[tuple[str, bool]]:
    return timers.timer_moves(new_event(event_type, "conversation-0b6c1c5e-8d3f-4b1a-9c62-1f0e2d3c4b5a", data,
                                        project_id="demo"))


def test_every_type_that_moves_a_timer_or_an_offer_is_one_the_consumer_is_given():
    acting = {t for t in ALL_TYPES
              if any(moves(t, status=s) for s in ("new", "in_work", "closed")) or t.startswith("assignment.")}
    assert acting <= timers.EVENT_TYPES
    assert timers.EVENT_TYPES <= set(ALL_TYPES)


def test_messages_move_no_timer():
    """The idle timer is set again from the last message only when it fires (issue 21)."""
    assert moves("chat.visitor_message_posted") == moves("chat.operator_replied") == []
    assert "chat.visitor_message_posted" not in timers.EVENT_TYPES


def test_status_changes():
    assert moves("chat.conversation_started") == [("unanswered", True), ("idle", True)]
    assert moves("status.changed", status="closed") == [("unanswered", False), ("idle", False)]
    assert moves("status.changed", status="in_work") == [("unanswered", False), ("idle", True)]
    assert moves("status.changed", status="new") == [("unanswered", True), ("idle", True)]
    assert moves("assignment.taken") == moves("assignment.assigned") == [("unanswered", False)]
