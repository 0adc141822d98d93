"""Opening sealed events in a service that does not own their keys (the gateway
pushing to sockets, crm-bridge building a lead): the keys come from the owner over a
signed call, `GET /internal/subject-keys?subjects=a,b` (the conversation service), a
batch at a time, and are cached for a while. Keys are never on a topic.

A key the owner reports missing is an erased subject: the event opens to its erased
form (parley/personal.py). The owner not answering raises: a consumer retries its
batch, the gateway logs and leaves the event to the sockets' resync.

The owner's own live consumer (the conversation service's search projection) keeps a
ring too, over its own table (`local`): reading the table for every batch was a
statement per batch, 7 % of PostgreSQL's statement time at 1,000 messages/s."""
from __future__ import annotations

import base64
import time
from collections import OrderedDict
from typing import Awaitable, Callable

import asyncpg
from aiohttp import web

from parley import internal_auth, personal, subject_keys
from parley.envelope import Event
from parley.service_client import ServiceClient, new_session

PATH = "/internal/subject-keys"
PER_CALL = 100          # subjects asked for in one call (the URL stays a few KB)
TTL_SECONDS = 300.0     # an erasure reaches a cached key at most this late (new events carry no personal data)
CACHED = 20_000

Fetch = Callable[[list[str]], Awaitable[dict[str, bytes | None]]]   # subjects -> their keys (None: erased)


class KeyRing:
    def __init__(self, fetch: Fetch, only: frozenset[str] | None = None):
        self.fetch = fetch
        self.only = only   # the event types the reader needs opened (None: all); others pass sealed
        self.cache: OrderedDict[str, tuple[float, bytes | None]] = OrderedDict()

    def _cached(self, subject: str) -> tuple[bool, bytes | None]:
        hit = self.cache.get(subject)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    async def _get(self, subjects: list[str]) -> None:
        found = await self.fetch(subjects)
        until = time.monotonic() + TTL_SECONDS
        for subject in subjects:
            self._keep(subject, until, found.get(subject))

    def remember(self, subject: str, key: bytes) -> None:
        """A key the owner handed over with another answer (a new conversation's)."""
        self._keep(subject, time.monotonic() + TTL_SECONDS, key)

    def _keep(self, subject: str, until: float, key: bytes | None) -> None:
        self.cache[subject] = (until, key)
        self.cache.move_to_end(subject)
        while len(self.cache) > CACHED:
            self.cache.popitem(last=False)

    def _wanted(self, event: Event) -> bool:
        return personal.is_sealed(event) and (self.only is None or event.type in self.only)

    async def open(self, events: list[Event]) -> list[Event]:
        """The events with their personal fields readable (or erased)."""
        wanted = sorted({personal.subject_of(e) for e in events
                         if self._wanted(e) and not self._cached(personal.subject_of(e))[0]})
        if wanted:
            await self._get(wanted)
        return [personal.open_event(e, self.cache[personal.subject_of(e)][1]) if self._wanted(e) else e
                for e in events]


def local(pool: asyncpg.Pool) -> KeyRing:
    """The owner's ring: keys from its own table (parley/subject_keys.py)."""
    return KeyRing(lambda subjects: subject_keys.keys_for(pool, subjects))


async def _asked(client: ServiceClient, subjects: list[str]) -> dict[str, bytes | None]:
    """The owner's answers `{"keys": {subject: base64 | null}}`, PER_CALL subjects a call
    (the URL's bound; the owner's own ring reads its table in one statement), decoded."""
    found: dict[str, str | None] = {}
    for i in range(0, len(subjects), PER_CALL):
        chunk = subjects[i:i + PER_CALL]
        found.update((await client.checked("GET", PATH, params={"subjects": ",".join(chunk)})).get("keys") or {})
    return {s: base64.b64decode(found[s]) if found.get(s) else None for s in subjects}


def fetch_with(client: Callable[[], ServiceClient]) -> Fetch:
    """Keys over a client the caller already keeps (the gateway's upstream clients)."""
    return lambda subjects: _asked(client(), subjects)


def conversation_keys(url: Callable[[], str], *only: str
                      ) -> Callable[[web.Application], Callable[[list[Event]], Awaitable[list[Event]]]]:
    """ConsumerSpec.opener for a consumer of conversation.events outside the conversation
    service that reads the personal fields of the event types `only` (crm-bridge:
    lead.requested): keys from the conversation service at `url()`, asked at each call
    (the service reads its own setting), over a session of its own (a key is fetched once
    per conversation and process, then cached)."""
    async def fetch(subjects: list[str]) -> dict[str, bytes | None]:
        async with new_session() as session:
            return await _asked(ServiceClient("conversation", url().rstrip("/"), session, internal_auth.secret()),
                                subjects)
    return lambda app: KeyRing(fetch, frozenset(only) or None).open
