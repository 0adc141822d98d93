"""The registry's tables follow its events: `apply` runs in the transaction that
appends each event. Secrets are not in events, so the commands that introduce them
(project creation, adding an operator, a new password) pass the hash alongside."""
from __future__ import annotations

import asyncpg

from parley.envelope import Event


async def apply(conn: asyncpg.Connection, event: Event, *, password_hash: str | None = None) -> None:
    d = event.data
    match event.type:
        case "project.created":
            await conn.execute(
                """insert into projects (id, name, owner_name, owner_email, owner_password, owner_operator_id, language)
                   values ($1, $2, $3, $4, $5, $6, $7)""",
                event.project_id, d["name"], d["owner_name"], d["owner_email"], password_hash,
                d["owner_operator_id"], d["language"])
        case "project.chat_enabled":
            await conn.execute("update projects set chat_enabled = true where id = $1", event.project_id)
        case "project.chat_disabled":
            await conn.execute("update projects set chat_enabled = false where id = $1", event.project_id)
        case "project.widget_settings_changed":
            await conn.execute("update projects set language = $2, texts = $3 where id = $1",
                               event.project_id, d["language"], d["texts"])
        case "project.sites_changed":
            await conn.execute("update projects set sites = $2 where id = $1", event.project_id, d["sites"])
        case "project.triggers_changed":
            await conn.execute("update projects set triggers = $2 where id = $1", event.project_id, d["triggers"])
        case "operator.added":
            await conn.execute(
                """insert into operators (id, project_id, name, email, is_admin, is_owner, password)
                   values ($1, $2, $3, $4, $5, $6, $7)""",
                d["operator_id"], event.project_id, d["name"], d["email"], d["is_admin"], d["is_owner"], password_hash)
        case "operator.profile_changed":
            await conn.execute(
                "update operators set name = coalesce($2, name), email = coalesce($3, email) where id = $1",
                _operator_id(event), d.get("name"), d.get("email"))
        case "operator.password_changed":
            await conn.execute("update operators set password = $2 where id = $1", _operator_id(event), password_hash)
        case "operator.role_changed":
            await conn.execute("update operators set is_admin = $2 where id = $1", _operator_id(event), d["is_admin"])
        case "operator.avatar_changed":
            await conn.execute("update operators set avatar_id = $2 where id = $1", _operator_id(event), d["avatar_id"])
        case "operator.deactivated":
            await conn.execute("update operators set active = false where id = $1", _operator_id(event))
        case "operator.reactivated":
            await conn.execute("update operators set active = true where id = $1", _operator_id(event))
        case "operator.removed":
            await conn.execute("update operators set active = false, removed = true where id = $1", _operator_id(event))
        case "operator.logged_out":
            await conn.execute("update sessions set revoked_at = coalesce(revoked_at, now()) where id = $1",
                               d["session_id"])
        case "template.created":
            await conn.execute("insert into templates (id, project_id, title, text) values ($1, $2, $3, $4)",
                               d["template_id"], event.project_id, d["title"], d["text"])
        case "template.updated":
            await conn.execute("update templates set title = $2, text = $3 where id = $1",
                               _template_id(event), d["title"], d["text"])
        case "template.deleted":
            await conn.execute("update templates set deleted = true where id = $1", _template_id(event))


def _operator_id(event: Event) -> str:
    return event.stream_id.removeprefix("operator-")


def _template_id(event: Event) -> str:
    return event.stream_id.removeprefix("template-")
