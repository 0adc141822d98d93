"""Search across history (issue 24): `GET /api/search`'s query (conversation/search_views.py)
over a generated corpus of `entries` messages (1,000,000 in `make bench`) in a scratch
schema of the conversation service, as an admin (every conversation) and as an
operator (their own and the unclaimed). Goal: p95 ≤ 100 ms; the floor, measured in the
same run, is a primary-key read of one entry.

The corpus: conversations of MESSAGES_EACH messages, each message 6-14 words drawn from
a Russian and an English vocabulary of VOCABULARY words with Zipf-like frequencies (the
commonest in about one message in twenty, most in a few hundred), some with a phone. The queries:
words drawn the same way (so common words are asked for as often as people use them),
Russian word forms of them, two-word queries and phones in another formatting."""
from __future__ import annotations

import random
import time
import uuid

from parley import db

import conversation.__main__ as conversation_main
from conversation import search_views
from conversation.domain import Operator

from bench.common import Ticker, percentile, progress

MESSAGES_EACH = 50
VOCABULARY = 4000
SKIP = 50
_RU_STEMS = ["окн", "доставк", "заказ", "двер", "цен", "скидк", "оплат", "гаранти", "кухн", "балкон", "монтаж",
             "замер", "стекл", "профил", "подоконник", "отлив", "москитн", "ручк", "фурнитур", "офис"]
_RU_ENDINGS = ["а", "о", "у", "ы", "ой", "ом", "ами", "ах", "е", "и"]
_EN = ["order", "delivery", "window", "price", "discount", "payment", "warranty", "kitchen", "install", "measure",
       "glass", "frame", "handle", "office", "invoice", "refund", "sofa", "table", "chair", "door"]
_EN_ENDINGS = ["", "s", "ed", "ing"]


def _vocabulary(rng: random.Random) -> list[str]:
    words = [s + e for s in _RU_STEMS for e in _RU_ENDINGS] + [w + e for w in _EN for e in _EN_ENDINGS]
    letters = "абвгдежзиклмнопрстуфхцчшэюя"
    while len(words) < VOCABULARY:
        words.append("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    rng.shuffle(words)
    return words


def _zipf(rng: random.Random, n: int) -> int:
    """An index in [0, n) with p(k) ~ 1/(k + SKIP): the first words are the common ones.
    SKIP stands for the words a search never sees (the stop words the configuration
    drops): the commonest word left is in about one message in twenty, as "заказ" or
    "delivery" might be in a shop's chats."""
    return min(n - 1, int(SKIP * ((n + SKIP) / SKIP) ** rng.random()) - SKIP)


async def run(database_url: str, *, entries: int, queries: int) -> dict:
    schema = f"bench_search_{uuid.uuid4().hex[:8]}"
    pool = await db.create_pool(database_url, schema, max_size=4)
    rng = random.Random(24)
    try:
        await db.migrate(pool, schema, conversation_main.SPEC.migrations)
        words = _vocabulary(rng)
        conversations = max(1, entries // MESSAGES_EACH)
        operators = [str(uuid.uuid4()) for _ in range(20)]
        ids = [str(uuid.uuid4()) for _ in range(conversations)]
        progress(f"search: {conversations:,} conversations of {MESSAGES_EACH} messages ({entries:,} in all)...")
        await pool.execute(
            """insert into conversations (id, project_id, visitor_id, status, assignee_id, started_at, version)
               select id, 'demo', 'v-' || id::text, case when a is null then 'new' else 'open' end, a, now(), 1
               from unnest($1::uuid[], $2::uuid[]) as x(id, a)""",
            ids, [None if i % 10 == 0 else operators[i % len(operators)] for i in range(conversations)])
        tick = Ticker()
        written, chunk = 0, 20_000
        started = time.perf_counter()
        while written < entries:
            n = min(chunk, entries - written)
            rows = []
            for j in range(written, written + n):
                text = " ".join(words[_zipf(rng, len(words))] for _ in range(rng.randint(6, 14)))
                if j % 97 == 0:
                    text += f" +7 (9{j % 100:02d}) {j % 1000:03d}-{j % 100:02d}-{(j // 100) % 100:02d}"
                rows.append((ids[j // MESSAGES_EACH], f"m:{j}", text))
            await pool.execute(
                """insert into search_entries (conversation_id, key, project_id, kind, text, at, document)
                   select c, k, 'demo', 'visitor', t, now() - make_interval(secs => random() * 86400 * 365),
                          to_tsvector('russian', t)
                   from unnest($1::uuid[], $2::text[], $3::text[]) as x(c, k, t)""",
                *map(list, zip(*rows)))
            written += n
            tick(lambda: f"search: {written:,}/{entries:,} messages written")
        await pool.execute("analyze search_entries; analyze conversations")
        fill_s = time.perf_counter() - started

        asked = []
        for _ in range(queries):
            kind = rng.random()
            if kind < 0.6:
                asked.append(words[_zipf(rng, len(words))])
            elif kind < 0.75:
                asked.append(rng.choice(_RU_STEMS) + rng.choice(_RU_ENDINGS))
            elif kind < 0.9:
                asked.append(f"{words[_zipf(rng, len(words))]} {words[_zipf(rng, len(words))]}")
            else:
                j = rng.randrange(0, entries, 97)
                asked.append(f"8 9{j % 100:02d} {j % 1000:03d} {j % 100:02d} {(j // 100) % 100:02d}")
        admin = Operator(id=operators[0], project_id="demo", name="Admin", is_admin=True)
        operator = Operator(id=operators[1], project_id="demo", name="Operator", is_admin=False)
        timings: dict[str, list[float]] = {"admin": [], "operator": []}
        found = {"admin": 0, "operator": 0}
        for i, q in enumerate(asked):
            for who, me in (("admin", admin), ("operator", operator)):
                t0 = time.perf_counter()
                body = await search_views.search(pool, me, q)
                timings[who].append(time.perf_counter() - t0)
                found[who] += bool(body["results"])
            tick(lambda: f"search: {i + 1}/{len(asked)} queries")
        floor = []
        for _ in range(200):
            t0 = time.perf_counter()
            await pool.fetchval("select text from search_entries where conversation_id = $1 and key = $2",
                                ids[rng.randrange(conversations)], f"m:{rng.randrange(entries)}")
            floor.append(time.perf_counter() - t0)
        result = {"entries": entries, "conversations": conversations, "fill_s": round(fill_s, 1),
                  "queries": len(asked), "floor_p95": percentile(floor, 95)}
        for who in timings:
            result[who] = {"p50": percentile(timings[who], 50), "p95": percentile(timings[who], 95),
                           "p99": percentile(timings[who], 99), "with_results": found[who]}
        result["p95"] = max(result["admin"]["p95"], result["operator"]["p95"])
        result["p95_ratio_to_floor"] = round(result["p95"] / result["floor_p95"], 1) if result["floor_p95"] else None
        progress(f"search: p95 {result['p95'] * 1000:.0f} ms over {entries:,} messages "
                 f"(admin {result['admin']['p95'] * 1000:.0f} ms, operator {result['operator']['p95'] * 1000:.0f} ms; "
                 f"a key read {result['floor_p95'] * 1000:.1f} ms)")
        return result
    finally:
        await pool.execute(f'drop schema "{schema}" cascade')
        await pool.close()
