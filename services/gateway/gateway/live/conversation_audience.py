"""Who may see each conversation, as the live paths need it: its project and assignee,
kept current from the conversation events by push.py and read by typing_signals.py.
Bounded (least recently used first out); a miss asks the conversation service."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

from gateway.upstreams import conversation_summary

SUMMARIES = web.AppKey("conversation_summaries", OrderedDict)
SUMMARY_CACHE = 10_000


@dataclass
class Summary:
    project_id: str
    assignee_id: str | None
    pushed_seq: int = 0   # the last seq pushed to operators: a redelivered event is not pushed twice


async def summary(app: web.Application, cid: str, project_id: str, *, starts: bool = False) -> Summary:
    """Who may see the conversation, kept current from the events."""
    cache = app[SUMMARIES]
    if cid not in cache:
        if starts:
            cache[cid] = Summary(project_id, None)
        else:
            found = await conversation_summary(app, cid)
            cache[cid] = Summary(project_id, found["assignee_id"] if found else None)
    entry = cache[cid]
    cache.move_to_end(cid)
    while len(cache) > SUMMARY_CACHE:
        cache.popitem(last=False)
    return entry
