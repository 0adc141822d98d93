"""Realistic conversation histories, made by the conversation service's own decisions
(domain, offers, receipts, ratings): each step is a `decide(state) -> events` as a
command would run it. Every event type the inbox projection handles occurs - starts
(and a returning visitor's new conversation linked to the closed one), messages with
attachments and page changes, params, contacts from both sides, takes, assignments,
offers that expire and are accepted, reads both ways, notes, statuses, lead requests
and ratings - in proportions like a live chat's: mostly messages.

Used by the rebuild bench (folded here and written straight to a topic when no other
section filled one) and by the rebuild test (run through the live command path)."""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator

from parley.envelope import Event

from conversation import domain, offers, ratings, receipts
from conversation.domain import Conversation, Operator

Decide = Callable[[Conversation | None], list[Event]]
PROJECT = "demo"
OPERATORS = [Operator(id=str(uuid.UUID(int=i + 1)), project_id=PROJECT, name=name, is_admin=i == 0,
                      email=f"{name.lower()}@example.com") for i, name in enumerate(("Anna", "Olga", "Petr"))]
ROBIN = offers.Settings(mode="round_robin")


@dataclass
class Life:
    """One conversation's steps, in order; `then` is the returning visitor's next one."""
    conversation_id: str
    visitor_id: str
    steps: list[Decide] = field(default_factory=list)
    then: "Life | None" = None


def life(rng: random.Random, visitor_id: str | None = None, previous: str | None = None, depth: int = 0) -> Life:
    cid, visitor_id = str(uuid.uuid4()), visitor_id or f"v-{uuid.uuid4().hex[:12]}"
    me = Life(cid, visitor_id)
    add = me.steps.append
    page = f"https://shop.test/{rng.choice(['', 'pricing', 'windows', 'contacts'])}"

    def visitor(text: str, *, page_url: str | None = None, attachment: dict | None = None) -> Decide:
        message_id = str(uuid.uuid4())
        return lambda s: domain.decide_visitor_message(
            s, conversation_id=cid, project_id=PROJECT, visitor_id=visitor_id, message_id=message_id, text=text,
            attachment=attachment, page_url=page_url, previous_conversation_id=previous)

    if previous is None and rng.random() < 0.1:   # the offline form, while the chat is closed
        add(lambda s: domain.decide_offline(s, conversation_id=cid, project_id=PROJECT, visitor_id=visitor_id,
                                            message_id=str(uuid.uuid4()), contacts={"phone": "+7 900 123-45-67"},
                                            text="Call me back, please", page_url=page, chat_open=False))
    else:
        add(visitor(rng.choice(["Hello", "Hi! Is anyone there?", "A question about prices"]), page_url=page))
    if rng.random() < 0.7:
        add(lambda s: domain.decide_custom_params(s, {"product": rng.choice(["Windows", "Office"]),
                                                      "office": rng.choice(["Moscow", "Kazan"])}))
    if rng.random() < 0.3:
        add(lambda s: domain.decide_contacts(s, {"name": "Vera", "email": f"{visitor_id}@example.com"},
                                             visitor_id=visitor_id))
    who = rng.choice(OPERATORS[1:])
    match rng.random():
        case x if x < 0.4:
            add(lambda s: domain.decide_take(s, who))
        case x if x < 0.6:
            add(lambda s: domain.decide_assign(s, OPERATORS[0], who))
        case _:   # offered round robin: the first offer expires, the next is accepted
            first, second = str(uuid.uuid4()), str(uuid.uuid4())
            other = OPERATORS[1] if who is not OPERATORS[1] else OPERATORS[2]
            add(lambda s: offers.decide_offer(s, offers.Candidate(other.id, other.name), first, ROBIN))
            add(lambda s: offers.decide_expire(s, first, offers.Candidate(who.id, who.name), second, ROBIN))
            add(lambda s: offers.decide_accept(s, who, second))
    for round_ in range(rng.randint(1, 6)):
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.05:
                add(visitor("", attachment={"file_id": uuid.uuid4().hex, "name": "photo.png", "size": 1024,
                                            "content_type": "image/png"}))
            else:
                add(visitor("x" * rng.randint(5, 300), page_url=page if rng.random() < 0.9 else page + "?p=2"))
        if rng.random() < 0.6:
            add(lambda s: receipts.decide_operator_read(s, who, s.last_visitor_seq))
        add(lambda s, message_id=str(uuid.uuid4()): domain.decide_reply(s, who, message_id, "Sure, let me check",
                                                                        None))
        if rng.random() < 0.5:
            add(lambda s: receipts.decide_visitor_read(s, visitor_id, s.last_reply_seq))
        if rng.random() < 0.3:   # the visitor writes on before the read: unread stays above zero
            add(visitor("and one more thing"))
            add(lambda s: receipts.decide_operator_read(s, who, s.last_visitor_seq - 1))
    if rng.random() < 0.2:
        add(lambda s: domain.decide_note(s, who, str(uuid.uuid4()), "VIP"))
    if rng.random() < 0.2:
        add(lambda s: domain.decide_operator_contacts(s, who, {"name": "Vera P.", "phone": "+7 900 000 00 01",
                                                               "email": None}))
    if rng.random() < 0.2:
        add(lambda s: domain.decide_request_lead(s, who, known={"phone": "+79000000001"}))
    if rng.random() < 0.7:
        add(lambda s: domain.decide_status(s, who, "closed"))
        if rng.random() < 0.5:
            add(lambda s: ratings.decide_rating(s, visitor_id, rng.randint(1, 5), rng.choice([None, "Thanks!"])))
        if depth < 2 and rng.random() < 0.3:   # the visitor comes back: a new conversation, linked
            me.then = life(rng, visitor_id, previous=cid, depth=depth + 1)
    return me


def events(total: int, seed: int = 12, at_once: int = 200) -> Iterator[Event]:
    """About `total` events of conversations going on `at_once` at a time, interleaved
    as live traffic is (a returning visitor's conversation begins after the closed one
    ends), numbered as the event store numbers them. Conversations begun run to their
    end, so a little more than `total` come."""
    rng = random.Random(seed)
    running: list[tuple[Life, int, Conversation | None, int]] = []   # life, next step, state, version
    made = 0
    while made < total or running:
        while made < total and len(running) < at_once:
            running.append((life(rng), 0, None, 0))
        i = rng.randrange(len(running))
        current, step, state, version = running[i]
        for event in current.steps[step](state):
            version += 1
            event = event.with_version(version)
            state = domain.evolve(state, event)
            made += 1
            yield event
        if step + 1 < len(current.steps):
            running[i] = (current, step + 1, state, version)
        elif current.then is not None and made < total:
            running[i] = (current.then, 0, None, 0)
        else:
            running.pop(i)
