"""Internal services answer signed calls only (issue: anyone reaching :8081 could list
every conversation and reply as any operator by writing X-Parley-Actor themselves)."""
import time

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from parley import internal_auth
from parley.config import REPO_ROOT, Settings
from parley.contract import ACTOR_HEADER, CLIENT_ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from parley.http import ok, read_json
from parley.service import ServiceSpec, create_app
from parley.service_client import ServiceClient, new_session, path

KEY = internal_auth.secret()


def _routes(app: web.Application) -> None:
    async def echo(request: web.Request) -> web.Response:
        body = await read_json(request)
        return ok({"actor": request.headers.get(ACTOR_HEADER), "body": body, "path": request.raw_path})
    app.router.add_route("*", "/internal/echo/{id}", echo)


@pytest.fixture
async def service(platform, schema_name):
    spec = ServiceSpec(name="auth-test", schema=schema_name, default_port=0, owns_streams=False, routes=_routes)
    settings = Settings(service="auth-test", http_port=0, database_url=platform.database_url,
                        kafka_bootstrap=platform.bootstrap, log_level="INFO", schemas_dir=REPO_ROOT / "schemas",
                        shutdown_timeout=5)
    client = TestClient(TestServer(create_app(spec, settings)))
    await client.start_server()
    yield client
    await client.close()


def unit_sign(method, path_qs, body=b"", headers=None, **kw):
    headers = dict(headers or {})
    headers.update(internal_auth.sign(KEY, method, path_qs, body, headers, **kw))
    return headers


async def test_unsigned_forged_stale_and_tampered_calls_get_401(service):
    actor = orjson.dumps({"id": "x", "project": "demo", "name": "Mallory", "is_admin": True}).decode()
    body = orjson.dumps({"text": "hi"})
    base = {"Content-Type": "application/json"}

    r = await service.post("/internal/echo/1", data=body, headers={**base, ACTOR_HEADER: actor})
    assert r.status == 401 and (await r.json())["error"]["code"] == "unsigned_call"

    wrong_key = {**base, ACTOR_HEADER: actor}
    wrong_key.update(internal_auth.sign(b"not-the-key" * 4, "POST", "/internal/echo/1", body, wrong_key))
    assert (await service.post("/internal/echo/1", data=body, headers=wrong_key)).status == 401

    stale = unit_sign("POST", "/internal/echo/1", body, {**base, ACTOR_HEADER: actor}, now=time.time() - 600)
    assert (await service.post("/internal/echo/1", data=body, headers=stale)).status == 401

    signed = unit_sign("POST", "/internal/echo/1", body, {**base, ACTOR_HEADER: actor})
    # the same signature with another actor, another path, another body or another client address
    other_actor = {**signed, ACTOR_HEADER: actor.replace("Mallory", "Owner")}
    assert (await service.post("/internal/echo/1", data=body, headers=other_actor)).status == 401
    assert (await service.post("/internal/echo/2", data=body, headers=signed)).status == 401
    assert (await service.post("/internal/echo/1", data=b'{"text":"bye"}', headers=signed)).status == 401
    added_address = {**signed, CLIENT_ADDRESS_HEADER: "10.0.0.1"}
    assert (await service.post("/internal/echo/1", data=body, headers=added_address)).status == 401
    garbage = {**signed, TIMESTAMP_HEADER: "soon", SIGNATURE_HEADER: "x"}
    assert (await service.post("/internal/echo/1", data=body, headers=garbage)).status == 401

    good = await service.post("/internal/echo/1", data=body, headers=signed)
    assert good.status == 200
    assert (await good.json())["body"] == {"text": "hi"}


async def test_probes_stay_open(service):
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert (await service.get(probe)).status in (200, 503), probe


async def test_the_service_client_signs_quotes_and_keeps_no_cookies(service):
    async with new_session() as http:
        client = ServiceClient("auth-test", f"http://localhost:{service.port}", http, KEY)
        body = await client.checked("POST", path("internal", "echo", "../../x?y=1"), json={"n": 1})
        # an id with ../ and ? stays one quoted segment: it reaches this route, and no other
        assert body["path"] == "/internal/echo/..%2F..%2Fx%3Fy%3D1"
        assert body["body"] == {"n": 1}
        assert http.cookie_jar.__class__.__name__ == "DummyCookieJar"
    with pytest.raises(ValueError):
        path("internal", "..")


async def test_a_body_in_several_packets_is_read_whole(service):
    """A 6 KB JSON body sent in pieces with pauses (a slow network) is one body."""
    import asyncio
    payload = orjson.dumps({"text": "x" * 6000})
    headers = unit_sign("POST", "/internal/echo/1", payload, {"Content-Type": "application/json"})
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST /internal/echo/1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(payload)}\r\n"
                 f"{head}Connection: close\r\n\r\n".encode())
    for i in range(0, len(payload), 1500):
        writer.write(payload[i:i + 1500])
        await writer.drain()
        await asyncio.sleep(0.05)
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    assert b" 200 " in status_line, response[:300]
    assert b"x" * 6000 in rest
