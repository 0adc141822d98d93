"""Reports (issue 24, item 4): the projection and `GET /api/reports`.

- The consumer `scheduler.reports` reads conversation.events (the types report_rows.py
  needs; none of their personal fields) and keeps `report_conversations`,
  `report_offers_expired` and `report_operator_names`: per partition batch, the rows of
  its conversations are read in one statement, evolved (report_rows.evolve: an event at
  or below a row's version changes nothing), and written back in one; replays and
  rebuilds make the same rows.
- The scheduler is its home because the figures count working time in the project's
  time zone, and the schedules are here.
- `GET /api/reports?from=YYYY-MM-DD&to=YYYY-MM-DD&group=day|operator[&format=csv]`,
  admins: local days of the project's zone, at most MAX_DAYS; every day of the period is
  a row (zeros included) when grouped by day."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from parley.actor import admin_of
from parley.envelope import Event
from parley.http import Rejected, ok
from parley.service import POOL

from scheduler import report_rows
from scheduler.report_rows import OfferExpired, ReportRow
from scheduler.schedule_rows import current_schedule

MAX_DAYS = 366
GROUPS = ("day", "operator")
COLUMNS = ("conversations", "missed", "first_response_median_s", "first_response_p90_s", "resolution_median_s",
           "resolution_p90_s", "offers_expired", "csat_average", "csat_count")
_ROW_FIELDS = ("conversation_id", "project_id", "version", "started_at", "assignee_id", "first_reply_at",
               "first_reply_by", "closed_at", "rating")


def _row(record: asyncpg.Record) -> ReportRow:
    values = dict(record)
    for k in ("conversation_id", "assignee_id", "first_reply_by"):
        values[k] = str(values[k]) if values[k] is not None else None
    return ReportRow(**values)


async def on_conversation_events(conn: asyncpg.Connection, events: list[Event]) -> None:
    """A partition batch: the rows of its conversations, evolved, in three statements."""
    ids = sorted({e.stream_id.removeprefix("conversation-") for e in events if e.stream_id.startswith("conversation-")})
    if not ids:
        return
    found = await conn.fetch(f"select {', '.join(_ROW_FIELDS)} from report_conversations "
                             "where conversation_id = any($1::uuid[])", ids)
    rows = {str(r["conversation_id"]): _row(r) for r in found}
    before = dict(rows)
    offers: list[OfferExpired] = []
    names: dict[str, tuple[str, str]] = {}
    for event in events:
        if not event.stream_id.startswith("conversation-") or not event.project_id:
            continue
        cid = event.stream_id.removeprefix("conversation-")
        evolved = report_rows.evolve(rows.get(cid), event)
        if evolved is not None:
            rows[cid] = evolved
        if (offer := report_rows.offer_expired(event)) is not None:
            offers.append(offer)
        if (named := report_rows.operator_names(event)) is not None:
            names[named[0]] = (event.project_id, named[1])
    changed = [r for cid, r in rows.items() if before.get(cid) != r]
    if changed:
        columns = {f: [getattr(r, f) for r in changed] for f in _ROW_FIELDS}
        await conn.execute(
            """insert into report_conversations (conversation_id, project_id, version, started_at, assignee_id,
                   first_reply_at, first_reply_by, closed_at, rating)
               select * from unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::uuid[],
                                    $6::timestamptz[], $7::uuid[], $8::timestamptz[], $9::smallint[])
               on conflict (conversation_id) do update set version = excluded.version,
                   assignee_id = excluded.assignee_id, first_reply_at = excluded.first_reply_at,
                   first_reply_by = excluded.first_reply_by, closed_at = excluded.closed_at, rating = excluded.rating
               where report_conversations.version < excluded.version""",
            *(columns[f] for f in _ROW_FIELDS))
    if offers:
        await conn.execute(
            """insert into report_offers_expired (offer_id, project_id, conversation_id, operator_id, at)
               select * from unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[])
               on conflict (offer_id) do nothing""",
            [o.offer_id for o in offers], [o.project_id for o in offers], [o.conversation_id for o in offers],
            [o.operator_id for o in offers], [o.at for o in offers])
    if names:
        await conn.execute(
            """insert into report_operator_names (operator_id, project_id, name)
               select * from unnest($1::uuid[], $2::text[], $3::text[])
               on conflict (operator_id) do update set name = excluded.name""",
            list(names), [p for p, _ in names.values()], [n for _, n in names.values()])


# ---- the API ---------------------------------------------------------------------------

def _day(value: str | None, name: str) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise Rejected(422, f"{name}_invalid", f"{name} is a date, YYYY-MM-DD.") from None


def parse_query(query: Any) -> tuple[date, date, str, bool]:
    first, last = _day(query.get("from"), "from"), _day(query.get("to"), "to")
    if last < first:
        raise Rejected(422, "to_invalid", "to is on or after from.")
    if (last - first).days + 1 > MAX_DAYS:
        raise Rejected(422, "period_too_long", f"A report covers at most {MAX_DAYS} days.")
    group = query.get("group", "day")
    if group not in GROUPS:
        raise Rejected(422, "group_invalid", "group is day or operator.")
    fmt = query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise Rejected(422, "format_invalid", "format is json or csv.")
    return first, last, group, fmt == "csv"


async def report(pool: asyncpg.Pool, project_id: str, first: date, last: date, group: str) -> dict[str, Any]:
    schedule = await current_schedule(pool, project_id)
    start, end = report_rows.period(schedule, first, last)
    found = await pool.fetch(f"select {', '.join(_ROW_FIELDS)} from report_conversations "
                             "where project_id = $1 and started_at >= $2 and started_at < $3", project_id, start, end)
    offers = [OfferExpired(r["offer_id"], project_id, str(r["conversation_id"]), str(r["operator_id"]), r["at"])
              for r in await pool.fetch("""select offer_id, conversation_id, operator_id, at from report_offers_expired
                                           where project_id = $1 and at >= $2 and at < $3""", project_id, start, end)]
    figures = report_rows.summarise(schedule, [_row(r) for r in found], offers, group)
    total, empty = figures.pop("total"), report_rows.figures([], [], {})
    if group == "day":
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        rows = [{"day": d.isoformat(), **figures.get(d, empty)} for d in days]
    else:
        names = {str(r["operator_id"]): r["name"] for r in await pool.fetch(
            "select operator_id, name from report_operator_names where project_id = $1", project_id)}
        rows = sorted(({"operator_id": k, "operator_name": names.get(k) if k else None, **v}
                       for k, v in figures.items()), key=lambda r: (r["operator_id"] is None, r["operator_name"] or ""))
    return {"from": first.isoformat(), "to": last.isoformat(), "group": group, "time_zone": schedule.time_zone,
            "working_time": not schedule.show_any_time, "rows": rows, "total": total}


def as_csv(body: dict[str, Any]) -> str:
    keys = ["day"] if body["group"] == "day" else ["operator_id", "operator_name"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*keys, *COLUMNS])
    for row in [*body["rows"], {**{k: "total" if i == 0 else "" for i, k in enumerate(keys)}, **body["total"]}]:
        writer.writerow([_cell(row.get(k)) for k in (*keys, *COLUMNS)])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value   # an operator's name is not a formula in a spreadsheet
    return value


async def get_reports(request: web.Request) -> web.Response:
    me = admin_of(request, "Only an admin may see reports.")
    first, last, group, csv_wanted = parse_query(request.query)
    body = await report(request.app[POOL], me.project_id, first, last, group)
    if csv_wanted:
        return web.Response(text=as_csv(body), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="parley-report-{body["from"]}-{body["to"]}-{group}.csv"'})
    return ok(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/reports", get_reports)
