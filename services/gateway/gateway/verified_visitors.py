"""Verified visitors (issue 13, item 5): `Parley.identify({id, name, email, hash})`.

`hash` is the hex HMAC-SHA256 of `id` under the project's identity secret (kept by the
registry, identity_secrets.py; read here over a signed call and cached for
SECRET_TTL_SECONDS, so a rotation reaches every gateway within that). A visitor whose
hash verifies gets a visitor token for `verified:<digest of project and id>`: the same
id is the same visitor on every device and browser, so their conversations follow them.
The id itself is never in the token or the events (only the digest), and the prefix
marks the visitor as verified for operators. The name and email given with the claim
are kept by the conversation service under that visitor id (`remember`; personal data,
in its table, never in an event), so operators see who the logged-in customer is.

Anything else - no hash, a wrong one, no secret yet, the registry not answering - is
not an error: the visitor stays anonymous (their own random id) and the answer says
`verified: false` with the reason, which the widget writes to the browser console. So a
claim without a valid hash never joins anyone's history.

A verified visitor's token ends (issue 23; the id is stable, so a token that lived for
ever would reach the user's future conversations too):
- when the identity secret is rotated: the token carries the generation of the secret
  that verified it (`generation_of`), checked at every use and on open sockets;
- after VERIFIED_TOKEN_SECONDS; the site's page vouches again with its hash at each load;
- when the page no longer vouches: a session asked for with a verified token and no
  identity is a new anonymous visitor (the site's user logged out; `Parley.reset()`)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from parley.http import Rejected
from parley.service_client import path

from gateway.upstreams import conversation, registry
from gateway.visitor_tokens import VisitorToken

log = logging.getLogger(__name__)

PREFIX = "verified:"
ID_MAX = 200
SECRET_TTL_SECONDS = 30.0
VERIFIED_TOKEN_SECONDS = 24 * 3600
_HASH = re.compile(r"^[0-9a-fA-F]{64}$")
SECRETS = web.AppKey("identity_secrets", dict)


def expected_hash(secret: str, identity_id: str) -> str:
    """What the site's server computes: hex HMAC-SHA256(secret, id)."""
    return hmac.new(secret.encode(), identity_id.encode(), hashlib.sha256).hexdigest()


def visitor_id_for(project_id: str, identity_id: str) -> str:
    """The verified visitor's id: stable per project and id, and not the id itself."""
    return PREFIX + hashlib.sha256(f"{project_id}\n{identity_id}".encode()).hexdigest()[:40]


def is_verified(visitor_id: str) -> bool:
    return visitor_id.startswith(PREFIX)


def generation_of(secret: str) -> str:
    """Names the secret without revealing it (the token is readable by its holder)."""
    return hashlib.sha256(b"parley identity secret generation\n" + secret.encode()).hexdigest()[:16]


_UNKNOWN = object()   # the registry did not answer and nothing is cached


async def _secret(app: web.Application, project_id: str) -> Any:
    """The project's identity secret, None when it has none, or _UNKNOWN."""
    cache = app[SECRETS]
    hit = cache.get(project_id)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    answer = await registry(app).call("GET", path("internal", "projects", project_id, "identity-secret"))
    if answer.status == 404:
        secret = None
    elif answer.status == 200:
        secret = answer.body["secret"]
    else:
        return hit[1] if hit else _UNKNOWN   # the registry away: the last known secret
    if len(cache) > 10_000:
        cache.clear()
    cache[project_id] = (time.monotonic() + SECRET_TTL_SECONDS, secret)
    return secret


@dataclass(frozen=True)
class Verdict:
    visitor_id: str | None = None    # the verified visitor, or None
    reason: str | None = None        # why not
    generation: str | None = None    # of the secret that verified them


async def check(app: web.Application, project_id: str, identity: Any) -> Verdict:
    if not isinstance(identity, dict):
        return Verdict(reason="identity_invalid")
    identity_id, claimed = identity.get("id"), identity.get("hash")
    if isinstance(identity_id, int) and not isinstance(identity_id, bool):
        identity_id = str(identity_id)
    if not isinstance(identity_id, str) or not 1 <= len(identity_id) <= ID_MAX:
        return Verdict(reason="identity_invalid")
    if not isinstance(claimed, str) or not _HASH.match(claimed):
        return Verdict(reason="hash_missing")
    secret = await _secret(app, project_id)
    if secret is None or secret is _UNKNOWN:
        return Verdict(reason="no_identity_secret")
    if not hmac.compare_digest(expected_hash(secret, identity_id), claimed.lower()):
        return Verdict(reason="hash_invalid")
    return Verdict(visitor_id_for(project_id, identity_id), generation=generation_of(secret))


async def still_verified(app: web.Application, token: VisitorToken) -> bool:
    """Whether a token still stands: an anonymous one always; a verified one until it
    expires or the secret that verified it is rotated. With the registry away and the
    secret unknown here, it stands until it expires (a registry outage does not turn
    every logged-in customer into a stranger)."""
    if not is_verified(token.visitor_id):
        return True
    if token.generation is None or token.expires_at is None or token.expires_at < time.time():
        return False
    secret = await _secret(app, token.project_id)
    if secret is _UNKNOWN:
        return True
    return secret is not None and hmac.compare_digest(generation_of(secret), token.generation)


async def remember(app: web.Application, project_id: str, visitor_id: str, identity: dict) -> None:
    """The name and email the site gave with a hash that verified, kept by the conversation
    service under the verified visitor id (its identities.py) for operators to see. Best
    effort: the conversation service away leaves the last known identity, never an error."""
    try:
        answer = await conversation(app).call("PUT", path("internal", "visitors", "identity"), json={
            "project_id": project_id, "visitor_id": visitor_id,
            "name": identity.get("name"), "email": identity.get("email")})
        if answer.status != 200:
            log.warning("verified identity not stored", extra={"status": answer.status})
    except Rejected as e:
        log.warning("verified identity not stored", extra={"error": e.message})


def setup(app: web.Application) -> None:
    app[SECRETS] = {}
