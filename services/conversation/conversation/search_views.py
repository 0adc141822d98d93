"""`GET /api/search?q=&after=`: the search entries (search_projection.py) an operator may
see - admins every conversation of the project, operators their own and the unclaimed
(contract.operator_may_see, as the inbox) - best first, with highlighted snippets, a
page at a time. What is looked at is the project's CANDIDATES newest matches; each
operator gets the best of those they may see, so a search costs the same whoever asks.

Ranked by `ts_rank_cd` (how close and how often the words occur), then newest first.
The cursor is the last result's sort key (rank, time, conversation, key) and the end of
the window searched, so a page follows exactly where the previous one stopped, whatever
was written meanwhile. A query that looks like a phone also matches the phones of every
text in any formatting (search_index.phone_key)."""
from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson

from conversation import search_index
from conversation.domain import DomainError, Operator

PAGE = 20
QUERY_MAX = 200
# Ranking reads every match's words: over a word in a twentieth of a million messages
# that was half a second (make bench). So the best are picked among the CANDIDATES
# newest matches, and the answer says when there were more (`capped`: add a word). The
# window ends where the first page was asked (the cursor keeps it), so pages stay exact
# while new messages arrive.
CANDIDATES = 500
# Even finding the newest matches reads every match's row: 100-140 ms for such a word,
# most of it pages not in memory. So the last 30 days are asked first, where the
# entries' index on time narrows the rows read, then 180, then all time - each only when
# the one before held fewer than CANDIDATES matches, so the answer is the one all time
# would give. The cursor keeps the window. (Ordered by time, the planner likes to walk
# the time index newest first, testing each row for the words: 150 ms for a word in a
# fiftieth of the rows. The sort key is an expression, so it sorts the matches instead.)
WINDOWS = (timedelta(days=30), timedelta(days=180), None)
# ts_headline marks matches with these; texts never hold control characters (the
# domain strips them), so they cannot be forged by a visitor.
_START, _STOP = "\x02", "\x03"
_HEADLINE = f"StartSel={_START}, StopSel={_STOP}, MaxWords=24, MinWords=8, ShortWord=2, MaxFragments=2, FragmentDelimiter=\" … \""

# Written out where it is used, not in a CTE: a constant the planner can see is a word
# whose frequency it knows (the column's statistics), so it picks the plan for it.
_QUERY = "(websearch_to_tsquery('russian', $2) || coalesce(to_tsquery('simple', $3::text), ''::tsquery))"
_SEARCH_ANY_TIME = f"""
with newest as (
  select e.conversation_id, e.key, ($4 or c.assignee_id is null or c.assignee_id = $5::uuid) as visible
  from search_entries e
  join conversations c on c.id = e.conversation_id
  where e.project_id = $1 and e.document @@ {_QUERY} and c.erased_at is null
    and e.at <= $11::timestamptz {{window}}
  order by e.at + interval '0 s' desc, e.conversation_id desc, e.key desc   -- never by walking the time index
  limit {CANDIDATES}
),
ranked as (
  select e.conversation_id, e.key, e.kind, e.text, e.at, ts_rank_cd(e.document, {_QUERY})::real as rank
  from newest n join search_entries e using (conversation_id, key)
  where n.visible
),
hits as (
  select * from ranked
  where $6::real is null or (rank, at, conversation_id, key) < ($6, $7::timestamptz, $8::uuid, $9)
  order by rank desc, at desc, conversation_id desc, key desc
  limit $10
)
select m.matched, h.conversation_id::text, h.key, h.kind, h.at, h.rank,
       ts_headline('russian', h.text, {_QUERY}, '{_HEADLINE}') as snippet,
       c.status, c.visitor_name, c.assignee_id::text, c.assignee_name, c.last_message_at
from (select count(*) as matched from newest) m
left join (hits h join conversations c on c.id = h.conversation_id) on true
order by h.rank desc, h.at desc, h.conversation_id desc, h.key desc
"""
# The same within a window (entries after $12): see WINDOWS.
_SEARCH_WINDOW = _SEARCH_ANY_TIME.replace("{window}", "and e.at > $12::timestamptz")
_SEARCH_ANY_TIME = _SEARCH_ANY_TIME.replace("{window}", "")


async def search(pool: asyncpg.Pool, me: Operator, query: Any, after: Any = None) -> dict[str, Any]:
    text = _query(query)
    cursor = _cursor(after)
    until = cursor[4] if cursor else datetime.now(timezone.utc)
    phone = search_index.phone_key(text)
    args = [me.project_id, text, f"tel{phone}" if phone else None, me.is_admin, me.id,
            *(cursor[:4] if cursor else (None, None, None, None)), PAGE + 1, until]
    windows = [cursor[5]] if cursor else list(WINDOWS)
    async with pool.acquire() as conn, conn.transaction():
        # Planned for this query's words each time: a plan kept for the statement would
        # be one for any word, the same for the rarest and the commonest.
        await conn.execute("set local plan_cache_mode = force_custom_plan")
        for window in windows:
            if window is None:
                rows = await conn.fetch(_SEARCH_ANY_TIME, *args)
                break
            rows = await conn.fetch(_SEARCH_WINDOW, *args, until - window)
            if cursor or rows[0]["matched"] >= CANDIDATES:
                break
    capped = rows[0]["matched"] >= CANDIDATES
    rows = [r for r in rows if r["conversation_id"] is not None]   # the count's row alone: nothing to show
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return {"results": [_result(r) for r in rows],
            "next": _encode(rows[-1], until, window) if more and rows else None,
            # more matches than were looked at: the best of the CANDIDATES newest are shown
            "capped": capped}


def _result(r: asyncpg.Record) -> dict[str, Any]:
    return {"conversation_id": r["conversation_id"], "kind": r["kind"], "at": r["at"].isoformat(),
            "snippet": snippet_parts(r["snippet"]),
            "conversation": {"status": r["status"], "visitor_name": r["visitor_name"],
                             "assignee_id": r["assignee_id"], "assignee_name": r["assignee_name"],
                             "last_message_at": r["last_message_at"].isoformat() if r["last_message_at"] else None}}


def snippet_parts(headline: str) -> list[dict[str, Any]]:
    """ts_headline's text as [{text, match}], so no client ever renders it as HTML."""
    parts: list[dict[str, Any]] = []
    for i, piece in enumerate(headline.split(_START)):
        inside, _, outside = piece.partition(_STOP) if i else ("", "", piece)
        for value, match in ((inside, True), (outside, False)):
            if value:
                parts.append({"text": value, "match": match})
    return parts


def _query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise DomainError("q_required", "Type what to search for (q).")
    text = " ".join(query.split())
    if len(text) > QUERY_MAX:
        raise DomainError("q_too_long", f"A search is at most {QUERY_MAX} characters; this one is {len(text)}.")
    if any(ord(c) < 32 for c in text):
        raise DomainError("q_invalid", "A search may not hold control characters.")
    return text


def _encode(r: asyncpg.Record, until: datetime, window: timedelta | None) -> str:
    key = [r["rank"], r["at"].isoformat(), r["conversation_id"], r["key"], until.isoformat(),
           window.days if window else None]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _cursor(after: Any) -> tuple[float, datetime, str, str, datetime, timedelta | None] | None:
    if after in (None, ""):
        return None
    try:
        rank, at, cid, key, until, days = orjson.loads(
            base64.urlsafe_b64decode(str(after) + "=" * (-len(str(after)) % 4)))
        at, until = datetime.fromisoformat(at), datetime.fromisoformat(until)
        if not (isinstance(rank, (int, float)) and isinstance(cid, str) and isinstance(key, str)
                and at.tzinfo is not None and until.tzinfo is not None
                and (days is None or timedelta(days=days) in WINDOWS)):
            raise ValueError
        return (float(rank), at, str(uuid.UUID(cid)), key, until, timedelta(days=days) if days is not None else None)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise DomainError("cursor_invalid", "after is the `next` of a previous page, as it was given.") from None
