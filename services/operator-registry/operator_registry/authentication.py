"""How operator-registry knows who asks: the session (cookie or bearer token) resolved
once per request and rotated on the answer, the actor it stands for, and a request's
command under its client's idempotency key. Every route module of this service asks
here (actor, owner, run); none reads a token itself.

The gateway owns the session cookie; this service never sets or deletes cookies. A
token goes back in the body (login, verify) and in `X-Parley-Session` (login, and any
answer on which the token rotated)."""
from __future__ import annotations

import uuid
from typing import Any, Callable

import asyncpg
from aiohttp import web

from parley.contract import CLIENT_ADDRESS_HEADER, ROTATED_TOKEN_HEADER, SESSION_COOKIE
from parley.domain_error import DomainError
from parley.envelope import Event
from parley.eventstore import Outcome
from parley.http import Rejected, rejection_of
from parley.service import POOL, STORE

from operator_registry import accounts, commands, two_factor
from operator_registry.domain import Actor

SESSION = web.RequestKey("session", object)
# Routes that never act for a session: resolving (and perhaps rotating) one there would be waste,
# and for verify a mistake: the token to verify is in the body, and its rotation goes back there.
_SESSIONLESS = {"/internal/sessions/verify", "/api/widget/config", "/api/widget/texts"}


@web.middleware
async def refusals_middleware(request: web.Request, handler):
    """The one place where the database's uniqueness becomes HTTP (the domain's refusals
    are parley.http's, as every service's)."""
    try:
        return await handler(request)
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == "operators_email":
            raise Rejected(409, "email_taken", "Another operator of this project already uses this email.")
        raise


def token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Resolves the session (if any) once per request. A token due for rotation is
    rotated only when an answer is about to go back (a success or a refusal), and the new
    token rides on it in X-Parley-Session; an answer that never comes rotates nothing."""
    if request.path in _SESSIONLESS:
        request[SESSION] = None
        return await handler(request)
    session = await accounts.verify_session(request.app[POOL], token_of(request))
    request[SESSION] = session
    try:
        if session is not None and request.path.startswith("/api/") \
                and not request.path.startswith(two_factor.ENROLMENT_PATHS) and (await two_factor.state(
                    request.app[POOL], session.actor.operator_id, session.actor.project_id)).must_enrol:
            raise two_factor.enrolment_required()
        response = await handler(request)
    except (Rejected, DomainError) as e:
        refused = rejection_of(e)   # the domain's refusal as its answer, to carry the header
        if session is not None and (fresh := await accounts.rotate(request.app[POOL], session)):
            refused.headers[ROTATED_TOKEN_HEADER] = fresh
        raise refused from None
    if session is not None and (fresh := await accounts.rotate(request.app[POOL], session)):
        response.headers[ROTATED_TOKEN_HEADER] = fresh
    return response


def actor(request: web.Request) -> Actor:
    session = request[SESSION]
    if session is None:
        raise Rejected(401, "unauthenticated", "Log in first: this needs an operator session.")
    return session.actor


def owner(request: web.Request, may: str = "do this") -> Actor:
    """The session's actor if it is the project's owner; else 403 owner_only."""
    me = actor(request)
    if not me.is_owner:
        raise Rejected(403, "owner_only", f"Only the project's owner may {may}.")
    return me


def client_address(request: web.Request) -> str:
    """The caller's address, as the gateway signed it (never X-Forwarded-For, never the peer)."""
    return accounts.client_address(request.headers.get(CLIENT_ADDRESS_HEADER))


def command_id(request: web.Request) -> str:
    """The client's idempotency key, scoped to who sends it: a retried request returns
    the first outcome, and one operator's key never replays another's."""
    session = request.get(SESSION)
    return commands.idempotent_command_id(session.actor if session else None, request.method, request.path,
                                          request.headers.get("Idempotency-Key", "")) or str(uuid.uuid4())


async def run(request: web.Request, stream_id: str, evolve, decide: Callable[[Any], list[Event]],
              *, password_hash: str | None = None, command: str | None = None,
              extra: commands.Extra | None = None) -> Outcome:
    """A command for the request; what the operator acting on it did goes into the audit trail
    (a login acts for no one yet)."""
    session = request.get(SESSION)
    by = session.actor.operator_id if session else None
    return await commands.run(request.app[STORE], command or command_id(request), stream_id, evolve, decide,
                              password_hash=password_hash, extra=extra, by=by)
