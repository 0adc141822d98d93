"""Issue 20, item 1: no personal data in readable form on any topic. A conversation
through the real stack (gateway, conversation service, crm-bridge in-process, real
Kafka and PostgreSQL) carries one marker in every personal field - the page URL, custom
params, contacts, the visitor's message and attachment name, the operator's reply and
note, the rating comment, and a lead request with all of them. Then:
- every record of every topic, read from the beginning with a plain Kafka consumer,
  holds no marker (what is personal travels sealed, parley/personal.py);
- the readers that need the data still have it: the visitor's socket shows the reply
  (the gateway opened it with the conversation service's key) and the CRM's lead has
  the transcript and contacts (crm-bridge opened the lead request);
- the owning service's own store holds it (a plain row, what erasure will scrub)."""
from __future__ import annotations

import asyncio

from parley.service import POOL

from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure, wait_settled
from tests.privacy.marked import all_published, every_record, marked_conversation


async def test_no_topic_holds_a_personal_field_in_readable_form(crm_stack, platform):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, default_responsible="9")
    cid, mark, visitor = await marked_conversation(stack, owner)

    # The readers that need it can read it: the visitor saw the reply, the CRM got the lead.
    assert f"Hello {mark}" in visitor.texts("operator_message")
    [delivery] = await wait_settled(bridge, 1)
    assert delivery["status"] == "delivered", delivery["last_error"]
    [(_, draft)] = bridge.crm.leads.values()
    assert mark in draft.comments and draft.phone == "+79001112233" and mark in (draft.name or "")

    # The owner's store has it (plain, until erased); everything it published has gone out.
    conversation_pool = stack.conversation.app[POOL]
    assert await conversation_pool.fetchval("select count(*) from events where data::text like '%' || $1 || '%'",
                                            mark) >= 8
    await all_published(conversation_pool)
    await all_published(bridge.app[POOL])
    await asyncio.sleep(0.5)

    records = await every_record(platform.bootstrap)
    assert any(cid.encode() in r for r in records)                 # this conversation is on the bus...
    leaked = [r[:300] for r in records if mark.encode() in r or mark.lower().encode() in r]
    assert leaked == []                                           # ...and none of its personal data is
