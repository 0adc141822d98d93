"""The short chaos run (make chaos runs the long one): Parley under the supervisor,
scripted visitors and operators chatting through the gateway while each service gets
SIGKILL in turn, then the Kafka broker, then PostgreSQL an immediate stop - one kill of
each kind, every component brought back by the supervisor. Every figure must be 0:
acknowledged messages lost, duplicates stored or seen, conversations out of order,
projections differing from a rebuild from the topics, 5xx outside the kill windows.

It runs its own broker and database (they get killed), on free ports, in a temporary
folder removed afterwards."""
from __future__ import annotations

import pytest

from chaos.__main__ import QUICK
from chaos.kills import KINDS
from chaos.report import markdown
from chaos.run import run


@pytest.mark.slow
def test_one_kill_of_each_kind_loses_doubles_and_reorders_nothing():
    report = run(QUICK, artifacts=None)
    print(markdown(report))
    # every kind was killed, and the supervisor brought each back
    assert [k["target"] for k in report["kills"]] == KINDS
    figures = report["figures"]
    # the run did something worth checking: every visitor wrote, every message was answered
    assert figures["acknowledged"] >= 2 * QUICK.visitors * QUICK.messages
    assert figures["conversations"] == QUICK.visitors
    assert {t["table"] for t in report["projections"]} >= {"conversations", "conversation_messages", "operators"}
    assert report["failures"] == {}, markdown(report)
