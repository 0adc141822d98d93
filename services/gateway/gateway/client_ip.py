"""The visitor's or operator's own address, for throttling and rate limits.

Behind a reverse proxy (an ingress, a load balancer) every request comes from the proxy;
the client is in X-Forwarded-For. Only the entries added by proxies we run can be
trusted - a client can send any X-Forwarded-For it likes - so PARLEY_TRUSTED_PROXY_HOPS
says how many of them stand in front of the gateway (0: none, the peer is the client)."""
from __future__ import annotations

from aiohttp import web

from parley.config import env


def _hops() -> int:
    return int(env("PARLEY_TRUSTED_PROXY_HOPS") or 0)


def client_ip(request: web.Request) -> str:
    hops = _hops()
    chain = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    chain.append(request.remote or "")
    if hops <= 0:
        return chain[-1]
    return chain[-(hops + 1)] if len(chain) > hops else chain[0]


def forwarded_proto(request: web.Request) -> str | None:
    """The scheme the client used, as the nearest trusted proxy reports it (None: no trusted proxy)."""
    if _hops() <= 0:
        return None
    protos = [p.strip().lower() for p in request.headers.get("X-Forwarded-Proto", "").split(",") if p.strip()]
    return protos[-1] if protos else None
