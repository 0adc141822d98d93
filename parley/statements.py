"""Several writes sent to PostgreSQL as one statement (issue 21).

Each write becomes a data-modifying CTE of one statement, so a transaction spends one
round trip on all of them, not one each. At 100 messages/s a command's transaction was
nine round trips, and on a busy box every one is a point where the service waits for
PostgreSQL to be scheduled and PostgreSQL for the service: the tail grows with their
number. PostgreSQL runs every data-modifying CTE once and to completion, read or not.

Only for writes that touch different rows and read nothing the others write: the parts
of one statement share its snapshot and none of them sees another's changes."""
from __future__ import annotations

import re
from typing import Any, Sequence

import asyncpg

Statement = tuple[str, Sequence[Any]]   # SQL with $1..$n, and its n arguments

_PARAM = re.compile(r"\$(\d+)")


def as_ctes(parts: Sequence[Statement], *, after: int = 0, prefix: str = "write") -> tuple[str, list[Any]]:
    """`prefix0 as (...), prefix1 as (...)`, for a WITH list whose statement already has
    `after` parameters: each part's $n renumbered past those, and the arguments in order."""
    ctes, args = [], []
    for n, (sql, part_args) in enumerate(parts):
        offset = after + len(args)
        ctes.append(f"{prefix}{n} as ({_PARAM.sub(lambda m: f'${int(m.group(1)) + offset}', sql)})")
        args.extend(part_args)
    return ",\n".join(ctes), args


async def execute(conn: asyncpg.Connection, parts: Sequence[Statement]) -> None:
    """`parts` sent as one statement (a single part as it is)."""
    if len(parts) == 1:
        sql, args = parts[0]
    else:
        sql, args = as_ctes(parts)
        sql = f"with {sql}\nselect"
    await conn.execute(sql, *args)
