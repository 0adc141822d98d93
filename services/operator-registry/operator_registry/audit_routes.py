"""`GET /api/project/audit?after=<cursor>&limit=<n>` (admins): the audit log's entries
after the cursor, oldest first, operators' names resolved at read time (an entry holds
ids only). `next` is the cursor to ask with next time; `more` says a full page came
back. There is no route that changes or deletes an entry."""
from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from parley.audit import COMMAND_LINE, COMMAND_LINE_NAME
from parley.http import Rejected, ok
from parley.service import POOL

from operator_registry.authentication import actor

PAGE, MAX_PAGE = 100, 500


def _whole(value: str, name: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise Rejected(422, f"{name}_invalid", f"{name} is a whole number from {low} to {high}.")
    return int(value)


_PAGE_QUERY = """
select a.seq, a.id::text, a.at, a.action, a.by_operator::text, a.target, a.detail,
       coalesce(o.name, case when a.by_operator = p.owner_operator_id then p.owner_name end) as by_name,
       t.name as target_name
from audit_log a
join projects p on p.id = a.project_id
left join operators o on o.id = a.by_operator
left join operators t on a.action like 'operator.%' and t.id::text = a.target
where a.project_id = $1 and a.seq > $2
order by a.seq
limit $3
"""


def _view(row: asyncpg.Record) -> dict[str, Any]:
    return {"cursor": str(row["seq"]), "id": row["id"], "at": row["at"].isoformat(), "action": row["action"],
            "by": {"id": row["by_operator"],
                   "name": COMMAND_LINE_NAME if row["by_operator"] == COMMAND_LINE else row["by_name"]},
            "target": {"id": row["target"], "name": row["target_name"]},
            "detail": row["detail"]}


async def get_audit(request: web.Request) -> web.Response:
    me = actor(request)
    if not me.is_admin:
        raise Rejected(403, "admin_only", "Only an admin may read the audit log.")
    after = _whole(request.query.get("after", "0"), "after", 0, 2**62)
    limit = _whole(request.query.get("limit", str(PAGE)), "limit", 1, MAX_PAGE)
    rows = await request.app[POOL].fetch(_PAGE_QUERY, me.project_id, after, limit)
    entries = [_view(r) for r in rows]
    return ok({"entries": entries, "next": entries[-1]["cursor"] if entries else str(after),
               "more": len(entries) == limit})


ROUTES = [("GET", "/api/project/audit", get_audit)]
