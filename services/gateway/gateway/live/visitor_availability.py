"""What the widget is told about availability: `{"type": "availability", "open",
"next_open_at", "online"}`, built here only. Sent after the hello (visitor_socket.py),
answered in widget/config (visitor_api.py) and pushed to a project's visitor sockets
when the schedule opens or closes the chat (`schedule.availability_changed`) or when the
project's last operator goes offline or the first comes online (presence.py).

It sits above availability.py (working hours) and presence.py (who is online), which
know nothing of visitors' sockets."""
from __future__ import annotations

from aiohttp import web

from parley.envelope import Event

from gateway.live import availability, presence
from gateway.live.send_queue import serialize
from gateway.live.visitor_sockets import push_to_project


async def frame(app: web.Application, project_id: str, open_now: tuple[bool, str | None] | None = None) -> dict:
    """The frame for the project now; `open_now` (open, next_open_at) when the caller knows it."""
    is_open, next_open_at = open_now if open_now is not None else await availability.now_open(app, project_id)
    return {"type": "availability", "open": is_open, "next_open_at": next_open_at,
            "online": await presence.someone_online(app, project_id)}


async def on_schedule_event(app: web.Application, event: Event) -> None:
    if event.type != "schedule.availability_changed":
        return
    d = event.data
    project_id = d.get("project_id") or event.project_id
    push_to_project(app, project_id, serialize(
        await frame(app, project_id, (bool(d.get("open")), d.get("next_open_at")))))


async def on_operator_event(app: web.Application, event: Event) -> None:
    """operator.events: presence.py pushes presence to operators and keeps who is online;
    when that flips whether anyone is, the project's visitors are told."""
    if await presence.on_operator_event(app, event):
        push_to_project(app, event.project_id, serialize(await frame(app, event.project_id)))
