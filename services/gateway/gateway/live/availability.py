"""Is the chat open now? Each project's working hours, kept by the gateway
(docs/working-hours.md, Availability).

- The schedule comes from `schedule.updated` on `schedule.events` (every gateway reads
  the live topic), or from the scheduler's `GET /internal/schedules/{project}` on a miss.
  An entry is trusted for TTL_SECONDS and then asked again, so a gateway that missed an
  event (started after it, or a broker hiccup) is wrong for a short while at most.
- `open`/`next_open_at` are computed here, at request time, by the pure rules
  (parley.working_hours): the widget config, and the closed-hours rule on the socket.
- `schedule.availability_changed` is pushed to the project's visitors by
  visitor_availability.py, with whether anyone is online.
- The scheduler down and nothing cached: the chat counts as open (the default
  schedule). Working hours only keep visitors from starting chats nobody will answer;
  hiding the chat because a helper service is down would be worse."""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

from parley import working_hours
from parley.envelope import Event
from parley.http import Rejected
from parley.service_client import path

from gateway import upstreams
from gateway.live import push

log = logging.getLogger(__name__)

TTL_SECONDS = 30.0
RETRY_SECONDS = 5.0      # after the scheduler could not answer, the default is used this long
MAX_CACHED = 10_000


@dataclass
class Schedules:
    entries: OrderedDict[str, tuple[float, working_hours.Schedule]] = field(default_factory=OrderedDict)
    generation: dict[str, int] = field(default_factory=dict)   # bumped by each schedule.updated

    def put(self, project_id: str, schedule: working_hours.Schedule, ttl: float = TTL_SECONDS) -> None:
        self.entries[project_id] = (time.monotonic() + ttl, schedule)
        self.entries.move_to_end(project_id)
        while len(self.entries) > MAX_CACHED:
            self.entries.popitem(last=False)


SCHEDULES = web.AppKey("schedules", Schedules)


def setup(app: web.Application) -> None:
    app[SCHEDULES] = Schedules()


def _schedule_body(body: object) -> dict | None:
    if isinstance(body, dict) and isinstance(body.get("schedule"), dict):
        return body["schedule"]
    return body if isinstance(body, dict) and "show_any_time" in body else None


async def schedule(app: web.Application, project_id: str) -> working_hours.Schedule:
    cache = app[SCHEDULES]
    cached = cache.entries.get(project_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    generation = cache.generation.get(project_id, 0)
    try:
        answer = await upstreams.scheduler(app).call("GET", path("internal", "schedules", project_id))
    except Rejected:
        answer = None
    if answer is not None and answer.status == 404:
        found, ttl = working_hours.DEFAULT, TTL_SECONDS   # never saved: the default
    elif answer is not None and answer.status == 200 and _schedule_body(answer.body) is not None:
        try:
            found, ttl = working_hours.parse(_schedule_body(answer.body)), TTL_SECONDS
        except working_hours.ScheduleInvalid:
            log.error("the scheduler's schedule does not parse", extra={"project_id": project_id})
            found, ttl = working_hours.DEFAULT, RETRY_SECONDS
    else:
        log.warning("schedule unavailable; counting the chat as open", extra={"project_id": project_id})
        found, ttl = (cached[1] if cached else working_hours.DEFAULT), RETRY_SECONDS
    if cache.generation.get(project_id, 0) == generation:  # no newer schedule.updated came meanwhile
        cache.put(project_id, found, ttl)
    return found


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


async def now_open(app: web.Application, project_id: str) -> tuple[bool, str | None]:
    """(open, next_open_at as ISO or None) for the project right now."""
    s = await schedule(app, project_id)
    now = datetime.now(timezone.utc)
    if working_hours.is_open(s, now):
        return True, None
    return False, _iso(working_hours.next_open_at(s, now))


async def on_schedule_event(app: web.Application, event: Event) -> None:
    """schedule.events: keep the schedule; unanswered alerts go to the project's admins.
    (`schedule.availability_changed` reaches the visitors through visitor_availability.py.)"""
    d = event.data
    project_id = d.get("project_id") or event.project_id
    if event.type == "schedule.updated":
        try:
            parsed = working_hours.parse(d["schedule"])
        except (working_hours.ScheduleInvalid, KeyError, TypeError):
            log.error("schedule.updated does not parse", extra={"project_id": project_id})
            return
        cache = app[SCHEDULES]
        cache.generation[project_id] = cache.generation.get(project_id, 0) + 1
        cache.put(project_id, parsed)
    elif event.type == "schedule.unanswered_alert":
        await push.on_unanswered_alert(app, event)
