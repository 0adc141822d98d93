"""Acknowledged auto-assignment through the stack (issue 13, item 2): real Kafka and
PostgreSQL, the registry's presence, the conversation service's sweep and the
scheduler's offer timers (a timer minute of 0.5 s: an offer of 120 s stands 1 s).

- round robin with three operators online: offers rotate, each operator's app gets the
  pop-up for their own, Accept makes them the assignee and nobody else may accept it;
- an offer not accepted expires and moves on to the next operator exactly once, and
  after everyone online has let it expire the conversation waits in New;
- least_busy never offers past an operator's capacity (standing offers count)."""
from __future__ import annotations

import uuid

from parley.service import POOL
from parley.service_client import path

from conversation import auto_assign
from tests.presence.conftest import add_operator, own_project
from tests.support import AppSocket, eventually


def wire(stack, scheduler) -> None:
    """The stack's conversation service sweeps for unassigned conversations often."""
    stack.conversation.app[auto_assign.TUNING].sweep_seconds = 0.2


async def visitor_writes(stack, project: str) -> str:
    body = await stack.conversation_client.checked("POST", path("internal", "visitor", "messages"), json={
        "project_id": project, "visitor_id": f"v-{uuid.uuid4().hex[:12]}", "message_id": str(uuid.uuid4()),
        "text": "Hello?", "page_url": None, "chat_open": True})
    return body["conversation_id"]


async def offer_events(stack, cid: str) -> list[tuple[str, str]]:
    rows = await stack.conversation.app[POOL].fetch(
        "select type, data from events where stream_id = $1 and type like 'assignment.%' order by stream_version",
        f"conversation-{cid}")
    return [(r["type"], r["data"]["operator_id"]) for r in rows]


async def team(stack, names: list[str]):
    """A project of the test's own, its owner's token, and operators with the app open."""
    project, owner = await own_project(stack)
    people = [await add_operator(stack, project, owner, name) for name in names]
    apps = [await AppSocket.open(stack.gateway, token) for _, token in people]

    async def all_online():
        r = await stack.registry_client.call("GET", f"/internal/presence/{project}")
        return len(r.body["operators"]) == len(names)
    await eventually(all_online, timeout=10, what="everyone online")
    return project, owner, people, apps


async def settings(stack, owner: str, **body) -> None:
    r = await stack.call("PUT", "/api/project/assignment", owner, json=body)
    assert r.status == 200, await r.text()


async def test_round_robin_with_three_operators_online(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    wire(stack, scheduler)
    project, owner, people, apps = await team(stack, ["Ann", "Bob", "Cid"])
    await settings(stack, owner, assignment_mode="round_robin", offer_seconds=600)   # 5 s here: no expiry
    cids = []
    for _ in range(3):
        cids.append(await visitor_writes(stack, project))
        await eventually(lambda: offer_events(stack, cids[-1]), timeout=10, what="an offer")
    ids = sorted(p[0] for p in people)
    assert [(await offer_events(stack, cid))[0] for cid in cids] == [("assignment.offered", i) for i in ids]

    by_id = {p[0]: (p[1], app) for p, app in zip(people, apps)}
    for cid, operator_id in zip(cids, ids):
        token, app = by_id[operator_id]
        await eventually(lambda: [f for f in app.of_type("notification") if f["kind"] == "offer"
                                  and f["conversation_id"] == cid], timeout=10, what="the offer pop-up")
        [popup] = [f for f in app.of_type("notification") if f["kind"] == "offer" and f["conversation_id"] == cid]
        other_token = by_id[ids[(ids.index(operator_id) + 1) % 3]][0]
        r = await stack.call("POST", f"/api/conversations/{cid}/accept", other_token,
                             json={"offer_id": popup["offer_id"]})
        assert r.status == 409 and (await r.json())["error"]["code"] == "offer_gone"
        r = await stack.call("POST", f"/api/conversations/{cid}/accept", token, json={"offer_id": popup["offer_id"]})
        assert r.status == 200, await r.text()
        assert (await r.json())["conversation"]["assignee_id"] == operator_id
    for cid, operator_id in zip(cids, ids):
        assert await offer_events(stack, cid) == [("assignment.offered", operator_id),
                                                  ("assignment.accepted", operator_id)]
    # The offer timers were disarmed by the Accepts.
    await eventually(lambda: _all_cancelled(scheduler, cids), timeout=10, what="offer timers disarmed")
    for app in apps:
        await app.close()


async def _all_cancelled(scheduler, cids) -> bool:
    rows = await scheduler.pool.fetch("select status from timers where kind = 'offer' and conversation_id = any($1)",
                                      [uuid.UUID(c) for c in cids])
    return len(rows) == 3 and {r["status"] for r in rows} == {"cancelled"}


async def test_an_offer_times_out_and_moves_on_exactly_once(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    wire(stack, scheduler)
    project, owner, people, apps = await team(stack, ["Ann", "Bob"])
    await settings(stack, owner, assignment_mode="round_robin", offer_seconds=120)   # 1 s here
    cid = await visitor_writes(stack, project)
    first, second = sorted(p[0] for p in people)
    expected = [("assignment.offered", first), ("assignment.offer_expired", first),
                ("assignment.offered", second), ("assignment.offer_expired", second)]
    await eventually(lambda: _has(stack, cid, len(expected)), timeout=20, what="both offers expired")
    await eventually(lambda: _timers_done(scheduler, cid), timeout=10, what="offer timers finished")
    assert await offer_events(stack, cid) == expected     # once each, and never back to who let it expire
    row = await stack.conversation.app[POOL].fetchrow(
        "select status, assignee_id, offer_id from conversations where id = $1", cid)
    assert dict(row) == {"status": "new", "assignee_id": None, "offer_id": None}   # waits in New
    for app in apps:
        await app.close()


async def _has(stack, cid: str, n: int) -> bool:
    return len(await offer_events(stack, cid)) >= n


async def _timers_done(scheduler, cid: str) -> bool:
    rows = await scheduler.pool.fetch("select status, outcome from timers where kind = 'offer' and conversation_id = $1",
                                      uuid.UUID(cid))
    return len(rows) == 2 and all(r["status"] == "fired" for r in rows)


async def test_least_busy_respects_capacity(sched_stack):
    stack, scheduler = sched_stack, sched_stack.scheduler
    wire(stack, scheduler)
    project, owner, people, apps = await team(stack, ["Ann", "Bob"])
    ann, bob = (p[0] for p in people)
    await settings(stack, owner, assignment_mode="least_busy", offer_seconds=600, default_capacity=1,
                   capacities={bob: 2})
    cids = [await visitor_writes(stack, project) for _ in range(4)]
    await eventually(lambda: _offered_count(stack, cids, 3), timeout=15, what="three offers")
    offered = {cid: await offer_events(stack, cid) for cid in cids}
    to = sorted(events[0][1] for events in offered.values() if events)
    assert to == sorted([ann, bob, bob])      # Ann's capacity is 1, Bob's 2; the fourth waits in New
    # A few more sweeps offer nothing more: everyone is at capacity.
    sweeps = await auto_assign.sweep(stack.conversation.app)
    assert sweeps == 0 and await _offered_count(stack, cids, 3)
    for app in apps:
        await app.close()


async def _offered_count(stack, cids, n: int) -> bool:
    return sum([1 for cid in cids if await offer_events(stack, cid)]) == n


async def test_after_everyone_let_it_expire_a_new_round_offers_it_again(sched_stack):
    """Issue 19: a conversation is never stranded in New while someone is online. Once
    every online operator let the offer expire, after the round pause it is offered again
    from the start of the rotation - to the same people - until someone accepts."""
    stack, scheduler = sched_stack, sched_stack.scheduler
    wire(stack, scheduler)
    stack.conversation.app[auto_assign.TUNING].round_pause_seconds = 0.5
    project, owner, people, apps = await team(stack, ["Ann", "Bob"])
    await settings(stack, owner, assignment_mode="round_robin", offer_seconds=5)   # expires in a blink here
    cid = await visitor_writes(stack, project)
    first, second = sorted(p[0] for p in people)
    # The first round expires at once (a timer minute is 0.5 s); the next starts once the
    # last offer's 5 s and the pause have passed.
    await eventually(lambda: _has(stack, cid, 5), timeout=30, what="a second round")
    events = await offer_events(stack, cid)
    assert events[:5] == [("assignment.offered", first), ("assignment.offer_expired", first),
                          ("assignment.offered", second), ("assignment.offer_expired", second),
                          ("assignment.offered", first)]
    rows = await stack.conversation.app[POOL].fetch(
        "select data from events where stream_id = $1 and type = 'assignment.offered' order by stream_version",
        f"conversation-{cid}")
    assert [bool(r["data"].get("new_round")) for r in rows][:3] == [False, False, True]
    for app in apps:
        await app.close()
