"""`GET /api/search?q=&after=`: the search entries (search_projection.py) an operator may
see - admins every conversation of the project, operators their own and the unclaimed
(contract.operator_may_see, as the inbox) - best first, with highlighted snippets, a
page at a time.

Ranked by `ts_rank_cd` (how close and how often the words occur), then newest first.
The cursor is the last result's sort key (rank, time, conversation, key), so a page
follows exactly where the previous one stopped, whatever was written meanwhile. A query
that looks like a phone also matches the phones of every text in any formatting
(search_index.phone_key)."""
from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from conversation import search_index
from conversation.domain import DomainError, Operator

PAGE = 20
QUERY_MAX = 200
# ts_headline marks matches with these; texts never hold control characters (the
# domain strips them), so they cannot be forged by a visitor.
_START, _STOP = "\x02", "\x03"
_HEADLINE = f"StartSel={_START}, StopSel={_STOP}, MaxWords=24, MinWords=8, ShortWord=2, MaxFragments=2, FragmentDelimiter=\" … \""

_SEARCH = f"""
with q as (select websearch_to_tsquery('russian', $2)
                  || coalesce(to_tsquery('simple', $3::text), ''::tsquery) as query),
hits as (
  select e.conversation_id, e.key, e.kind, e.text, e.at, ts_rank_cd(e.document, q.query)::real as rank
  from q, search_entries e
  join conversations c on c.id = e.conversation_id
  where e.project_id = $1 and e.document @@ q.query and c.erased_at is null
    and ($4 or c.assignee_id is null or c.assignee_id = $5::uuid)
    and ($6::real is null
         or (ts_rank_cd(e.document, q.query)::real, e.at, e.conversation_id, e.key) < ($6, $7::timestamptz, $8::uuid, $9))
  order by rank desc, e.at desc, e.conversation_id desc, e.key desc
  limit $10
)
select h.conversation_id::text, h.key, h.kind, h.at, h.rank,
       ts_headline('russian', h.text, q.query, '{_HEADLINE}') as snippet,
       c.status, c.visitor_name, c.assignee_id::text, c.assignee_name, c.last_message_at
from hits h cross join q join conversations c on c.id = h.conversation_id
order by h.rank desc, h.at desc, h.conversation_id desc, h.key desc
"""


async def search(pool: asyncpg.Pool, me: Operator, query: Any, after: Any = None) -> dict[str, Any]:
    text = _query(query)
    cursor = _cursor(after)
    phone = search_index.phone_key(text)
    rows = await pool.fetch(_SEARCH, me.project_id, text, f"tel{phone}" if phone else None, me.is_admin, me.id,
                            *(cursor or (None, None, None, None)), PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return {"results": [_result(r) for r in rows],
            "next": _encode(rows[-1]) if more and rows else None}


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


def _encode(r: asyncpg.Record) -> str:
    key = [r["rank"], r["at"].isoformat(), r["conversation_id"], r["key"]]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _cursor(after: Any) -> tuple[float, datetime, str, str] | None:
    if after in (None, ""):
        return None
    try:
        rank, at, cid, key = orjson.loads(base64.urlsafe_b64decode(str(after) + "=" * (-len(str(after)) % 4)))
        if not (isinstance(rank, (int, float)) and isinstance(cid, str) and isinstance(key, str)):
            raise ValueError
        return float(rank), datetime.fromisoformat(at), str(uuid.UUID(cid)), key
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise DomainError("cursor_invalid", "after is the `next` of a previous page, as it was given.") from None
