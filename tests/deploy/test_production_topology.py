"""Issue 11, item 1: Parley run the way deploy/compose.yaml runs it, and used through an
ingress the way the public uses it.

Every service is a real process with exactly its container's environment and command
(devstack/compose_plan.py reads compose and the Dockerfile), on its own loopback
address under its compose host name, in a network namespace of its own; Kafka and
PostgreSQL are configured from compose's own settings; the one-shot `migrate` runs
first; two gateways stand behind nginx as the ingress. The env file holds only what a
self-hoster's deploy/.env holds: the three secrets, and PARLEY_TRUSTED_PROXY_HOPS=1 (one
proxy in front, as deploy/README.md documents for an ingress).

No demo project exists (compose seeds none): the owner creates theirs with
`python -m parley.admin create-project` in the registry's container. Then, through the
ingress only, two operators (owner and an added operator, each a browser with its own
cookie jar) and six visitors chat at once across both gateways."""
from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from devstack.topology import Topology, env_file_with_fresh_secrets
from tests.visitor import ScriptedVisitor

PROJECT = "acme"
OWNER_EMAIL, OWNER_PASSWORD = "owner@acme.example", "acme-owner-password-1"
OPERATOR_EMAIL, OPERATOR_PASSWORD = "olga@acme.example", "olga-operator-password-1"
VISITORS, MESSAGES = 6, 5
NEW_SESSION_LIMIT = 20  # new visitor tokens a minute per client address, per gateway (docs/visitor-protocol.md)

# Client addresses inside the namespace (the ingress sees these as the peer).
OWNER_ADDRESS, OPERATOR_ADDRESS = "127.0.0.50", "127.0.0.51"
VISITOR_ADDRESS = "127.0.0.{}".format  # 100 + i
FORGER_ADDRESS, BYSTANDER_ADDRESS = "127.0.0.200", "127.0.0.201"


@pytest.fixture(scope="module")
def topology():
    topo = Topology(env_file_with_fresh_secrets(PARLEY_TRUSTED_PROXY_HOPS="1"))
    try:
        topo.start()
        yield topo
    finally:
        topo.cleanup()


def _browser(topo: Topology, address: str) -> aiohttp.ClientSession:
    """A browser on its own address: its own cookie jar, the app's origin on writes."""
    return aiohttp.ClientSession(
        base_url=topo.ingress_url, headers={"Origin": topo.ingress_url},
        connector=aiohttp.TCPConnector(resolver=topo.resolver(), local_addr=(address, 0)),
        cookie_jar=aiohttp.CookieJar(), timeout=aiohttp.ClientTimeout(total=30))


async def _json(response: aiohttp.ClientResponse, status: int | tuple = 200) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status in statuses, f"{response.method} {response.url.path}: {response.status} {await response.text()}"
    return await response.json()


async def _operator_socket(browser: aiohttp.ClientSession):
    ws = await browser.ws_connect("/ws/operator")
    hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello", hello
    frames: list[dict] = []

    async def read():
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frames.append(msg.json())
    return ws, hello, frames, asyncio.create_task(read())


def _pushed(frames: list[dict], event: str) -> dict[str, list[str]]:
    """Texts of `event` per conversation, as pushed to an operator socket (duplicates kept)."""
    found: dict[str, list[str]] = {}
    for f in frames:
        if f.get("type") == "conversation_event" and f["event"] == event:
            found.setdefault(f["conversation_id"], []).append(f["data"]["text"])
    return found


async def _eventually(check, what: str, timeout: float = 30):
    """`check()` once it is truthy: the sockets are fed from Kafka, a moment later."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_compose_configures_the_ingress_hop(topology):
    gateway = topology.plan.parley["gateway"]
    assert gateway.environment["PARLEY_TRUSTED_PROXY_HOPS"] == "1", \
        "compose should take PARLEY_TRUSTED_PROXY_HOPS from the env file (one ingress in front)"
    assert topology.instances("gateway") == ["gateway-1", "gateway-2"]
    for host, process in topology.processes.items():
        assert process.alive(), f"{host} died:\n{process.tail()}"


def test_two_operators_and_six_visitors_chat_through_the_ingress(topology):
    created = topology.exec("operator-registry", [
        "python", "-m", "parley.admin", "create-project", "--id", PROJECT, "--name", "ACME",
        "--owner-email", OWNER_EMAIL, "--owner-password", OWNER_PASSWORD, "--owner-name", "Anna Owner"], timeout=60)
    assert created.returncode == 0, f"create-project failed:\n{created.stdout}{created.stderr}"
    topology.client.run(_chat(topology), timeout=240)


async def _chat(topo: Topology) -> None:
    owner, operator = _browser(topo, OWNER_ADDRESS), _browser(topo, OPERATOR_ADDRESS)
    visitor_http = [aiohttp.ClientSession(base_url=topo.ingress_url, timeout=aiohttp.ClientTimeout(total=30),
                                          connector=aiohttp.TCPConnector(resolver=topo.resolver(),
                                                                         local_addr=(VISITOR_ADDRESS(100 + i), 0)))
                    for i in range(VISITORS)]
    try:
        # --- two operators, two cookie jars ------------------------------------------------
        me_owner = (await _json(await owner.post("/api/session", json={
            "project": PROJECT, "email": OWNER_EMAIL, "password": OWNER_PASSWORD}), 201))["operator"]
        added = await _json(await owner.post("/api/operators", json={
            "name": "Olga Operator", "email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD, "is_admin": False}), 201)
        me_operator = (await _json(await operator.post("/api/session", json={
            "project": PROJECT, "email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}), 201))["operator"]
        assert me_operator["id"] == added["id"] != me_owner["id"]
        assert me_owner["is_admin"] and not me_operator["is_admin"]

        async def whoami(browser):
            r = await browser.get("/api/session")
            return (await _json(r))["email"], r.headers.get("X-Parley-Upstream")

        answers = await asyncio.gather(*[whoami(b) for _ in range(10) for b in (owner, operator)])
        assert [email for email, _ in answers] == [OWNER_EMAIL, OPERATOR_EMAIL] * 10, \
            "an answer named another operator: the logins got mixed up"
        upstreams = {upstream for _, upstream in answers}
        assert {topo.addresses["gateway-1"], topo.addresses["gateway-2"]} <= {u.split(":")[0] for u in upstreams}, \
            f"the ingress did not spread requests over both gateways: {upstreams}"

        owner_ws, _, owner_frames, owner_reader = await _operator_socket(owner)
        operator_ws, _, operator_frames, operator_reader = await _operator_socket(operator)

        # --- six visitors start conversations -------------------------------------------------
        visitors = [ScriptedVisitor(http, project=PROJECT) for http in visitor_http]
        await asyncio.gather(*[v.start() for v in visitors])
        firsts = [f"visitor {i} message 0" for i in range(VISITORS)]
        await asyncio.gather(*[v.send_and_wait(text) for v, text in zip(visitors, firsts)])
        by_first = await _eventually(lambda: _all_first_messages(owner_frames, firsts),
                                     "every first message on the owner's socket")
        cid = [by_first[text] for text in firsts]

        # the owner takes the first half, the operator the second
        takers = [owner if i < VISITORS // 2 else operator for i in range(VISITORS)]
        for i in range(VISITORS):
            await _json(await takers[i].post(f"/api/conversations/{cid[i]}/take", json={}))

        # --- both directions at once --------------------------------------------------------
        async def visitor_writes(i: int) -> None:
            for m in range(1, MESSAGES):
                await visitors[i].send_and_wait(f"visitor {i} message {m}")

        async def operator_answers(i: int) -> list[str]:
            names = []
            for m in range(MESSAGES):
                r = await takers[i].post(f"/api/conversations/{cid[i]}/messages",
                                         json={"text": f"answer {m} to visitor {i}"},
                                         headers={"Idempotency-Key": str(uuid.uuid4())})
                names.append((await _json(r))["events"][0]["data"]["operator_name"])
            return names

        results = await asyncio.gather(*[visitor_writes(i) for i in range(VISITORS)],
                                       *[operator_answers(i) for i in range(VISITORS)])
        for i, names in enumerate(results[VISITORS:]):
            expected = me_owner["name"] if takers[i] is owner else me_operator["name"]
            assert set(names) == {expected}, f"conversation {i}: a reply was made in someone else's name: {names}"

        sent = {cid[i]: [f"visitor {i} message {m}" for m in range(MESSAGES)] for i in range(VISITORS)}
        answered = {cid[i]: [f"answer {m} to visitor {i}" for m in range(MESSAGES)] for i in range(VISITORS)}

        # the visitors: each acknowledged message once, every answer once, in order, named right
        for i, v in enumerate(visitors):
            await v.wait_for(lambda v=v: len(v.texts("operator_message")) >= MESSAGES, "every answer", timeout=30)
            assert v.errors == []
            assert v.texts("visitor_message") == sent[cid[i]]
            assert v.texts("operator_message") == answered[cid[i]]
            names = {e["operator"]["name"] for e in v.events if e["kind"] == "operator_message"}
            assert names == {me_owner["name"] if i < VISITORS // 2 else me_operator["name"]}

        # the stored transcripts (read by the owner, an admin): everything once, in order
        for c in cid:
            events = (await _json(await owner.get(f"/api/conversations/{c}")))["events"]
            assert [e["data"]["text"] for e in events if e["event"] == "chat.visitor_message_posted"] == sent[c]
            assert [e["data"]["text"] for e in events if e["event"] == "chat.operator_replied"] == answered[c]

        # the owner's socket (admin) got every message of every conversation exactly once
        await _eventually(lambda: _count(owner_frames) >= VISITORS * MESSAGES * 2,
                          "every message on the owner's socket")
        assert _pushed(owner_frames, "chat.visitor_message_posted") == sent
        assert _pushed(owner_frames, "chat.operator_replied") == answered

        # --- each operator sees only what they may see ----------------------------------------
        mine_op = {c["id"] for c in (await _json(await operator.get("/api/inbox?view=mine")))["conversations"]}
        assert mine_op == set(cid[VISITORS // 2:])
        mine_owner = {c["id"] for c in (await _json(await owner.get("/api/inbox?view=mine")))["conversations"]}
        assert mine_owner == set(cid[:VISITORS // 2])
        everything = {c["id"] for c in (await _json(await owner.get("/api/inbox?view=all")))["conversations"]}
        assert set(cid) <= everything
        r = await operator.get("/api/inbox?view=all")
        if r.status == 200:
            assert not {c["id"] for c in (await r.json())["conversations"]} & set(cid[:VISITORS // 2])
        else:
            assert r.status in (403, 404), await r.text()
        for c in cid[:VISITORS // 2]:
            r = await operator.get(f"/api/conversations/{c}")
            assert r.status in (403, 404), f"the operator read the owner's conversation: {r.status}"
        # and their socket: the conversations they took, whole; the owner's, nothing after the take
        await _eventually(lambda: _count(operator_frames, cid[VISITORS // 2:]) >= (VISITORS // 2) * MESSAGES * 2,
                          "every message of the operator's conversations on their socket")
        theirs = {c: t for c, t in _pushed(operator_frames, "chat.visitor_message_posted").items()}
        for i in range(VISITORS // 2, VISITORS):
            assert theirs[cid[i]] == sent[cid[i]]
        for i in range(VISITORS // 2):
            assert theirs.get(cid[i], []) in ([], sent[cid[i]][:1]), \
                f"the operator was pushed messages of the owner's conversation: {theirs.get(cid[i])}"
        assert not set(_pushed(operator_frames, "chat.operator_replied")) & set(cid[:VISITORS // 2])

        for ws, reader in ((owner_ws, owner_reader), (operator_ws, operator_reader)):
            await ws.close()
            await reader
        for v in visitors:
            await v.drop()

        await _the_gateways_throttle_the_forwarded_address(topo)
    finally:
        for http in (owner, operator, *visitor_http):
            await http.close()


def _all_first_messages(frames: list[dict], firsts: list[str]) -> dict[str, str] | None:
    by_text = {texts[0]: c for c, texts in _pushed(frames, "chat.visitor_message_posted").items()}
    return by_text if set(firsts) <= set(by_text) else None


def _count(frames: list[dict], only: list[str] | None = None) -> int:
    return sum(len(t) for event in ("chat.visitor_message_posted", "chat.operator_replied")
               for c, t in _pushed(frames, event).items() if only is None or c in only)


async def _the_gateways_throttle_the_forwarded_address(topo: Topology) -> None:
    """X-Forwarded-For with one trusted hop: the address the ingress saw is the one new
    visitor tokens are counted for. A client that forges its own X-Forwarded-For entry
    (a different one on every request) is still counted as itself and runs out; another
    client at the same time is not (so it is not the ingress's own address either)."""
    forger = aiohttp.ClientSession(base_url=topo.ingress_url, connector=aiohttp.TCPConnector(
        resolver=topo.resolver(), local_addr=(FORGER_ADDRESS, 0)))
    bystander = aiohttp.ClientSession(base_url=topo.ingress_url, connector=aiohttp.TCPConnector(
        resolver=topo.resolver(), local_addr=(BYSTANDER_ADDRESS, 0)))
    try:
        statuses = []
        # Limits are counted per gateway (docs/architecture.md, More gateways): two gateways
        # behind a round-robin ingress let one address have up to twice the limit.
        for n in range(2 * NEW_SESSION_LIMIT + 2):
            r = await forger.post("/api/visitor/session", json={"project": PROJECT},
                                  headers={"X-Forwarded-For": f"10.9.{n}.{n + 1}"})
            statuses.append(r.status)
            if r.status == 429:
                body = await r.json()
                assert body["error"]["code"] == "rate_limited", body
                break
        assert statuses[:NEW_SESSION_LIMIT] == [201] * NEW_SESSION_LIMIT, statuses
        assert statuses[-1] == 429, f"forged X-Forwarded-For entries escaped the limit: {statuses}"
        r = await bystander.post("/api/visitor/session", json={"project": PROJECT})
        assert r.status == 201, f"another client was throttled with the forger: {r.status} {await r.text()}"
    finally:
        await forger.close()
        await bystander.close()
