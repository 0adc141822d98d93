"""Who is calling - the one place the gateway decides it.

- Operators: the session token, from `Authorization: Bearer` (scripts) or the HttpOnly
  `parley_session` cookie (the app), verified by operator-registry. A token that
  rotated while being verified goes back to the client on the same response: the
  cookie is set again, and `X-Parley-Session` carries it for bearer clients. The gateway
  is the only one that writes the cookie (Secure when the public side is https).
- Cookie-authenticated writes must come from our own pages: a same-origin `Origin` (or
  `Sec-Fetch-Site`), and a body type that a foreign page's form cannot send (JSON on
  JSON routes). Bearer calls carry no ambient credentials and are not checked.
- Visitors: a visitor token signed by the gateway (visitor_tokens), from a page whose
  origin is among the project's sites (project_config)."""
from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from parley.config import env
from parley.contract import ROTATED_TOKEN_HEADER, SESSION_COOKIE, TWO_FACTOR_ENROLMENT_REQUIRED
from parley.http import Rejected, error_response
from parley.service_client import path, refusal

from gateway import project_config, verified_visitors, visitor_tokens
from gateway.client_ip import forwarded_proto
from gateway.upstreams import as_caller, registry
from gateway.visitor_tokens import VisitorToken

SESSION_MAX_AGE = 90 * 86400
OPERATOR = web.RequestKey("operator", dict)
ROTATED = web.RequestKey("rotated_token", str)
SESSION_CLEARED = web.RequestKey("session_cleared", bool)

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# What an HTML form (or a no-cors fetch) may send without asking: never accepted with a cookie.
_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""}
# Routes whose body is a file, not JSON (their handlers sniff the content).
_RAW_BODY_ROUTES = {"/api/operators/{id}/avatar", "/api/conversations/{id}/attachments"}
_VISITOR_API = "/api/visitor/"


# ---- operators ------------------------------------------------------------------------

def session_token(request: web.Request) -> tuple[str | None, bool]:
    """(token, came from the cookie)."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token, from_cookie = auth[7:].strip() or None, False
    else:
        token, from_cookie = request.cookies.get(SESSION_COOKIE) or None, True
    if token is not None and not (token.isascii() and token.isprintable()):
        token = None  # never one of ours, and it could not be signed nor sent on
    return token, from_cookie


async def verify(request: web.Request, token: str) -> tuple[dict | None, str | None]:
    """(operator, rotated token) for a session token; (None, None) if it does not stand."""
    answer = await registry(request.app).call("POST", path("internal", "sessions", "verify"), json={"token": token},
                                              headers=as_caller(request))
    if answer.status == 401:
        return None, None
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise refusal(answer)
    operator = dict(answer.body)
    return operator, operator.pop("rotated_token", None)


async def current_operator(request: web.Request) -> dict:
    """The operator behind this request, or 401."""
    if OPERATOR not in request:
        token, _ = session_token(request)
        operator, rotated = await verify(request, token) if token else (None, None)
        if operator is None:
            raise Rejected(401, "unauthenticated", "Log in first: this needs an operator session.")
        if rotated:
            request[ROTATED] = rotated
        request[OPERATOR] = operator
    # Checked on every call, the cached operator's too: a second call in one request is
    # refused as the first was.
    if must_enrol(request[OPERATOR]):
        raise Rejected(403, *TWO_FACTOR_ENROLMENT_REQUIRED)
    return request[OPERATOR]


def must_enrol(operator: dict) -> bool:
    """A session of a project that requires two-factor login, for an operator who has not
    set it up: it may only enrol (the registry refuses its own routes likewise)."""
    return bool((operator.get("two_factor") or {}).get("must_enrol"))


def take_rotation(request: web.Request, answer) -> None:
    """Called after every registry call made with this request's session token: a token
    the registry rotated while answering goes back to the client (session_rotation)."""
    fresh = answer.headers.get(ROTATED_TOKEN_HEADER)
    if fresh:
        request[ROTATED] = fresh


def secure_request(request: web.Request) -> bool:
    """Did the client reach us over https (directly, per PARLEY_PUBLIC_URL, or per a trusted proxy)?"""
    return (request.secure or env("PARLEY_PUBLIC_URL").lower().startswith("https://")
            or forwarded_proto(request) == "https")


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_MAX_AGE, httponly=True, samesite="Lax", path="/",
                        secure=secure_request(request))
    response.headers[ROTATED_TOKEN_HEADER] = token


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=secure_request(request), httponly=True, samesite="Lax")


@web.middleware
async def session_rotation(request: web.Request, handler):
    """A token rotated anywhere during the request reaches the client with the response."""
    try:
        response = await handler(request)
    except Rejected as e:
        response = error_response(e.status, e.code, e.message, e.headers)
    except web.HTTPException as e:  # aiohttp's own answers (a 404 of a handler) carry it too
        _hand_back_rotation(request, e)
        raise
    _hand_back_rotation(request, response)
    return response


def _hand_back_rotation(request: web.Request, response: web.StreamResponse) -> None:
    rotated = request.get(ROTATED)
    if rotated and not request.get(SESSION_CLEARED) and not response.prepared:
        if session_token(request)[1]:
            set_session_cookie(request, response, rotated)
        else:
            response.headers[ROTATED_TOKEN_HEADER] = rotated


# ---- cross-site request forgery --------------------------------------------------------------

def _origins_of_ours(request: web.Request) -> set[str]:
    """scheme://host[:port] of our pages. The scheme counts (issue 23): a plain-http page
    on our host, which anyone on the path can write, is not the https app. It is the
    client's scheme as the trusted proxy reports it, else the public URL's for its host,
    else the connection's; with neither a public URL nor a trusted proxy, an https page
    of our host is taken as ours too (a TLS proxy in front that the gateway was not told of)."""
    public = urlsplit(env("PARLEY_PUBLIC_URL")) if env("PARLEY_PUBLIC_URL") else None
    scheme = forwarded_proto(request)
    if scheme is None and public is not None and public.netloc.lower() == request.host.lower():
        scheme = public.scheme          # our public address, reached through a proxy we were told of
    ours = {f"{scheme or request.scheme}://{request.host}".lower()}
    if public is not None:
        ours.add(f"{public.scheme}://{public.netloc}".lower())
    elif scheme is None and request.scheme == "http":
        ours.add(f"https://{request.host}".lower())
    return ours


def same_origin(request: web.Request) -> bool:
    """The request comes from a page of ours (or from no browser page at all)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin)
        return f"{parts.scheme}://{parts.netloc}".lower() in _origins_of_ours(request)
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


@web.middleware
async def csrf(request: web.Request, handler):
    if request.method not in _UNSAFE or not request.path.startswith("/api/") or request.path.startswith(_VISITOR_API):
        return await handler(request)  # the widget's calls use the visitor token, never the cookie
    token, from_cookie = session_token(request)
    if token is None or not from_cookie:
        return await handler(request)  # bearer (no ambient credential) or anonymous
    if not same_origin(request):
        return error_response(403, "cross_origin", "This request came from another site's page; "
                                                   "the operator app sends it from its own origin.")
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    content_type = request.content_type if request.headers.get("Content-Type") else ""
    if route in _RAW_BODY_ROUTES:
        if content_type in _FORM_TYPES:
            return error_response(415, "file_body_required", "Send the file itself as the body "
                                                             "(Content-Type: application/octet-stream or its type).")
    elif content_type != "application/json":
        return error_response(415, "json_required", "Send JSON with Content-Type: application/json.")
    return await handler(request)


# ---- visitors ------------------------------------------------------------------------

VISITOR_TOKEN_HEADER = "X-Parley-Visitor-Token"
WS_PROTOCOL = "parley.v1"
_WS_TOKEN = "parley.token."


def visitor_token_of(request: web.Request) -> str | None:
    """The visitor token a widget call carries: the X-Parley-Visitor-Token header, or -
    a browser cannot set headers on a WebSocket - the subprotocol `parley.token.<token>`
    offered beside `parley.v1`. Never the URL (issue 23): proxies and servers log URLs."""
    token = request.headers.get(VISITOR_TOKEN_HEADER)
    if token:
        return token.strip()
    for offered in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        if offered.strip().startswith(_WS_TOKEN):
            return offered.strip()[len(_WS_TOKEN):]
    return None


async def visitor(request: web.Request) -> tuple[VisitorToken, dict]:
    """(what the visitor token says, project config) for a widget call from an allowed
    site; a verified visitor's only while it stands (verified_visitors.still_verified)."""
    identity = visitor_tokens.verify(visitor_token_of(request))
    if identity is None:
        raise Rejected(401, "visitor_token_invalid", "Unknown visitor; start a new visitor session.")
    if not await verified_visitors.still_verified(request.app, identity):
        raise Rejected(401, "visitor_token_expired", "This visitor session has ended; start a new visitor session.")
    config = await project_config.get(request.app, identity.project_id)
    project_config.require_allowed_origin(request, config)
    return identity, config
