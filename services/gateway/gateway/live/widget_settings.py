"""A project's widget settings reach open widgets live (issue 19: the widget's language
applied only after a reload).

`project.events` (every gateway reads the live topic): any change to the project's
public configuration drops the gateway's cached copy (project_config), and
`project.widget_settings_changed` pushes `{"type": "texts", "language", "texts"}` - the
effective texts, as `/api/widget/config` gives them - to every visitor socket of the
project, which relabels the widget in place."""
from __future__ import annotations

import logging

from aiohttp import web

from parley.envelope import Event
from parley.http import Rejected

from gateway import project_config
from gateway.live.send_queue import serialize
from gateway.live.visitor_sockets import push_to_project

log = logging.getLogger(__name__)

CONFIG_CHANGES = ("project.widget_settings_changed", "project.sites_changed", "project.chat_enabled",
                  "project.chat_disabled", "project.triggers_changed")   # triggers: open widgets get them on their next page


async def on_project_event(app: web.Application, event: Event) -> None:
    if event.type not in CONFIG_CHANGES or not event.project_id:
        return
    app[project_config.CONFIGS].pop(event.project_id, None)
    if event.type != "project.widget_settings_changed":
        return
    try:
        config = await project_config.get(app, event.project_id)
    except Rejected as e:
        log.warning("new widget texts not pushed", extra={"project_id": event.project_id, "error": e.message})
        return   # the widgets pick them up on their next load
    frame = serialize({"type": "texts", "language": config.get("language"), "texts": config.get("texts") or {}})
    push_to_project(app, event.project_id, frame)
