"""The gateway's part of an erasure (issue 20): the files a conversation's messages
carried - bytes and names, in the gateway's `files` table - are deleted when the
conversation is erased (`chat.conversation_erased` lists their ids), and their links
answer 404 from then on. Consumer group `gateway.erasures`, applied once per event with
its offset (the backbone's ConsumerRunner); reported to the conversation service."""
from __future__ import annotations

import asyncpg

from parley.config import env
from parley.contract import id_of
from parley.envelope import Event
from parley.erasure_reports import report

_DELETE = """
with gone as (delete from files where project_id = $3 and (id = any($1::text[]) or conversation_id = $2::uuid)
              returning 1)
select count(*) from gone
"""


EVENT_TYPES = frozenset({"chat.conversation_erased"})   # the rest only move the consumer's offset


async def on_conversation_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.type != "chat.conversation_erased":
        return
    deleted = await conn.fetchval(_DELETE, list(event.data.get("file_ids") or ()), id_of(event.stream_id),
                                  event.project_id)
    await report(env("PARLEY_CONVERSATION_URL"), "files", event, {"files": deleted})
