"""Real components for the whole suite: one Kafka broker and one PostgreSQL per test
session (see devstack/components.py for how they are found or started). Each
test gets its own PostgreSQL schema and its own Kafka topic, so tests never see each
other's data. If no broker or database can be started, the session fails: there is
no skip."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from parley import db, kafka
from parley.config import REPO_ROOT
from devstack import components
from parley.schemas import Catalog, Topic

TEST_SCHEMAS = Path(__file__).parent / "schemas"
TEST_PARTITIONS = 4
# Every service in the suite (in-process or spawned) signs and checks calls with this key.
INTERNAL_SECRET = "test-internal-secret-" + "y" * 32
os.environ["PARLEY_INTERNAL_SECRET"] = INTERNAL_SECRET
# The suite's stacks start with project demo, as `make run` does (tests/setup start without it).
os.environ["PARLEY_SEED_DEMO"] = "1"
# An upstream a test does not start is unreachable (connection refused: the caller's 503),
# never whatever answers on its default port - a `make run` beside the suite. The port is
# bound here and never listened on, so nothing else can take it and every connection is
# refused. A test that starts an upstream points its variable at it.
_NEVER_LISTENING = socket.socket()
_NEVER_LISTENING.bind(("127.0.0.1", 0))
UNREACHABLE = f"http://127.0.0.1:{_NEVER_LISTENING.getsockname()[1]}"
for _upstream in ("PARLEY_OPERATOR_REGISTRY_URL", "PARLEY_CONVERSATION_URL", "PARLEY_CRM_BRIDGE_URL",
                  "PARLEY_SCHEDULER_URL"):
    os.environ[_upstream] = UNREACHABLE


def _cheap_password_hashes() -> None:
    """argon2id with 1 MiB, one pass, one lane for the in-process registries. The
    library's recommended parameters (64 MiB, 3 passes, 4 lanes) cost ~0.1-0.6 s of CPU
    per hash or check on the 2-CPU build machine, and the suite hashes or checks a
    password thousands of times (every stack seeds its owner, every login, every added
    operator): minutes of a run spent on a cost that is the point in production and
    proves nothing here. Still argon2id, still salted, checked by the same code; the
    registries run as processes (crash tests, make run, chaos) keep the real cost."""
    from operator_registry import accounts
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts._DUMMY_HASH = accounts._hasher.hash("a password nobody has")


_cheap_password_hashes()


@pytest.fixture(scope="session")
def platform():
    """Outside pytest's own temporary folder: embedded PostgreSQL runs as another user and
    must traverse its parents, and every pytest session started on the machine resets
    /tmp/pytest-of-<user> to 0700 - a second `pytest` beside this one would cut the
    database off mid-run."""
    run_dir = Path(tempfile.mkdtemp(prefix="parley-test-platform-"))
    comps = components.start(run_dir, throwaway=True)
    yield comps
    comps.stop()
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog(REPO_ROOT / "schemas", TEST_SCHEMAS)


@pytest.fixture
def schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pool(platform, schema_name):
    pool = await db.create_pool(platform.database_url, schema_name, max_size=25)
    await db.migrate(pool, schema_name)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(platform) -> str:
    name = f"test.{uuid.uuid4().hex[:12]}"
    await kafka.create_topics(platform.bootstrap, [Topic(name, "tests", ("item",), TEST_PARTITIONS, 1, {})])
    return name


# The one test stack's fixtures and Chromium's, for any test that asks.
pytest_plugins = ["tests.stack", "tests.chromium", "tests.mail_sink"]


def pytest_collection_modifyitems(config, items):
    """The short chaos run goes last: it kills and restarts a broker and a database of its
    own, and last it can disturb nothing."""
    last = [item for item in items if item.nodeid.startswith("tests/chaos/test_chaos.py")]
    items[:] = [item for item in items if item not in last] + last
