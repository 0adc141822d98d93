"""Admission control (every service but the public gateway): at most `MAX_COMMANDS_IN_FLIGHT`
commands run at once in a process; a few more wait, at most `COMMAND_QUEUE` of them and
for at most `COMMAND_WAIT_SECONDS`; anything beyond gets at once `busy` (503 with
Retry-After) and nothing is stored. Offered twice what the process can do, it goes on
doing what it can at its usual latency and says `busy` to the rest, rather than letting
every request queue until the callers time out.

A place is taken per command, whether it came alone (parley.service's middleware) or in
a batch with others (parley.call_batches): a batch of 50 is 50 commands."""
from __future__ import annotations

import asyncio
from collections import deque

from aiohttp import web
from prometheus_client import Counter, Gauge

from parley.http import busy

ADMISSION_REFUSED = Counter("parley_admission_refused_total", "Commands answered 503 busy by admission control")
COMMANDS_IN_FLIGHT = Gauge("parley_commands_in_flight", "Commands running now (admission control)")

# Admission control (see the module's docstring). Commands in flight at once are what a
# batch is made of (parley.batching): the conversation service decides and writes the
# commands that queue behind a transaction in the next one, so a batch costs a few
# statements whatever its size, and 16 in flight capped it at ~450 commands/s (Little's
# law at ~35 ms each). 256 let batches grow under load (two gateways' 128 each,
# service_client.MAX_IN_FLIGHT); the wait below still refuses fast.
MAX_COMMANDS_IN_FLIGHT = 256
COMMAND_QUEUE = 64
COMMAND_WAIT_SECONDS = 0.25


class Admission:
    """A bounded number of commands at once, a bounded, short wait for a place, then `busy`.

    The bounds are attributes, read on every request: a test (or an operator's hook) may
    change them on a running app (`app[ADMISSION].limit = 0` refuses every command)."""

    def __init__(self, limit: int = MAX_COMMANDS_IN_FLIGHT, queue: int = COMMAND_QUEUE,
                 wait: float = COMMAND_WAIT_SECONDS):
        self.limit, self.queue, self.wait = limit, queue, wait
        self.in_flight = 0
        self.refused = 0
        self._waiters: deque[asyncio.Future] = deque()   # FIFO; a timed-out waiter's future is done(False)

    async def __aenter__(self) -> None:
        if self.in_flight < self.limit and not any(not w.done() for w in self._waiters):
            self._take()
            return
        if self.wait <= 0 or sum(not w.done() for w in self._waiters) >= self.queue:
            self._refuse()
        loop = asyncio.get_running_loop()
        place = loop.create_future()
        self._waiters.append(place)
        timer = loop.call_later(self.wait, lambda: place.done() or place.set_result(False))
        try:
            granted = await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled() and place.result():
                COMMANDS_IN_FLIGHT.inc()
                self._release()  # the place was handed over just as the caller went away: pass it on
            raise
        finally:
            timer.cancel()
            try:
                self._waiters.remove(place)
            except ValueError:
                pass
        if not granted:
            self._refuse()
        COMMANDS_IN_FLIGHT.inc()  # a place handed over: in_flight already counts it

    async def __aexit__(self, *_) -> None:
        self._release()

    def _take(self) -> None:
        self.in_flight += 1
        COMMANDS_IN_FLIGHT.inc()

    def _refuse(self) -> None:
        self.refused += 1
        ADMISSION_REFUSED.inc()
        raise busy()

    def _release(self) -> None:
        COMMANDS_IN_FLIGHT.dec()
        while self._waiters:
            place = self._waiters.popleft()
            if not place.done():
                place.set_result(True)  # the place goes straight to the longest waiter
                return
        self.in_flight -= 1


ADMISSION = web.AppKey("admission", Admission)
