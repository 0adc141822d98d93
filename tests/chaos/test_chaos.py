"""The short chaos run (make chaos runs the long one): Parley under the supervisor,
scripted visitors and operators chatting through the gateway while each service gets
SIGKILL in turn, then the Kafka broker, then PostgreSQL an immediate stop - one kill of
each kind, every component brought back by the supervisor. Every figure must be 0:
acknowledged messages lost, duplicates stored or seen, conversations out of order,
projections differing from a rebuild from the topics, 5xx outside the kill windows.

It runs `python -m chaos --quick` as its own process, as `make chaos` does: its own
broker and database (they get killed), on free ports, in a temporary folder removed
afterwards, and nothing of it (threads, event loops, supervised children) stays in the
test process to disturb the tests after it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chaos.__main__ import QUICK
from chaos.kills import KINDS
from parley.config import REPO_ROOT


@pytest.mark.slow
def test_one_kill_of_each_kind_loses_doubles_and_reorders_nothing(tmp_path):
    # Never the suite's broker and database: the run kills its own.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    done = subprocess.run([sys.executable, "-m", "chaos", "--quick", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "report.json").read_text()) if (tmp_path / "report.json").exists() else None
    assert report is not None, f"no report; exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    markdown = (tmp_path / "report.md").read_text()
    print(markdown)
    # every kind was killed, and the supervisor brought each back
    assert [k["target"] for k in report["kills"]] == KINDS
    figures = report["figures"]
    # the run did something worth checking: every visitor wrote, every message was answered
    assert figures["acknowledged"] >= 2 * QUICK.visitors * QUICK.messages
    assert figures["conversations"] == QUICK.visitors
    assert figures["conversations_erased"] == QUICK.erase     # and the rebuild below brought them back erased
    assert {t["table"] for t in report["projections"]} >= {"conversations", "conversation_messages", "operators"}
    assert report["failures"] == {}, markdown
    assert done.returncode == 0, done.stderr[-3000:]
