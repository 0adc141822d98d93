"""The one way a Parley process calls another Parley service over HTTP.

- Every call is signed (internal_auth), so the callee can believe the actor and the
  client address it carries.
- Paths are built from segments, each percent-quoted (`/` included): an id taken from
  a public URL can never climb out of its place with `../` or add a query.
- No cookie jar: a shared session with the default jar stores one caller's Set-Cookie
  and sends it with the next caller's request (when a service is reached by a host
  name rather than an IP), answering for the wrong operator.
- The same error handling for every upstream: no answer is a 503 with Retry-After,
  an upstream refusal is passed on with its status, code and message.
- Commands sent meanwhile travel together (`command`, parley.call_batches): one signed
  request for many, each answered on its own.
- A bulkhead per upstream: at most `max_in_flight` commands at once (128, batched or
  not; reads are not held, as the callee's admission holds none: a thousand operator
  sockets opening at once each check a session); one more is refused
  at once as `busy` (503, Retry-After) instead of waiting for a connection. Overload
  is then refused in a millisecond, where before the excess queued in the HTTP
  client until its 15 s timeout (issue 12: at 1,000 msg/s offered most messages were
  neither refused nor answered within 5 s), and one slow upstream cannot take every
  connection from the others."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector
from yarl import URL

from prometheus_client import Counter

from parley import call_batches, internal_auth, logs
from parley.batching import Batcher
from parley.http import Rejected, busy, unavailable

log = logging.getLogger(__name__)

# Commands per upstream and calling process. Below the callee's own admission bound (256
# running + 64 waiting per replica): a saturated callee's excess is refused here, before
# the hop. A refusal over the hop costs both processes CPU; at ten times the
# sustainable rate that alone once took both cores of the bench machine (goodput fell to
# a quarter of the peak). Two gateways together fill the callee's running places. The
# bound is also Little's law's: commands travel in batches (~50 ms a round under load),
# and 64 in flight capped one gateway at ~1,000 messages/s.
MAX_IN_FLIGHT = 128
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Batches on their way to one upstream at once (parley.batching): one is decided while the
# other travels. A lone command goes at once, never waiting for company.
BATCHES_IN_FLIGHT = 2
_BATCH_BYTES = 1024 * 1024 - 16 * 1024   # the callee's client_max_size, less the envelope and headroom
MAX_CONNECTIONS = 1000   # per session, every upstream together
REFUSED = Counter("parley_upstream_refused_total", "Calls refused as busy by the caller's bulkhead", ["upstream"])


def path(*segments: str) -> str:
    """`path("api", "operators", some_id)` -> `/api/operators/<quoted id>`."""
    if any(str(s) in ("", ".", "..") for s in segments):
        raise ValueError(f"not a path segment: {segments!r}")
    return "".join("/" + quote(str(s), safe="") for s in segments)


def new_session(total_timeout: float = 15) -> ClientSession:
    # Not aiohttp's default connection limit (100 for every upstream together, queued
    # silently): each client's bulkhead bounds its commands; this cap only keeps a flood
    # of reads from opening sockets without end.
    return ClientSession(timeout=ClientTimeout(total=total_timeout), cookie_jar=DummyCookieJar(),
                         auto_decompress=True, connector=TCPConnector(limit=MAX_CONNECTIONS))


@dataclass(frozen=True)
class _Call:
    """A command waiting for its batch: where it goes, its body, and its call as sent."""
    path: str
    json: dict[str, Any]
    encoded: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any            # parsed JSON, or None
    raw: bytes
    headers: Mapping[str, str]
    set_cookies: tuple[str, ...] = ()


@dataclass
class ServiceClient:
    name: str            # "operator-registry": used in error messages
    base_url: str        # "http://operator-registry:8082"
    session: ClientSession
    key: bytes
    max_in_flight: int = MAX_IN_FLIGHT
    in_flight: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._batches: Batcher[_Call] = Batcher(self._send_batch, max_batch=call_batches.MAX_CALLS,
                                                flights=BATCHES_IN_FLIGHT)

    async def call(self, method: str, path_: str, *, json: Any = None, body: bytes | None = None,
                   params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                   content_type: str | None = None) -> Answer:
        """One signed call. `path_` must come from `path()`; params are encoded here."""
        if json is not None:
            body, content_type = orjson.dumps(json), "application/json"
        path_qs = path_ + ("?" + urlencode(dict(params)) if params else "")
        sent = {k: v for k, v in (headers or {}).items() if v is not None}
        if content_type:
            sent["Content-Type"] = content_type
        command = method not in _READS   # as the callee's admission, reads are not held
        self._take_place(command)
        try:
            return await self._exchange(method, path_qs, body or b"", sent)
        finally:
            self.in_flight -= command

    async def command(self, path_: str, json: dict[str, Any]) -> Any:
        """A command that travels with the others sent to this upstream meanwhile, in one
        signed request (parley.call_batches): its JSON answer, or its refusal raised, as
        `checked("POST", path_, json=json)` would give them. The bulkhead counts it alone."""
        call = _Call(path_, json, orjson.dumps({"path": path_, "body": json, "correlation_id": logs.correlation_id.get()}))
        if len(call.encoded) > _BATCH_BYTES:
            raise Rejected(413, "body_too_large", f"Request body is larger than {_BATCH_BYTES} bytes.")
        self._take_place(True)
        try:
            return await self._batches.run(call)
        finally:
            self.in_flight -= 1

    def _take_place(self, command: bool) -> None:
        if command and self.in_flight >= self.max_in_flight:
            REFUSED.labels(self.name).inc()
            raise busy()
        self.in_flight += command

    async def _send_batch(self, calls: Sequence[_Call]) -> list[object]:
        """One request per ~1 MiB of calls (the callee's client_max_size), sent at once."""
        chunks: list[list[_Call]] = [[]]
        size = 0
        for call in calls:
            if chunks[-1] and size + len(call.encoded) > _BATCH_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(call)
            size += len(call.encoded) + 1
        answered = await asyncio.gather(*(self._send_chunk(chunk) for chunk in chunks))
        return [outcome for chunk in answered for outcome in chunk]

    async def _send_chunk(self, calls: list[_Call]) -> list[object]:
        body = b'{"calls":[' + b",".join(c.encoded for c in calls) + b"]}"
        try:
            answer = await self._exchange("POST", call_batches.BATCH_PATH, body, {"Content-Type": "application/json"})
        except Rejected as e:   # not answering, or not believing us: every call hears it
            return [Rejected(e.status, e.code, e.message, e.headers) for _ in calls]
        answers = answer.body.get("answers") if answer.status == 200 and isinstance(answer.body, dict) else None
        if answer.status == 404 and _code(answer.body) == "not_found":
            # A callee of an older version, during a rolling update: each call on its own.
            return list(await asyncio.gather(*(self._alone(c) for c in calls), return_exceptions=True))
        if not isinstance(answers, list) or len(answers) != len(calls):
            return [refusal(answer) if answer.status >= 300 else unavailable(self.name) for _ in calls]
        return [a["body"] if isinstance(a, dict) and a.get("status") == 200 else _refused(a if isinstance(a, dict) else {})
                for a in answers]

    async def _alone(self, call: _Call) -> Any:
        answer = await self._exchange("POST", call.path, orjson.dumps(call.json), {"Content-Type": "application/json"})
        if answer.status >= 300:
            raise refusal(answer)
        return answer.body

    async def _exchange(self, method: str, path_qs: str, body: bytes, headers: dict[str, str]) -> Answer:
        sent = {**headers, **internal_auth.sign(self.key, method, path_qs, body, headers)}
        try:
            async with self.session.request(method, URL(self.base_url + path_qs, encoded=True), data=body or None,
                                            headers=sent, allow_redirects=False) as r:
                raw = await r.read()
                parsed = None
                if raw and r.content_type == "application/json":
                    try:
                        parsed = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        parsed = None
                if r.status == 401 and _code(parsed) == internal_auth.UNSIGNED_CALL:
                    raise _not_believed(self.name, self.base_url)
                return Answer(r.status, parsed, raw, r.headers, tuple(r.headers.getall("Set-Cookie", [])))
        except (ClientError, TimeoutError):
            raise unavailable(self.name)

    async def checked(self, method: str, path_: str, **kwargs) -> Any:
        """The JSON body of a 2xx answer; any refusal is raised as it is."""
        answer = await self.call(method, path_, **kwargs)
        if answer.status >= 300:
            raise refusal(answer)
        return answer.body


def _refused(answer: dict[str, Any]) -> Rejected:
    """One call's refusal in a batch's answer (parley.call_batches), as `refusal` reads a response's."""
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    retry_after = answer.get("retry_after")
    return Rejected(answer.get("status") if isinstance(answer.get("status"), int) else 502,
                    error.get("code", "upstream_error"), error.get("message", "Refused."),
                    {"Retry-After": retry_after} if isinstance(retry_after, str) else None)


def _code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _not_believed(name: str, base_url: str) -> Rejected:
    """The upstream refused our signature: a configuration fault between two services (a
    different PARLEY_INTERNAL_SECRET, or an address that reaches another installation),
    never the end user's. Passed on as the upstream's 401, it would read as "your session
    ended" and send the app back to its login again and again."""
    log.error("upstream refused this service's signature", extra={"upstream": name, "url": base_url})
    return Rejected(503, "upstream_refused",
                    f"The {name} service did not accept this service's signed call: PARLEY_INTERNAL_SECRET "
                    f"must be the same on every service, and {name}'s address must reach this installation's.")


def refusal(answer: Answer) -> Rejected:
    error = answer.body.get("error", {}) if isinstance(answer.body, dict) else {}
    headers = {"Retry-After": answer.headers["Retry-After"]} if "Retry-After" in answer.headers else None
    return Rejected(answer.status, error.get("code", "upstream_error"), error.get("message", "Refused."), headers)
