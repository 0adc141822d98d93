"""The figures of a chaos run, from what the clients remember and what the event store
holds. Every message text is unique by construction (`v<visitor> #<n>`, `re: ...`), so
a text stands for its message.

- acknowledged lost: a visitor message acked, or an operator reply answered 200, that
  is not in the conversation's events;
- duplicates stored: a text in the events more than once;
- duplicates seen: by a visitor, an event frame of a seq it already had (the socket
  promises each exactly once, across reconnects with `after=`); by an operator, one
  message shown at two seqs, or a seq shown with two contents (a redelivered push of the
  same seq is dropped by the app, and only counted);
- conversations out of order: in the events, a visitor's numbers not increasing or a
  reply before its question; on a visitor's socket, a seq below the last one;
- not delivered: acknowledged, stored, but never shown to the other side;
- never acknowledged: a visitor message that got no ack before the client gave up, or a
  final error (the run sends only valid messages, so any final error is wrong);
- unanswered: an acked visitor message no operator reply was acknowledged for (the
  operators answer every message they are shown, retrying until they get 200);
- 5xx: every answer of 500 or more, sorted into kill windows (kills.py) or outside."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from chaos.clients import Operator, Traffic, Visitor, reply_text
from chaos.kills import Kill
from chaos.rebuild import TableCheck

_NUMBERED = re.compile(r"^v(\d+) #(\d+)$")


@dataclass
class Figures:
    acknowledged: int = 0
    acknowledged_lost: int = 0
    duplicates_stored: int = 0
    duplicates_seen_by_visitors: int = 0
    duplicates_seen_by_operators: int = 0
    conversations_out_of_order: int = 0
    not_delivered: int = 0
    never_acknowledged: int = 0
    unanswered: int = 0
    projections_differing: int = 0
    errors_5xx_outside_kills: int = 0
    # informative
    conversations: int = 0
    errors_5xx_in_kills: dict[str, int] = field(default_factory=dict)
    connection_failures: int = 0
    redeliveries_absorbed: int = 0
    reconnects: int = 0
    conversations_erased: int = 0     # before the rebuild, which must bring them back erased

    FAILING = ("acknowledged_lost", "duplicates_stored", "duplicates_seen_by_visitors",
               "duplicates_seen_by_operators", "conversations_out_of_order", "not_delivered",
               "never_acknowledged", "unanswered", "projections_differing", "errors_5xx_outside_kills")

    def failures(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.FAILING if getattr(self, name)}


async def stored_messages(database_url: str) -> dict[str, list[tuple[str, int, str]]]:
    """conversation id -> [(type, seq, text)] in stream order, from the event store."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """select stream_id, stream_version, type, data->>'text' as text from conversation.events
               where type in ('chat.visitor_message_posted', 'chat.operator_replied')
               order by stream_id, stream_version""")
    finally:
        await conn.close()
    by_conversation: dict[str, list[tuple[str, int, str]]] = {}
    for r in rows:
        by_conversation.setdefault(r["stream_id"].removeprefix("conversation-"), []).append(
            (r["type"], r["stream_version"], r["text"]))
    return by_conversation


def _out_of_order(messages: list[tuple[str, int, str]]) -> bool:
    last_number: dict[str, int] = {}
    asked: set[str] = set()
    for kind, _, text in messages:
        if kind == "chat.visitor_message_posted":
            if text in asked:
                continue  # a duplicate: counted as one, not as disorder too
            m = _NUMBERED.match(text)
            if m:
                if int(m.group(2)) <= last_number.get(m.group(1), 0):
                    return True
                last_number[m.group(1)] = int(m.group(2))
            asked.add(text)
        elif text.startswith("re: ") and text[4:] not in asked:
            return True
    return False


def figures(visitors: list[Visitor], operators: list[Operator], traffic: Traffic, kills: list[Kill],
            stored: dict[str, list[tuple[str, int, str]]], tables: list[TableCheck]) -> Figures:
    f = Figures(conversations=len(stored), connection_failures=traffic.connection_failures)
    texts = Counter(text for messages in stored.values() for _, _, text in messages)
    f.duplicates_stored = sum(n - 1 for n in texts.values() if n > 1)
    f.conversations_out_of_order = sum(1 for messages in stored.values() if _out_of_order(messages))

    acked_visitor = {t for v in visitors for t in v.acked}
    acked_replies = {r for o in operators for r in o.replied.values() if r}
    f.acknowledged = len(acked_visitor) + len(acked_replies)
    f.acknowledged_lost = sum(1 for t in acked_visitor | acked_replies if t not in texts)

    shown_to_operators = {e["data"]["text"] for o in operators for shown in o.view.values() for e in shown.values()
                          if e["event"] == "chat.visitor_message_posted"}
    f.not_delivered = sum(1 for t in acked_visitor if t in texts and t not in shown_to_operators)
    for v in visitors:
        seen = set(v.operator_texts())
        f.not_delivered += sum(1 for t in acked_replies if t in texts and _NUMBERED.match(t[4:])
                               and _NUMBERED.match(t[4:]).group(1) == str(v.number) and t not in seen)
        f.duplicates_seen_by_visitors += v.view.duplicates + len(v.own_texts()) - len(set(v.own_texts()))
        f.conversations_out_of_order += 1 if v.view.out_of_order else 0
        f.never_acknowledged += len(v.never_acked) + len(v.final_errors)
        f.reconnects += max(v.connections - 1, 0)
    # every acked visitor message must have been answered (the operators never give up)
    f.unanswered = sum(1 for t in acked_visitor if reply_text(t) not in acked_replies)
    for o in operators:
        f.duplicates_seen_by_operators += o.duplicates_seen() + o.conflicts
        f.redeliveries_absorbed += o.redeliveries
        f.never_acknowledged += len(o.final_errors)
        f.reconnects += max(o.connections - 1, 0)
    f.projections_differing = sum(1 for t in tables if not t.equal)
    for e in traffic.errors_5xx:
        if any(k.covers(e.at) for k in kills):
            key = f"{e.status} {e.code or '-'}"
            f.errors_5xx_in_kills[key] = f.errors_5xx_in_kills.get(key, 0) + 1
        else:
            f.errors_5xx_outside_kills += 1
    return f
