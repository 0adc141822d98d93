"""The faults: a Parley service or the broker gets SIGKILL, PostgreSQL an immediate stop
(`pg_ctl stop -m immediate`). Nothing here starts anything again: the supervisor does,
as compose's restart policy would. A kill's window runs from the kill until the
component answers again plus GRACE, the time clients and consumers take to find it
(aiokafka's reconnect backoff, pool reconnects); 5xx answers inside a window are the
expected "try again", outside it they are counted as unexpected."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass

from devstack.run import SERVICES
from devstack.supervisor import PostgresChild

from chaos.system import System

KINDS = [name for name, _ in SERVICES] + ["kafka", "postgres"]
GRACE = 15.0
COME_BACK = 180.0


@dataclass
class Kill:
    target: str
    at: float              # wall clock (time.time()), as the clients record their errors
    down_s: float          # from the kill until the component answered again
    window_end: float

    def covers(self, t: float) -> bool:
        return self.at <= t <= self.window_end


async def kill(system: System, target: str) -> Kill:
    child = system.child(target)
    at = time.time()
    if isinstance(child, PostgresChild):
        await asyncio.to_thread(child.crash)
    else:
        pid = child.pid()
        if pid is None:
            raise RuntimeError(f"{target} is not running; nothing to kill")
        os.kill(pid, signal.SIGKILL)
    incident = await asyncio.to_thread(system.supervisor.wait_ready, target, at - 1, COME_BACK)
    return Kill(target, at, round(incident.ready_at - at, 1), incident.ready_at + GRACE)
