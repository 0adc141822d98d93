"""Issue 12, item 4: two conversation-service replicas and two gateways run together on
the same schemas (real PostgreSQL and Kafka). Visitors write through both gateways at
once; nothing is lost, every conversation keeps its order (in the store, on both
gateways' operator sockets), and operators racing to take one conversation through
both replicas produce exactly one winner.

Gateway A calls conversation replica A, gateway B replica B. Both replicas run the
relay (one leads, the other waits on its lock) and the same consumer groups (Kafka
splits the partitions between them); both gateways read the live topics."""
from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from parley.service import POOL, create_app

import conversation.__main__ as conversation_main
import gateway.__main__ as gateway_main
from gateway import upstreams
from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD, by_host_name, settings
from tests.support import AppSocket, eventually

VISITORS_PER_GATEWAY, MESSAGES = 10, 8  # within a gateway's 120 messages a minute per address


@dataclass
class TwoOfEach:
    stack: object
    conversation_b: TestClient
    gateway_b: TestClient

    @property
    def gateways(self) -> list[TestClient]:
        return [self.stack.gateway, self.gateway_b]


async def _schema_of(client: TestClient) -> str:
    return await client.app[POOL].fetchval("select current_schema()")


@pytest.fixture
async def two(stack, platform, monkeypatch):
    conv_schema, gw_schema = await _schema_of(stack.conversation), await _schema_of(stack.gateway)
    conversation_b = TestClient(TestServer(create_app(
        dataclasses.replace(conversation_main.SPEC, schema=conv_schema), settings(platform, "conversation"))))
    await conversation_b.start_server()
    monkeypatch.setenv("PARLEY_CONVERSATION_URL", by_host_name(conversation_b))
    gateway_b = TestClient(TestServer(create_app(
        dataclasses.replace(gateway_main.SPEC, schema=gw_schema), settings(platform, "gateway"))))
    await gateway_b.start_server()
    yield TwoOfEach(stack, conversation_b, gateway_b)
    await gateway_b.close()
    await conversation_b.close()


async def _call(gateway: TestClient, method: str, path: str, token: str, **kwargs):
    gateway.session.cookie_jar.clear()
    return await gateway.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def _visitor_texts(frames: list[dict]) -> dict[str, list[tuple[int, str]]]:
    by_conversation: dict[str, list[tuple[int, str]]] = {}
    for f in frames:
        if f.get("type") == "conversation_event" and f["event"] == "chat.visitor_message_posted":
            by_conversation.setdefault(f["conversation_id"], []).append((f["seq"], f["data"]["text"]))
    return by_conversation


async def test_visitors_through_two_gateways_and_two_replicas_lose_nothing_and_keep_each_conversations_order(two):
    stack = two.stack
    assert stack.gateway.app[upstreams.CONVERSATION].base_url != two.gateway_b.app[upstreams.CONVERSATION].base_url
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    sockets = [await AppSocket.open(g, owner) for g in two.gateways]  # the admin, on both gateways
    await asyncio.sleep(0.5)

    visitors = [ScriptedVisitor(g) for g in two.gateways for _ in range(VISITORS_PER_GATEWAY)]
    await asyncio.gather(*[v.start() for v in visitors])

    async def chat(i: int, v: ScriptedVisitor):
        for m in range(MESSAGES):
            await v.send_and_wait(f"visitor {i} message {m}")

    await asyncio.gather(*[chat(i, v) for i, v in enumerate(visitors)])
    for v in visitors:  # the visitor's own socket: each message once, in order (seqs checked as they came)
        await v.wait_for(lambda v=v: len(v.texts("visitor_message")) == MESSAGES, "the visitor's own messages")
        assert v.errors == []
    sent = [[f"visitor {i} message {m}" for m in range(MESSAGES)] for i in range(len(visitors))]
    for i, v in enumerate(visitors):
        assert v.texts("visitor_message") == sent[i]

    # Each gateway's operator socket got every message of every conversation, in order -
    # those written through the other gateway and the other replica too.
    for frames in (socket.frames for socket in sockets):
        await eventually(lambda frames=frames: sum(len(t) for t in _visitor_texts(frames).values())
                         >= len(visitors) * MESSAGES, timeout=60, what="every message on the operator socket")
    by_first = {texts[0][1]: cid for cid, texts in _visitor_texts(sockets[0].frames).items()}
    expected = {by_first[sent[i][0]]: sent[i] for i in range(len(visitors))}
    assert len(expected) == len(visitors)  # one conversation each
    for socket in sockets:
        seen = _visitor_texts(socket.frames)
        assert {cid: [t for _, t in pairs] for cid, pairs in seen.items()} == expected
        for pairs in seen.values():
            assert [s for s, _ in pairs] == sorted({s for s, _ in pairs})

    # The stored transcripts, read through either gateway (either replica), say the same.
    for n, (cid, texts) in enumerate(expected.items()):
        r = await _call(two.gateways[n % 2], "GET", f"/api/conversations/{cid}", owner)
        assert r.status == 200, await r.text()
        stored = [e["data"]["text"] for e in (await r.json())["events"] if e["event"] == "chat.visitor_message_posted"]
        assert stored == texts

    # Both replicas' inbox projections (one consumer group, partitions split) list them all.
    async def inbox_complete() -> bool:
        lists = []
        for g in two.gateways:
            r = await _call(g, "GET", "/api/inbox?view=all", owner)
            lists.append({c["id"] for c in (await r.json())["conversations"]})
        return all(set(expected) <= ids for ids in lists)
    await eventually(inbox_complete, timeout=30, what="every conversation in the inbox through both gateways")

    for socket in sockets:
        await socket.close()
    for v in visitors:
        await v.drop()


async def test_operators_racing_to_take_through_both_replicas_have_exactly_one_winner(two):
    stack = two.stack
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operators = [await stack.add_operator(owner, f"Racer {i}") for i in range(10)]
    for round_ in range(3):
        visitor = ScriptedVisitor(two.gateways[round_ % 2])
        await visitor.start()
        await visitor.send_and_wait(f"Who will answer, round {round_}?")
        question = f"Who will answer, round {round_}?"
        inbox = (await (await _call(two.gateways[1 - round_ % 2], "GET", "/api/inbox?view=new", owner)).json())
        [cid] = [c["id"] for c in inbox["conversations"] if c["last_message_text"] == question]
        # Half the operators through gateway A (replica A), half through gateway B (replica B).
        answers = await asyncio.gather(*[_call(two.gateways[i % 2], "POST", f"/api/conversations/{cid}/take", token)
                                         for i, (_, token, _) in enumerate(operators)])
        statuses = [a.status for a in answers]
        assert statuses.count(200) == 1, statuses
        assert set(statuses) == {200, 409}, statuses
        winner = statuses.index(200)
        for g in two.gateways:
            r = await _call(g, "GET", f"/api/conversations/{cid}", owner)
            events = (await r.json())["events"]
            taken = [e for e in events if e["event"] == "assignment.taken"]
            assert len(taken) == 1 and taken[0]["data"]["operator_id"] == operators[winner][0]
        await visitor.drop()
