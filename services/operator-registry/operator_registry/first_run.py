"""The first-run setup, for the gateway's /setup page (internal routes: only the
gateway's signed calls reach them).

    GET  /internal/setup   {"needed": true} while the installation has no project
    POST /internal/setup   {project_id, project_name, owner_name, owner_email, password,
                            language?} -> the first project, chat enabled, the owner its
                            first operator and logged in (201, like POST /api/session)

The gateway checks the setup token; this service decides whether setup is still open,
and makes it so that one project, ever, comes out of it (commands.open_project with
first_only). A refused field comes back as 422 `<field>_invalid`."""
from __future__ import annotations

from aiohttp import web

from parley.http import ok, read_json
from parley.service import POOL, STORE

from operator_registry import commands, domain, installation, routes


async def setup_state(request: web.Request) -> web.Response:
    return ok({"needed": not await installation.has_project(request.app[POOL])})


async def setup(request: web.Request) -> web.Response:
    body = await read_json(request)
    # A quick answer for the usual late comer; the race itself is settled in the transaction.
    if await installation.has_project(request.app[POOL]):
        raise domain.setup_already_done()
    project_id = body.get("project_id")
    owner_id = await commands.open_project(
        request.app[STORE], project_id, name=body.get("project_name"), owner_name=body.get("owner_name"),
        owner_email=body.get("owner_email"), owner_password=body.get("password"),
        language=body.get("language", "en"), first_only=True)
    return await routes.open_session(request, {"id": owner_id, "project_id": project_id})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/internal/setup", setup_state)
    app.router.add_post("/internal/setup", setup)
