"""Data subjects' keys, kept by the service that owns their streams (table
`subject_keys`, parley/migrations/003_subject_keys.sql), and the two places that use
them there: the relay, which seals personal fields on their way to Kafka
(`Sealer`), and the owner's own reading of its topics (`LocalOpener`, a rebuild).
Other services get keys over a signed call (`GET /internal/subject-keys`,
parley/key_ring.py).

A key is made the first time its subject's personal data goes out, and wiped by
`erase`: the row stays as a tombstone, so a late relay pass cannot make a new key
for an erased subject and publish readable data under it."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

import asyncpg

from parley import cipher, personal
from parley.envelope import Event

CACHED = 20_000   # keys a process keeps (32 bytes each, plus the subject)

_GET_OR_MAKE = """
with wanted as (select * from unnest($1::text[], $2::bytea[]) as w(subject, key)),
made as (insert into subject_keys (subject, key) select subject, key from wanted
         on conflict (subject) do nothing returning subject, key)
select subject, key from made
union all
select k.subject, k.key from subject_keys k join wanted w using (subject)
where not exists (select 1 from made m where m.subject = k.subject)
"""


async def keys_for(db: asyncpg.Pool | asyncpg.Connection, subjects: Iterable[str], *,
                   make: bool = False) -> dict[str, bytes | None]:
    """Each subject's key; None for an erased subject and, without `make`, for one that
    has none yet. With `make`, missing keys are made (one statement for the batch)."""
    subjects = sorted(set(subjects))
    if not subjects:
        return {}
    if make:
        rows = await db.fetch(_GET_OR_MAKE, subjects, [cipher.new_key() for _ in subjects])
    else:
        rows = await db.fetch("select subject, key from subject_keys where subject = any($1::text[])", subjects)
    found = {r["subject"]: (bytes(r["key"]) if r["key"] is not None else None) for r in rows}
    return {s: found.get(s) for s in subjects}


async def erase(conn: asyncpg.Connection, subjects: Sequence[str]) -> None:
    """Wipe the subjects' keys for good (tombstones for subjects that had none yet)."""
    await conn.execute(
        """insert into subject_keys (subject, key, erased_at) select s, null, now() from unnest($1::text[]) s
           on conflict (subject) do update set key = null, erased_at = coalesce(subject_keys.erased_at, now())""",
        list(subjects))


class _Cache:
    def __init__(self, size: int = CACHED):
        self.size, self.items = size, OrderedDict()

    def get(self, subject: str):
        if subject in self.items:
            self.items.move_to_end(subject)
            return True, self.items[subject]
        return False, None

    def put(self, subject: str, key: bytes | None) -> None:
        self.items[subject] = key
        self.items.move_to_end(subject)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def forget(self, subjects: Iterable[str]) -> None:
        for s in subjects:
            self.items.pop(s, None)


class Sealer:
    """The relay's: personal fields sealed under their subject's key, made on first use.
    Keys are cached (a stream's events go out in many batches); an erased subject's
    events go out in their erased form (its rows are scrubbed in the store as well)."""

    def __init__(self) -> None:
        self.cache = _Cache()

    async def seal(self, conn: asyncpg.Connection, events: list[Event]) -> list[Event]:
        subjects = {personal.subject_of(e) for e in events if personal.is_personal(e)}
        missing = [s for s in subjects if not self.cache.get(s)[0]]
        if missing:
            for subject, key in (await keys_for(conn, missing, make=True)).items():
                self.cache.put(subject, key)
        out = []
        for e in events:
            if not personal.is_personal(e):
                out.append(e)
                continue
            key = self.cache.get(personal.subject_of(e))[1]
            out.append(personal.seal_event(e, key) if key is not None else personal.erase_event(e))
        return out


class LocalOpener:
    """The owning service reading its own topics (a rebuild): keys from its own table."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def open(self, events: list[Event]) -> list[Event]:
        sealed = {personal.subject_of(e) for e in events if personal.is_sealed(e)}
        keys = await keys_for(self.pool, sealed) if sealed else {}
        return [personal.open_event(e, keys.get(personal.subject_of(e))) for e in events]
