"""The chaos figures catch what they name: fed client records and stored events with one
fault each, the matching figure (and only it) is non-zero. No processes: the short run
(test_chaos.py) proves the figures are 0 on the real system; this proves a 0 there
means something."""
from __future__ import annotations

import time

from chaos.checks import figures
from chaos.clients import Operator, ServerError, Traffic, Visitor
from chaos.kills import Kill
from chaos.rebuild import TableCheck

CID = "c1"


def _event(seq: int, kind: str, text: str, message_id: str) -> dict:
    return {"type": "conversation_event", "conversation_id": CID, "seq": seq, "event": kind,
            "data": {"text": text, "message_id": message_id}}


def healthy():
    """One visitor, two messages, both answered, everything seen once: all figures 0."""
    traffic = Traffic()
    visitor = Visitor(1, "http://gw", None, traffic)
    operator = Operator("owner", "o@x", "pw", "http://gw", None, traffic)
    stored = {CID: [("chat.visitor_message_posted", 2, "v1 #1"), ("chat.operator_replied", 4, "re: v1 #1"),
                    ("chat.visitor_message_posted", 5, "v1 #2"), ("chat.operator_replied", 6, "re: v1 #2")]}
    for kind, seq, text in stored[CID]:
        side = "visitor_message" if kind == "chat.visitor_message_posted" else "operator_message"
        visitor.receive({"type": "event", "seq": seq, "kind": side, "text": text, "id": f"m{seq}"})
        operator.show(_event(seq, kind, text, f"m{seq}"))
    visitor.acked = {"v1 #1": 2, "v1 #2": 5}
    operator.replied = {"v1 #1": "re: v1 #1", "v1 #2": "re: v1 #2"}
    tables = [TableCheck("conversation", "conversations", 1, 1, 0, 0, 0)]
    return visitor, operator, traffic, stored, tables


def failing(visitor, operator, traffic, stored, tables, kills=()):
    return figures([visitor], [operator], traffic, list(kills), stored, tables).failures()


def test_a_healthy_run_has_every_figure_at_zero():
    assert failing(*healthy()) == {}


def test_each_fault_shows_in_its_own_figure():
    v, o, t, stored, tables = healthy()
    stored[CID].append(("chat.visitor_message_posted", 7, "v1 #2"))
    assert failing(v, o, t, stored, tables) == {"duplicates_stored": 1}

    v, o, t, stored, tables = healthy()
    v.acked["v1 #3"] = 9                      # acknowledged, never stored
    o.replied["v1 #3"] = "re: v1 #3"
    assert failing(v, o, t, stored, tables) == {"acknowledged_lost": 2}

    v, o, t, stored, tables = healthy()
    v.receive({"type": "event", "seq": 5, "kind": "visitor_message", "text": "v1 #2", "id": "m5"})
    assert failing(v, o, t, stored, tables) == {"duplicates_seen_by_visitors": 1}

    v, o, t, stored, tables = healthy()
    o.show(_event(8, "chat.visitor_message_posted", "v1 #2", "m5"))   # the same message at another seq
    assert failing(v, o, t, stored, tables) == {"duplicates_seen_by_operators": 1}

    v, o, t, stored, tables = healthy()
    stored[CID] = [stored[CID][2], stored[CID][0], stored[CID][1], stored[CID][3]]   # #2 before #1
    assert failing(v, o, t, stored, tables) == {"conversations_out_of_order": 1}

    v, o, t, stored, tables = healthy()
    tables.append(TableCheck("conversation", "conversation_messages", 4, 3, 1, 0, 0))
    assert failing(v, o, t, stored, tables) == {"projections_differing": 1}

    v, o, t, stored, tables = healthy()
    del o.replied["v1 #2"]
    assert failing(v, o, t, stored, tables) == {"unanswered": 1}


def test_a_5xx_counts_against_the_run_only_outside_a_kill_window():
    v, o, t, stored, tables = healthy()
    now = time.time()
    kill = Kill("conversation", now - 10, 2.0, now + 5)
    t.errors_5xx.append(ServerError(now, "visitor 1", "POST /x", 503, "service_unavailable"))
    assert failing(v, o, t, stored, tables, [kill]) == {}
    t.errors_5xx.append(ServerError(now + 60, "visitor 1", "POST /x", 500, "internal"))
    assert failing(v, o, t, stored, tables, [kill]) == {"errors_5xx_outside_kills": 1}
