"""What operator-registry answers about its operators, projects and templates: read-only
queries over its tables (projection.py writes them) and the views the app is shown.
Each takes the pool (and the acting operator where the answer depends on who asks),
never a request."""
from __future__ import annotations

from typing import Any

import asyncpg

from parley.contract import operator_stream, template_stream
from parley.eventstore import EventStore
from parley.http import Rejected

from operator_registry import accounts, domain, triggers, two_factor
from operator_registry.domain import Actor
from operator_registry.widget_texts import effective_texts

_OPERATOR_COLUMNS = "id::text, project_id, name, email, is_admin, is_owner, active, avatar_id"


def operator_view(row: asyncpg.Record, *, private: bool) -> dict[str, Any]:
    view = {"id": row["id"], "name": row["name"], "is_admin": row["is_admin"], "is_owner": row["is_owner"],
            "active": row["active"],
            "avatar_url": f"/avatars/{row['avatar_id']}.png" if row["avatar_id"] else None}
    if private:
        view["email"] = row["email"]
    return view


async def operator_row(pool: asyncpg.Pool, me: Actor, operator_id: str) -> asyncpg.Record:
    """An operator of the actor's project (404 for any other, and for a removed one)."""
    operator_id = domain.uuid_or_none(operator_id)
    if operator_id is None:
        raise domain.not_found("Operator")
    row = await pool.fetchrow(
        f"select {_OPERATOR_COLUMNS} from operators where id = $1 and project_id = $2 and not removed",
        operator_id, me.project_id)
    if row is None:
        raise domain.not_found("Operator")
    return row


async def load_operator(pool: asyncpg.Pool, store: EventStore, me: Actor, operator_id: str) -> domain.Operator:
    row = await operator_row(pool, me, operator_id)  # 404 unless it is in the actor's project
    events = await store.load(operator_stream(row["id"]))
    return domain.fold(domain.evolve_operator, events)


async def project_row(pool: asyncpg.Pool, project_id: str) -> asyncpg.Record:
    row = None
    if domain.valid_project_id(project_id):
        row = await pool.fetchrow("select * from projects where id = $1", project_id)
    if row is None:
        shown = repr(project_id) if domain.valid_project_id(project_id) else "with that id"
        raise Rejected(404, "project_not_found", f"No project {shown}.")
    return row


def project_view(row: asyncpg.Record, me: Actor) -> dict[str, Any]:
    view = {"id": row["id"], "name": row["name"], "chat_enabled": row["chat_enabled"],
            "language": row["language"], "texts": row["texts"], "sites": row["sites"]}
    if me.is_owner or me.is_admin:
        view["owner"] = {"name": row["owner_name"], "email": row["owner_email"],
                         "operator_id": str(row["owner_operator_id"])}
        view["triggers"] = row["triggers"]
    return view


async def project(pool: asyncpg.Pool, me: Actor) -> dict[str, Any]:
    """The actor's project, as project_view shows it to them."""
    return project_view(await project_row(pool, me.project_id), me)


async def me_view(pool: asyncpg.Pool, session: accounts.Session) -> dict[str, Any]:
    """The signed-in operator, as login, whoami and the gateway's verify show them."""
    a = session.actor
    row = await pool.fetchrow(f"select {_OPERATOR_COLUMNS} from operators where id = $1", a.operator_id)
    second = await two_factor.state(pool, a.operator_id, a.project_id)
    return {"id": a.operator_id, "project": a.project_id, "name": session.name, "email": session.email,
            "is_admin": a.is_admin, "is_owner": a.is_owner, "session_id": session.id,
            "avatar_url": f"/avatars/{row['avatar_id']}.png" if row and row["avatar_id"] else None,
            "two_factor": {"enabled": second.enabled, "required": second.required,
                           "must_enrol": second.must_enrol}}


def widget_config(row: asyncpg.Record) -> dict[str, Any]:
    """What the widget on a site needs to know about its project (public)."""
    return {"project": row["id"], "enabled": row["chat_enabled"], "language": row["language"],
            "texts": effective_texts(row["language"], row["texts"]), "sites": row["sites"],
            "triggers": triggers.for_widget(row["triggers"])}


async def operators(pool: asyncpg.Pool, me: Actor) -> list[dict[str, Any]]:
    """The project's operators; emails only to admins and the owner (and one's own)."""
    rows = await pool.fetch(
        f"select {_OPERATOR_COLUMNS} from operators where project_id = $1 and not removed order by is_owner desc, name",
        me.project_id)
    private = me.is_admin or me.is_owner
    return [operator_view(r, private=private or r["id"] == me.operator_id) for r in rows]


# ---- templates ----------------------------------------------------------------

SEARCH_WORDS_MAX = 10
SEARCH_WORD_MAX = 100


def search_query(q: str) -> str:
    """'дост кур' -> 'дост:* & кур:*': every word, as a prefix (at most 10 words of at
    most 100 characters: PostgreSQL refuses overlong words)."""
    words = [w[:SEARCH_WORD_MAX] for w in "".join(c if c.isalnum() else " " for c in q.lower()).split()]
    return " & ".join(f"{w}:*" for w in words[:SEARCH_WORDS_MAX])


async def templates(pool: asyncpg.Pool, me: Actor, q: str) -> list[dict[str, Any]]:
    """The project's quick replies, those matching every word of `q` first by rank."""
    query = search_query(q)
    if query:
        rows = await pool.fetch(
            """select id::text, title, text from templates, to_tsquery('simple', $2) query
               where project_id = $1 and not deleted and search @@ query
               order by ts_rank(search, query) desc, title limit 50""", me.project_id, query)
    else:
        rows = await pool.fetch(
            "select id::text, title, text from templates where project_id = $1 and not deleted order by title limit 200",
            me.project_id)
    return [dict(r) for r in rows]


async def template(pool: asyncpg.Pool, template_id: str) -> dict[str, Any]:
    return dict(await pool.fetchrow("select id::text, title, text from templates where id = $1", template_id))


async def load_template(store: EventStore, template_id: str) -> domain.Template | None:
    template_id = domain.uuid_or_none(template_id)
    if template_id is None:
        raise domain.not_found("Template")
    return domain.fold(domain.evolve_template, await store.load(template_stream(template_id)))
