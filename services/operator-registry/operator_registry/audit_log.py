"""The project's audit log.

- `entries_for(events, by)`: what of the registry's own events the trail records
  (operators and roles, chat on or off, widget texts, sites), pure; `commands.run`
  appends them in the command's transaction when an operator acts.
- `on_audit_event`: the projection of `audit.events` (every service's entries, see
  parley/audit.py) into `audit_log`.
The log is read through audit_routes.py; nothing changes or deletes an entry."""
from __future__ import annotations

import asyncpg

from parley.audit import entry
from parley.contract import id_of
from parley.envelope import Event


def entries_for(events: list[Event], by: str) -> list[Event]:
    """The audit entries for events an operator's command appended: ids and setting
    names only, never an operator's new name or email."""
    out = []
    for event in events:
        pid, target, d = event.project_id, id_of(event.stream_id), event.data
        match event.type:
            case "operator.added":
                out.append(entry(pid, by, "operator.added", target, is_admin=d["is_admin"]))
            case "operator.profile_changed":
                out.append(entry(pid, by, "operator.changed", target, fields=sorted(d)))
            case "operator.password_changed":
                out.append(entry(pid, by, "operator.password_changed", target))
            case "operator.role_changed":
                out.append(entry(pid, by, "operator.role_changed", target, is_admin=d["is_admin"]))
            case "operator.deactivated" | "operator.reactivated" | "operator.removed":
                out.append(entry(pid, by, event.type, target))
            case "project.chat_enabled" | "project.chat_disabled":
                out.append(entry(pid, by, "settings.chat", "chat", enabled=event.type == "project.chat_enabled"))
            case "project.widget_settings_changed":
                out.append(entry(pid, by, "settings.widget", "widget", language=d["language"],
                                 texts=sorted(d["texts"])))
            case "project.sites_changed":
                out.append(entry(pid, by, "settings.sites", "sites", sites=list(d["sites"])))
            case "project.triggers_changed":
                out.append(entry(pid, by, "settings.triggers", "triggers",
                                 triggers=[t["name"] for t in d["triggers"]]))
    return out


async def on_audit_event(conn: asyncpg.Connection, event: Event) -> None:
    if event.type != "audit.recorded" or not event.project_id:
        return
    d = event.data
    await conn.execute(
        """insert into audit_log (id, project_id, at, action, by_operator, target, detail)
           values ($1, $2, $3::text::timestamptz, $4, $5, $6, $7) on conflict (id) do nothing""",
        event.id, event.project_id, event.occurred_at, d["action"], d["by"], d["target"], d["detail"])


async def reset(conn: asyncpg.Connection) -> None:
    await conn.execute("truncate audit_log")

