"""Visitors on the site now, across gateways (issue 24, item 2).

Every widget with the chat enabled keeps a socket open (widget.js), so the gateway that
holds a visitor's sockets knows their visit: the `page` frames (site_visits.py), the
custom params, their conversation and whether it is going. Gateways tell each other on
visitors.signals, a topic of ephemeral signals like typing.signals (kept one minute,
nothing rebuilds from it):
- every FLUSH_SECONDS, one message per batch of the visits that changed here and the
  visitors who left (a visitor with no socket here for half the refresh period: a page
  load closes the socket and the next page opens another, perhaps on another gateway);
- every refresh period (PARLEY_LIVE_VISITORS_REFRESH_SECONDS), every visit held here,
  so a gateway that starts learns them all within one period (sooner: it asks with
  `roster_wanted` as it starts), and the visits of a gateway that died go after three
  periods without word;
- an operator's invitation (`invite`), which the gateway holding the visitor's sockets
  shows in the widget and which every gateway keeps on the visit until the visitor
  answers (the answer's conversation is assigned to the operator who invited) or it
  lapses after INVITATION_SECONDS.
Nothing is written anywhere else: the list is in memory, bounded by MAX_KNOWN, and a
visit is gone when the visitor leaves. Pages, params and invitations are visitors' data:
a signal's body travels sealed (AES-GCM, parley/cipher.py) under a key every gateway
derives from PARLEY_INTERNAL_SECRET, so nothing readable of a visitor is on the bus
(tests/privacy reads every topic), for the minute the topic keeps it. Operators' apps that show the list ask for it
(`watch_visitors` on their socket) and get the changes of their project at most once a
FLUSH_SECONDS, one frame for all of them."""
from __future__ import annotations

import asyncio
import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from prometheus_client import Gauge

from parley import cipher, internal_auth
from parley.config import positive_seconds
from parley.loops import every

from gateway.live import signal_producer, site_visits
from gateway.live.operator_sockets import SOCKETS as OPERATOR_SOCKETS
from gateway.live.send_queue import serialize
from gateway.live.visitor_sockets import VISITOR_SOCKETS, VisitorSocket

TOPIC = "visitors.signals"
REFRESH_VAR = "PARLEY_LIVE_VISITORS_REFRESH_SECONDS"
FLUSH_SECONDS = 1.0
BATCH = 200                 # visits per signal: ~100 KB, well under the broker's message limit
MAX_KNOWN = 100_000         # live visitors a gateway keeps, all gateways' together
INVITATION_SECONDS = 30 * 60
MAX_PARAMS = 20

LIVE = Gauge("parley_live_visitors", "Live visitors this gateway knows of: held here, and on every gateway", ["scope"])


def refresh_seconds() -> float:
    return positive_seconds(REFRESH_VAR)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Here:
    """A visitor with sockets on this gateway, and what their widget said."""
    project_id: str
    connected_at: int
    sockets: int = 0
    page: dict | None = None
    params: dict = field(default_factory=dict)
    conversation_id: str | None = None
    chatting: bool = False
    invitation: dict | None = None
    leaving_at: float | None = None   # monotonic: no socket since; gone at this time


@dataclass(slots=True)
class Known:
    visit: dict
    gateway: str
    refreshed: float   # monotonic


@dataclass
class LiveVisitors:
    gateway: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    here: dict[str, Here] = field(default_factory=dict)
    known: dict[str, Known] = field(default_factory=dict)
    by_project: dict[str, set[str]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)       # held here, to tell the others
    leaving: set[str] = field(default_factory=set)       # held here with no socket now
    left: set[str] = field(default_factory=set)          # were held here, to tell the others
    to_push: dict[str, dict[str, dict | None]] = field(default_factory=dict)   # project -> visitor -> visit or None
    refreshed_at: float = 0.0
    asked_roster: int = 0

    # ---- what every gateway knows

    def put(self, visit: dict, gateway: str, now: float) -> None:
        vid, project_id = visit["visitor_id"], visit["project_id"]
        known = self.known.get(vid)
        if known is None and len(self.known) >= MAX_KNOWN:
            return
        if known is None or known.visit != visit:
            self.to_push.setdefault(project_id, {})[vid] = visit
        if known is not None and known.visit["project_id"] != project_id:
            self._unindex(vid, known.visit["project_id"])
        self.known[vid] = Known(visit, gateway, now)
        self.by_project.setdefault(project_id, set()).add(vid)

    def drop(self, visitor_id: str, gateway: str | None = None) -> None:
        """Gone; only if `gateway` (when given) is the last that told of them: another
        gateway may hold the visitor's next page already."""
        known = self.known.get(visitor_id)
        if known is None or (gateway is not None and known.gateway != gateway):
            return
        del self.known[visitor_id]
        self._unindex(visitor_id, known.visit["project_id"])
        self.to_push.setdefault(known.visit["project_id"], {})[visitor_id] = None

    def _unindex(self, visitor_id: str, project_id: str) -> None:
        ids = self.by_project.get(project_id)
        if ids is not None:
            ids.discard(visitor_id)
            if not ids:
                del self.by_project[project_id]

    def of_project(self, project_id: str) -> list[dict]:
        return [self.known[v].visit for v in self.by_project.get(project_id, ())]

    def invitation(self, visitor_id: str) -> dict | None:
        """The visitor's invitation standing now, from the gateway that holds them or any other."""
        here = self.here.get(visitor_id)
        found = here.invitation if here is not None else None
        if found is None and (known := self.known.get(visitor_id)) is not None:
            found = known.visit.get("invitation")
        return found if found is not None and found["expires_at"] > _now_ms() else None

    # ---- held here

    def visit_of(self, visitor_id: str) -> dict:
        h = self.here[visitor_id]
        return site_visits.visit(visitor_id, h.project_id, h.page, params=h.params, conversation_id=h.conversation_id,
                                 chatting=h.chatting, invitation=h.invitation, connected_at=h.connected_at)

    def touch(self, visitor_id: str) -> None:
        self.changed.add(visitor_id)


LIVE_VISITORS = web.AppKey("live_visitors", LiveVisitors)


def setup(app: web.Application) -> None:
    app[LIVE_VISITORS] = LiveVisitors()


def table(app: web.Application) -> LiveVisitors:
    return app[LIVE_VISITORS]


# ---- the visitor sockets' side (visitor_socket.py)

def arrived(app: web.Application, socket: VisitorSocket, chatting: bool) -> None:
    live = table(app)
    here = live.here.get(socket.visitor_id)
    if here is None:
        known = live.known.get(socket.visitor_id)   # the previous page may have been on another gateway
        here = live.here[socket.visitor_id] = Here(socket.project_id, _now_ms())
        if known is not None and known.visit["project_id"] == socket.project_id:
            here.invitation = known.visit.get("invitation")
            here.params = dict(known.visit.get("params") or {})
    here.sockets += 1
    here.leaving_at = None
    live.leaving.discard(socket.visitor_id)
    here.conversation_id, here.chatting = socket.conversation_id, chatting
    live.touch(socket.visitor_id)


def departed(app: web.Application, socket: VisitorSocket) -> None:
    here = table(app).here.get(socket.visitor_id)
    if here is None:
        return
    here.sockets -= 1
    if here.sockets <= 0:
        here.leaving_at = time.monotonic() + refresh_seconds() / 2
        table(app).leaving.add(socket.visitor_id)


def paged(app: web.Application, socket: VisitorSocket, data: dict[str, Any]) -> None:
    here = table(app).here.get(socket.visitor_id)
    if here is not None:
        here.page = site_visits.page_view(data, _now_ms())
        table(app).touch(socket.visitor_id)


def params_set(app: web.Application, socket: VisitorSocket, params: dict[str, Any]) -> None:
    """Params the page set (already checked by the socket or the conversation service)."""
    here = table(app).here.get(socket.visitor_id)
    if here is not None:
        merged = {**here.params, **{k: str(v) for k, v in params.items()}}
        here.params = dict(list(merged.items())[:MAX_PARAMS])
        table(app).touch(socket.visitor_id)


def in_conversation(app: web.Application, visitor_id: str, conversation_id: str | None, chatting: bool) -> None:
    here = table(app).here.get(visitor_id)
    if here is not None and (here.conversation_id, here.chatting) != (conversation_id, chatting):
        here.conversation_id, here.chatting = conversation_id, chatting
        table(app).touch(visitor_id)


def answered_invitation(app: web.Application, visitor_id: str) -> None:
    """The visitor wrote: their conversation started with the invitation in it."""
    here = table(app).here.get(visitor_id)
    if here is not None and here.invitation is not None:
        here.invitation = None
        table(app).touch(visitor_id)


def invitation_frame(invitation: dict) -> dict:
    return {"type": "invitation", "id": invitation["id"], "text": invitation["text"], "at": invitation["at"],
            "operator": {"name": invitation["operator_name"], "avatar_url": invitation.get("operator_avatar_url")}}


# ---- invitations (site_visitor_routes.py sends them)

def invited(app: web.Application, visitor_id: str, invitation: dict) -> None:
    """An invitation, from this gateway's operator or another's: kept on the visit, and
    shown by the widgets this gateway holds."""
    live = table(app)
    here = live.here.get(visitor_id)
    if here is not None:
        here.invitation = invitation
        live.touch(visitor_id)
        frame = invitation_frame(invitation)
        for socket in list(app[VISITOR_SOCKETS].by_visitor.get(visitor_id, ())):
            socket.out.push(frame)
    known = live.known.get(visitor_id)
    if known is not None:
        live.put({**known.visit, "invitation": invitation}, known.gateway, known.refreshed)


async def send_invitation(app: web.Application, visitor_id: str, project_id: str, invitation: dict) -> bool:
    invited(app, visitor_id, invitation)
    return await _publish(app, visitor_id, {
        "type": "invite", "gateway": table(app).gateway, "visitor_id": visitor_id, "project_id": project_id,
        "invitation": invitation})


# ---- the signals

@functools.cache
def _signal_key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"parley visitors.signals").derive(
        internal_auth.secret())


async def _publish(app: web.Application, key: str, message: dict) -> bool:
    """A signal with its body sealed: only `type` and `gateway` are readable on the bus."""
    head = {"type": message["type"], "gateway": message["gateway"]}
    body = {k: v for k, v in message.items() if k not in head}
    return await signal_producer.publish(app, TOPIC, key, {**head, "sealed": cipher.seal(
        _signal_key(), orjson.dumps(body), message["type"].encode())})


def decoder(app: web.Application):
    """The topic's decoder for this gateway: a signal it sent itself (applied when sent,
    dropped by on_signal) is handed on unopened - a refresh's batches are the largest
    signals, and there is no sense in opening and parsing them again."""
    def decode(raw: bytes) -> dict | None:
        try:
            message = orjson.loads(raw)
            if not isinstance(message, dict) or not isinstance(message.get("gateway"), str) \
                    or message.get("type") not in ("visitors", "invite", "roster_wanted"):
                return None
            head = {"type": message["type"], "gateway": message["gateway"]}
            if head["gateway"] == table(app).gateway:
                return head
            body = orjson.loads(cipher.unseal(_signal_key(), message["sealed"], message["type"].encode()))
        except (orjson.JSONDecodeError, cipher.Unreadable, KeyError):
            return None   # not ours, or sealed under another installation's secret
        return {**body, **head} if isinstance(body, dict) else None
    return decode


async def on_signal(app: web.Application, message: dict) -> None:
    """A signal from any gateway; this gateway's own were applied when they were sent."""
    live = table(app)
    if message["gateway"] == live.gateway:
        return
    kind, now = message["type"], time.monotonic()
    if kind == "roster_wanted":   # a gateway started: everything held here, at the next flush
        live.changed.update(live.here)
    elif kind == "invite":
        if isinstance(message.get("visitor_id"), str) and isinstance(message.get("invitation"), dict):
            invited(app, message["visitor_id"], message["invitation"])
    else:
        for visit in message.get("seen") or ():
            if isinstance(visit, dict) and isinstance(visit.get("visitor_id"), str) \
                    and isinstance(visit.get("project_id"), str):
                live.put(visit, message["gateway"], now)
        for visitor_id in message.get("left") or ():
            live.drop(visitor_id, message["gateway"])
            if visitor_id in live.here:   # still here (another tab): say so again
                live.touch(visitor_id)


async def flush(app: web.Application) -> None:
    """One round: who left, what changed (everything, once a refresh period), told to
    the other gateways and to the operators watching; visits of silent gateways go."""
    live, now = table(app), time.monotonic()
    for visitor_id in list(live.leaving):
        here = live.here.get(visitor_id)
        if here is None or here.leaving_at is None:
            live.leaving.discard(visitor_id)
        elif here.leaving_at <= now:
            del live.here[visitor_id]
            live.leaving.discard(visitor_id)
            live.changed.discard(visitor_id)
            live.left.add(visitor_id)
    period = refresh_seconds()
    if now - live.refreshed_at >= period:
        live.refreshed_at = now
        live.changed.update(live.here)
        for here in live.here.values():   # a lapsed invitation goes with the refresh (the lookup checks it anyway)
            if here.invitation is not None and here.invitation["expires_at"] <= _now_ms():
                here.invitation = None
        for visitor_id, known in list(live.known.items()):
            if known.gateway != live.gateway and now - known.refreshed > 3 * period:
                live.drop(visitor_id)
    if live.asked_roster < 2:   # at start, and once more in case the first went before the subscription
        live.asked_roster += 1
        await _publish(app, live.gateway, {"type": "roster_wanted", "gateway": live.gateway})
    changed, left = [v for v in live.changed if v in live.here], sorted(live.left)
    live.changed.clear()
    live.left.clear()
    for visitor_id in left:
        live.drop(visitor_id, live.gateway)
    # A batch at a time, yielding between them: a refresh of 10,000 visits is 50 small
    # turns of the loop, not one long one in front of every message on this gateway.
    for start in range(0, max(len(changed), 1 if left else 0), BATCH):
        visits = [live.visit_of(v) for v in changed[start:start + BATCH] if v in live.here]
        for visit in visits:
            live.put(visit, live.gateway, now)
        await _publish(app, live.gateway, {"type": "visitors", "gateway": live.gateway, "seen": visits,
                                           "left": left if start == 0 else []})
        await asyncio.sleep(0)
    _push(app)
    LIVE.labels("here").set(len(live.here))
    LIVE.labels("known").set(len(live.known))


def _push(app: web.Application) -> None:
    """The changes of each project, one frame, to its operators watching the list."""
    live = table(app)
    if not live.to_push:
        return
    pending, live.to_push = live.to_push, {}
    watching: dict[str, list] = {}
    for socket in app[OPERATOR_SOCKETS].all():
        if socket.watching_visitors and socket.operator["project"] in pending:
            watching.setdefault(socket.operator["project"], []).append(socket)
    for project_id, sockets in watching.items():
        changes = pending[project_id]
        frame = serialize({"type": "visitors", "seen": [v for v in changes.values() if v is not None],
                           "left": [k for k, v in changes.items() if v is None]})
        for socket in sockets:
            socket.out.push(frame)


# The supervisor (parley/service.py) restarts the loop if a round raises: the next one goes on.
flush_loop = every(FLUSH_SECONDS, flush)
