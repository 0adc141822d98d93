"""Service-to-service calls prove their caller: an HMAC-SHA256 signature, under the
installation's shared PARLEY_INTERNAL_SECRET, over the method, the path with its query,
a timestamp, the body's digest and every header a service decides on (who acts, from
which address, with which credentials; contract.SIGNED_HEADERS).

Every service but the gateway refuses an unsigned, badly signed or stale call with 401,
so reaching a service's port is not enough to act in it: the actor header and the client
address are believed because the gateway signed them, never because they arrived.

What it does not stop: a captured call replayed within MAX_SKEW_SECONDS. Calls travel on
the cluster's internal network, and every command carries an idempotency key, so a
replayed command returns its first outcome and appends nothing."""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping

from aiohttp import web

from parley.config import shared_secret
from parley.contract import SIGNATURE_HEADER, SIGNED_HEADERS, TIMESTAMP_HEADER
from parley.http import error_response

MAX_SKEW_SECONDS = 60
_OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}


def secret() -> bytes:
    return shared_secret("PARLEY_INTERNAL_SECRET", "for every Parley service")


def _canonical(method: str, path_qs: str, timestamp: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [method.upper(), path_qs, timestamp, hashlib.sha256(body).hexdigest()]
    # Values as HTTP delivers them: a field value's surrounding whitespace is not part of it
    # (RFC 9110, 5.5), so the receiver never sees what a sender left at either end.
    lines += [name.lower() + ":" + headers.get(name, "").strip(" \t") for name in SIGNED_HEADERS]
    return "\n".join(lines).encode()


def sign(key: bytes, method: str, path_qs: str, body: bytes, headers: Mapping[str, str],
         now: float | None = None) -> dict[str, str]:
    """The two headers to add to a call whose other headers are `headers`."""
    timestamp = str(int(now if now is not None else time.time()))
    digest = hmac.new(key, _canonical(method, path_qs, timestamp, body, headers), hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: digest}


def verify(key: bytes, method: str, path_qs: str, body: bytes, headers: Mapping[str, str],
           now: float | None = None) -> str | None:
    """None when the call is signed by us and fresh, otherwise what is wrong with it."""
    timestamp, signature = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        return "unsigned"
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return "bad timestamp"
    if age > MAX_SKEW_SECONDS:
        return "stale"
    expected = hmac.new(key, _canonical(method, path_qs, timestamp, body, headers), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "bad signature"


# The refusal's code: a caller that gets it back was not believed, whoever it acts for.
UNSIGNED_CALL = "unsigned_call"


def require_signed_calls() -> web.middleware:
    """Middleware for an internal service: only probes are open; everything else must be signed."""
    key = secret()

    @web.middleware
    async def signed_only(request: web.Request, handler):
        if request.path in _OPEN_PATHS:
            return await handler(request)
        # The body is read whole here (bounded by the app's client_max_size) and cached,
        # so the handler's request.read()/json() see the same bytes.
        body = await request.read()
        problem = verify(key, request.method, request.raw_path, body, request.headers)
        if problem is not None:
            return error_response(401, UNSIGNED_CALL,
                                  f"This port answers Parley services only ({problem} call). "
                                  "Use the gateway's public API.")
        return await handler(request)

    return signed_only
