"""Work that arrives while a batch is being done becomes the next batch.

The shape every batched hop in Parley shares (the event store's group commit, the
conversation service's set-based commands): a lone item goes at once, with no wait;
under load, items queue behind the batch in flight and go together, so the cost of a
round trip, a transaction or a commit is shared by all of them. Each caller still gets
its own outcome: `flush(items)` returns one per item, a value or an exception."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")

Flush = Callable[[Sequence[Item]], Awaitable[Sequence[object]]]


class Batcher(Generic[Item]):
    """Queues items for `flush`, at most `max_batch` at a time, `flights` batches in flight.

    One flight suits a database transaction (the next batch decides on what the last one
    wrote). A network hop takes more: with one request in flight, the callee idles while
    an answer travels back and the next batch comes; with two, it is busy with one while
    the other travels. Either way a lone item goes at once."""

    def __init__(self, flush: Flush, *, max_batch: int = 100, flights: int = 1):
        self.flush = flush
        self.max_batch = max_batch
        self.flights = flights
        self.queue: list[tuple[Item, asyncio.Future]] = []
        self.draining = 0

    async def run(self, item: Item) -> object:
        """`item`'s outcome once its batch is done (its exception raised here)."""
        future = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        if self.draining < self.flights:
            self.draining += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue[:self.max_batch], self.queue[self.max_batch:]
                # A caller that is gone (its request cancelled) gets nothing done for it.
                batch = [(item, future) for item, future in batch if not future.cancelled()]
                if batch:
                    await self._flush(batch)
        finally:
            self.draining -= 1

    async def _flush(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        try:
            outcomes = await self.flush([item for item, _ in batch])
        except BaseException as e:  # the batch as a whole failed: every caller hears it
            for _, future in batch:
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise
            return
        for outcome, (_, future) in zip(outcomes, batch, strict=True):
            if not future.done():
                future.set_exception(outcome) if isinstance(outcome, BaseException) else future.set_result(outcome)
