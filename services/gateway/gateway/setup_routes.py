"""The first-run page: `/setup` names the installation's first project and creates its
owner, and exists only while the installation has no project.

- Whether setup is still open is asked of operator-registry on every request, never
  kept here: every gateway replica agrees, and the page is gone (404, GET and POST) on
  all of them the moment a project exists, whoever made it (/setup, the CLI).
- The setup token is HMAC-SHA256(PARLEY_INTERNAL_SECRET, "parley-setup"), in hex, cut
  to 32 characters (128 bits). Every replica derives the same one without storing it or
  talking to the others; it reveals nothing of the secret; it is compared in constant
  time. Anyone who holds the internal secret can sign calls to every service already,
  so deriving from it gives nobody a new power. It opens setup only while there is no
  project, so it is good for one project, ever.
- At start-up, while there is no project, the gateway logs the full URL with the
  token (as Jupyter and Grafana print theirs); only whoever reads the logs can set up.
- The registry creates the project, enables its chat, makes the owner its first
  operator and opens their session in one place (its first_run module), refusing all
  but the first project atomically. The gateway sets the session cookie, as on login.

    GET  /setup?token=...   the page (403 setup_token_invalid without the right token)
    POST /setup             {token, project_id, project_name, owner_name, owner_email,
                             password, language?} -> 201 and the session cookie; 422
                             `<field>_invalid`; 409 setup_already_done to a racing loser
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

from aiohttp import web

from parley import internal_auth
from parley.config import env
from parley.http import Rejected, read_json
from parley.service import SETTINGS
from parley.service_client import path, refusal

from gateway import auth
from gateway.web_files import WEB
from gateway.upstreams import REGISTRY, as_caller, registry, relay

log = logging.getLogger(__name__)

TOKEN_LENGTH = 32
_FIELDS = ("project_id", "project_name", "owner_name", "owner_email", "password", "language")
_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
    # The token is in the page's URL: no other site may learn it from a Referer.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'"}
ANNOUNCE_RETRY_SECONDS = 2


def setup_token() -> str:
    return hmac.new(internal_auth.secret(), b"parley-setup", hashlib.sha256).hexdigest()[:TOKEN_LENGTH]


def token_matches(given: object) -> bool:
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), setup_token().encode())


def setup_url(app: web.Application) -> str:
    base = env("PARLEY_PUBLIC_URL").rstrip("/") or f"http://localhost:{app[SETTINGS].http_port}"
    return f"{base}/setup?token={setup_token()}"


async def setup_open(app: web.Application) -> bool:
    """True while the installation has no project (asked of the registry: 503 if it cannot say)."""
    answer = await registry(app).call("GET", path("internal", "setup"))
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise refusal(answer)
    return answer.body.get("needed") is True


def _closed() -> Rejected:
    return Rejected(404, "setup_closed", "This installation is set up already: log in at /app.")


def _wrong_token() -> Rejected:
    return Rejected(403, "setup_token_invalid", "This setup link is not valid: open the link with ?token=... "
                                                "that the gateway printed in its log at start-up.")


async def page(request: web.Request) -> web.StreamResponse:
    if not await setup_open(request.app):
        raise _closed()
    if not token_matches(request.query.get("token")):
        raise _wrong_token()
    return web.FileResponse(WEB / "setup.html", headers=_PAGE_HEADERS)


async def script(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "setup.js", headers={
        "Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"})


async def submit(request: web.Request) -> web.Response:
    if not await setup_open(request.app):
        raise _closed()
    body = await read_json(request)
    if not token_matches(body.get("token")):
        raise _wrong_token()
    answer = await registry(request.app).call("POST", path("internal", "setup"), headers=as_caller(request),
                                              json={k: body[k] for k in _FIELDS if k in body})
    response = relay(answer)
    if answer.status == 201 and isinstance(answer.body, dict):
        auth.set_session_cookie(request, response, answer.body["token"])
    return response


def announce(app: web.Application):
    """A background loop: once the registry answers, log the setup URL if there is no
    project yet; then idle until shutdown (a loop that ends counts as stopped in /readyz)."""
    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if REGISTRY in app:  # the upstream clients start just after the loops
                    if await setup_open(app):
                        log.warning(f"No project yet. Set up this installation at {setup_url(app)}",
                                    extra={"setup_url": setup_url(app)})
                    break
            except Rejected:
                pass  # the registry is not up yet: ask again
            try:
                await asyncio.wait_for(stop.wait(), ANNOUNCE_RETRY_SECONDS if REGISTRY in app else 0.1)
            except asyncio.TimeoutError:
                pass
        await stop.wait()
    return run


def add_routes(app: web.Application) -> None:
    app.router.add_get("/setup", page)
    app.router.add_post("/setup", submit)
    app.router.add_get("/setup.js", script)
