"""Live subscriber: every event of some topics, from now on, to every process that asks.

For side effects that belong to one process and need no history - a gateway pushing to
the WebSockets it holds, closing the sockets of a revoked session. No consumer group
(each gateway sees every partition), no stored offsets, nothing to rebuild."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Sequence

from parley import kafka, logs
from parley.envelope import Event

log = logging.getLogger(__name__)


class LiveSubscriber:
    """`decode` turns a record into what `handle` gets (a Parley event by default; a
    topic of ephemeral signals, such as typing.signals, passes its own, returning None
    for what it does not understand)."""

    def __init__(self, bootstrap: str, topics: Sequence[str], handle: Callable[[Any], Awaitable[None]],
                 decode: Callable[[bytes], Any] = Event.from_bytes):
        self.bootstrap, self.topics, self.handle, self.decode = bootstrap, list(topics), handle, decode

    async def run(self, stop: asyncio.Event) -> None:
        consumer = kafka.consumer(self.bootstrap, None, *self.topics, auto_offset_reset="latest")
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=300)
                for messages in batches.values():
                    for message in messages:
                        await self._deliver(message.value)
        finally:
            await consumer.stop()

    async def _deliver(self, raw: bytes) -> None:
        try:
            event = self.decode(raw)
        except Exception:
            event = None
        if event is None:
            log.error("skipping a message that is not a Parley event", extra={"topics": self.topics})
            return
        token = logs.correlation_id.set(getattr(event, "correlation_id", None))
        try:
            await self.handle(event)
        except Exception:
            log.exception("live handler failed", extra={"event_type": getattr(event, "type", None)})
        finally:
            logs.correlation_id.reset(token)
