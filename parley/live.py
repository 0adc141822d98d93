"""Live subscriber: every event of some topics, from now on, to every process that asks.

For side effects that belong to one process and need no history - a gateway pushing to
the WebSockets it holds, closing the sockets of a revoked session. No consumer group
(each gateway sees every partition), no stored offsets, nothing to rebuild."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Mapping

from parley import kafka, logs
from parley.envelope import Event

log = logging.getLogger(__name__)


Decode = Callable[[bytes], Any]
Handle = Callable[[Any], Awaitable[None]]
Open = Callable[[list[Event]], Awaitable[list[Event]]]
OPEN_ATTEMPTS = 4   # 0.2 + 0.4 + 0.8 s of waiting for the keys' owner before a batch is skipped
# How long the broker may hold a fetch with nothing new. aiokafka keeps one fetch in
# flight per broker, for the partitions it holds no unread records of: a partition read
# out while that fetch waits is asked for only when it returns. With Kafka's 500 ms, a
# fetch that went out for quiet partitions (typing, visitors, project) held the busy
# ones' messages back for up to half a second: the bench's 1,000 msg/s step had a p99
# of 617 and 634 ms in two runs of four while its acks' p99 was 106-111 ms (issue 21).
# Idle, a gateway asks 50 times a second: measured with no traffic, 3 % of a core in
# the gateway and 4-9 % in the broker more than with 500 ms (docs/performance.md).
FETCH_WAIT_MS = 20


class LiveSubscriber:
    """One consumer for several topics, each record handed to its topic's handler.
    `decoders` turn a topic's records into what its handler gets (a Parley event by
    default; a topic of ephemeral signals, such as typing.signals, passes its own,
    returning None for what it does not understand). `openers` make a topic's sealed
    events readable before its handler sees them (parley/personal.py), a poll's worth at
    a time, so a batch's keys are fetched in one call.

    One consumer rather than one per topic: a gateway follows five topics, and five
    consumers were five fetches in flight, five connections and five idle polls a
    round, for records that one fetch brings together."""

    def __init__(self, bootstrap: str, handlers: Mapping[str, Handle], decoders: Mapping[str, Decode] | None = None,
                 openers: Mapping[str, Open] | None = None):
        self.bootstrap, self.handlers, self.decoders = bootstrap, dict(handlers), dict(decoders or {})
        self.openers = dict(openers or {})

    async def run(self, stop: asyncio.Event) -> None:
        consumer = kafka.consumer(self.bootstrap, None, *self.handlers, auto_offset_reset="latest",
                                  fetch_max_wait_ms=FETCH_WAIT_MS)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await consumer.start()   # inside: a start that fails (no broker) still closes the client
            while not stop.is_set():
                # A poll ends when records come or when told to stop: a closing gateway does
                # not wait out a poll (nothing here needs handing over; it keeps no offsets).
                fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=1000))
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    break
                # A topic's records of every partition together (each partition's in its
                # order): one opener call, so one key fetch per poll, not one per partition.
                by_topic: dict[str, list[Any]] = {}
                for tp, messages in fetch.result().items():
                    by_topic.setdefault(tp.topic, []).extend(self._decode(tp.topic, m.value) for m in messages)
                for topic, events in by_topic.items():
                    for event in await self._readable(topic, events):
                        await self._deliver(topic, event)
        finally:
            stopping.cancel()
            await consumer.stop()

    def _decode(self, topic: str, raw: bytes) -> Any:
        try:
            return self.decoders.get(topic, Event.from_bytes)(raw)
        except Exception:
            return None

    async def _readable(self, topic: str, events: list[Any]) -> list[Any]:
        opener = self.openers.get(topic)
        if opener is None:
            return events
        known = [e for e in events if e is not None]
        unreadable = [None] * (len(events) - len(known))   # still logged by _deliver, as on other topics
        for attempt in range(OPEN_ATTEMPTS):
            try:
                return await opener(known) + unreadable
            except Exception:
                if attempt + 1 < OPEN_ATTEMPTS:
                    await asyncio.sleep(0.2 * 2 ** attempt)
        # The keys' owner not answering for a second or more: these events are not pushed
        # (a socket gets them with its history when it reconnects); the next poll is tried anew.
        log.error("live events could not be opened; skipped", extra={"topic": topic, "events": len(known)})
        return []

    async def _deliver(self, topic: str, event: Any) -> None:
        if event is None:
            log.error("skipping a message that is not a Parley event", extra={"topic": topic})
            return
        token = logs.correlation_id.set(getattr(event, "correlation_id", None))
        try:
            await self.handlers[topic](event)
        except Exception:
            log.exception("live handler failed", extra={"topic": topic, "event_type": getattr(event, "type", None)})
        finally:
            logs.correlation_id.reset(token)
