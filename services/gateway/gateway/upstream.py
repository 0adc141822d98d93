"""The gateway's calls to the services behind it, over HTTP. Public REST routes owned
by another service are forwarded as they are: the owning service authenticates the
caller and applies its own permission rules, so they live in one place."""
from __future__ import annotations

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from parley.config import env
from parley.http import error_response

from gateway.client_ip import client_ip

HTTP = web.AppKey("http", ClientSession)

_FORWARDED_REQUEST_HEADERS = ("Authorization", "Cookie", "Content-Type", "Idempotency-Key", "X-Correlation-Id",
                              "Accept-Language")
_FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "X-Parley-Session")


def registry_url() -> str:
    return env("PARLEY_OPERATOR_REGISTRY_URL").rstrip("/")


async def http_client(app: web.Application):
    async with ClientSession(timeout=ClientTimeout(total=15)) as session:
        app[HTTP] = session
        yield


def unavailable(service: str) -> web.Response:
    return error_response(503, "service_unavailable", f"{service} is not answering; try again in a moment.",
                          headers={"Retry-After": "2"})


def forwarded_headers(request: web.Request) -> dict[str, str]:
    headers = {h: request.headers[h] for h in _FORWARDED_REQUEST_HEADERS if h in request.headers}
    headers["X-Forwarded-For"] = client_ip(request)  # what the registry throttles logins by
    return headers


async def forward(request: web.Request, base_url: str, service: str) -> web.Response:
    body = await request.read()  # bounded by the app's client_max_size
    try:
        async with request.app[HTTP].request(request.method, base_url + request.path_qs, data=body or None,
                                             headers=forwarded_headers(request)) as upstream:
            payload = await upstream.read()
            response = web.Response(status=upstream.status, body=payload)
            for name in _FORWARDED_RESPONSE_HEADERS:
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            for cookie in upstream.headers.getall("Set-Cookie", []):
                response.headers.add("Set-Cookie", cookie)
            return response
    except (ClientError, TimeoutError):
        return unavailable(service)


async def to_registry(request: web.Request) -> web.Response:
    return await forward(request, registry_url(), "operator-registry")
