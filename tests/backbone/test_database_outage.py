"""PostgreSQL goes away mid-work: every refusal is a 503 with Retry-After (a fault, so
"try again"), never a 500, and what the client retries afterwards is stored once.

This test runs its own PostgreSQL (a second embedded server), so crashing it leaves
the rest of the suite alone."""
from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import uuid
from pathlib import Path

import pgserver
import pytest
from pgserver._commands import pg_ctl

from tests.visitor import ScriptedVisitor
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


class CrashablePostgres:
    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self.server = pgserver.get_server(pgdata, cleanup_mode="stop")

    def crash(self) -> None:
        # Immediate mode: every backend is killed without a checkpoint, as in a crash.
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=self.pgdata, user=self.server.system_user)

    def restart(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def crashable():
    run_dir = Path(tempfile.mkdtemp(prefix="parley-test-crashable-"))   # outside pytest's 0700 folder: see conftest
    pg = CrashablePostgres(run_dir / "pgdata")
    yield pg
    pg.server.cleanup()
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def platform(platform, crashable):  # the stack of this module runs on the crashable database
    return dataclasses.replace(platform, database_url=crashable.server.get_uri())


@pytest.mark.slow
async def test_replies_during_a_postgres_crash_get_503_with_retry_after_and_land_once_after(stack, crashable):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    visitor = ScriptedVisitor(stack.gateway)
    await visitor.start()
    await visitor.send_and_wait("Hello?")
    inbox = await (await stack.call("GET", "/api/inbox?view=new", owner)).json()
    cid = inbox["conversations"][0]["id"]
    assert (await stack.call("POST", f"/api/conversations/{cid}/take", owner)).status == 200

    keys = [str(uuid.uuid4()) for _ in range(10)]
    crashable.crash()
    try:
        for i, key in enumerate(keys):
            r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner,
                                 json={"text": f"reply {i}"}, headers={"Idempotency-Key": key})
            body = await r.json()
            assert r.status == 503, (i, r.status, body)
            assert body["error"]["code"] == "service_unavailable"
            assert int(r.headers["Retry-After"]) > 0
        # reads and logins too
        for method, path, kwargs in (("GET", "/api/inbox?view=mine", {}), ("GET", f"/api/conversations/{cid}", {}),
                                     ("POST", "/api/session", {"json": {"project": "demo", "email": OWNER_EMAIL,
                                                                        "password": OWNER_PASSWORD}})):
            r = await stack.call(method, path, owner, **kwargs)
            assert r.status == 503 and "Retry-After" in r.headers, (path, r.status, await r.text())
    finally:
        crashable.restart()

    # The client retries with the same keys once the database is back: each reply is stored once.
    for attempt in range(2):
        for i, key in enumerate(keys):
            for _ in range(50):
                r = await stack.call("POST", f"/api/conversations/{cid}/messages", owner,
                                     json={"text": f"reply {i}"}, headers={"Idempotency-Key": key})
                if r.status != 503:
                    break
                await asyncio.sleep(0.2)
            assert r.status == 200, (i, r.status, await r.text())
    transcript = await (await stack.call("GET", f"/api/conversations/{cid}", owner)).json()
    replies = [e["data"]["text"] for e in transcript["events"] if e["event"] == "chat.operator_replied"]
    assert replies == [f"reply {i}" for i in range(10)]
