"""Live pushes: every conversation event, as it reaches Kafka, to the visitor sockets of
that conversation and the operator sockets allowed to see it (audience.py decides).

Nothing here waits on a socket: every frame goes into the socket's bounded send queue
(send_queue.py), serialized once for all the operator sockets it goes to; a socket whose
queue is full is closed and resyncs when it comes back."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from parley.contract import id_of
from parley.envelope import Event

from gateway.live import audience, conversation_audience, site_visitors
from gateway.live.operator_sockets import SOCKETS as OPERATOR_SOCKETS
from gateway.live.send_queue import serialize
from gateway.live.visitor_sockets import VISITOR_SOCKETS

log = logging.getLogger(__name__)


def _assignee_after(event: Event, assignee: str | None) -> str | None:
    if event.type in ("assignment.taken", "assignment.assigned", "assignment.accepted"):
        return event.data["operator_id"]
    return assignee


async def on_conversation_event(app: web.Application, event: Event) -> None:
    envelope = event.to_dict()
    cid = id_of(event.stream_id)
    for socket in list(app[VISITOR_SOCKETS].by_conversation.get(cid, ())):
        socket.deliver(envelope)
        if event.type == "status.changed":   # closed, or going again: the live list says whether they chat
            site_visitors.in_conversation(app, socket.visitor_id, cid, event.data["status"] != "closed")
    summary = await conversation_audience.summary(app, cid, event.project_id, starts=event.type == "chat.conversation_started")
    if event.stream_version <= summary.pushed_seq:
        return  # a duplicate on the wire (a relay retry); visitors dedupe by seq themselves
    summary.pushed_seq = event.stream_version
    before, summary.assignee_id = summary.assignee_id, _assignee_after(event, summary.assignee_id)
    message = None
    for socket in app[OPERATOR_SOCKETS].all():
        # Whoever could see it before an assignment hears of it too: it leaves their "New".
        if socket.out.open and (audience.may_see(summary.project_id, summary.assignee_id, socket.operator)
                                or audience.may_see(summary.project_id, before, socket.operator)):
            message = message or serialize(audience.for_operator(envelope))
            socket.out.push(message)
    if event.type == "assignment.assigned":
        notification = serialize({"type": "notification", "kind": "assigned", "conversation_id": cid,
                                  "by": event.data["by_name"], "requires_acknowledgement": True})
        for socket in list(app[OPERATOR_SOCKETS].by_operator.get(event.data["operator_id"], ())):
            socket.out.push(notification)
    if event.type == "assignment.offered":   # auto-assignment: the offered operator's pop-up with Accept
        offer = serialize({"type": "notification", "kind": "offer", "conversation_id": cid,
                           "offer_id": event.data["offer_id"], "seconds": event.data["seconds"],
                           "at": event.occurred_at, "requires_acknowledgement": True})
        for socket in list(app[OPERATOR_SOCKETS].by_operator.get(event.data["operator_id"], ())):
            socket.out.push(offer)
    await asyncio.sleep(0)  # the sockets' send tasks write between two events of a batch


async def on_lead_event(app: web.Application, event: Event) -> None:
    """A CRM outcome (lead.created / lead.failed, from crm-bridge) to the operators who may
    see its conversation: the conversation view shows it at once. Redelivery repeats the
    same outcome, which the app shows once."""
    if event.type not in ("lead.created", "lead.failed"):
        return
    cid = event.data["conversation_id"]
    summary = await conversation_audience.summary(app, cid, event.project_id)
    message = serialize({"type": "lead_outcome", "conversation_id": cid, "event": event.type,
                         "at": event.occurred_at, "data": event.data})
    for socket in app[OPERATOR_SOCKETS].all():
        if audience.may_see(summary.project_id, summary.assignee_id, socket.operator):
            socket.out.push(message)


async def on_unanswered_alert(app: web.Application, event: Event) -> None:
    """The scheduler's `schedule.unanswered_alert`: nobody took a new conversation for N
    working minutes. Every admin of the project connected now is told (toast and desktop
    notification, docs/working-hours.md); other operators are not. The visitor is told
    too (`{"type": "unanswered"}`): the widget stops promising a quick answer and asks
    for an email or phone to answer at (docs/architecture.md, Presence and acknowledged
    auto-assignment)."""
    d = event.data
    project_id = d.get("project_id") or event.project_id
    cid = d["conversation_id"]
    frame = serialize({"type": "notification", "kind": "unanswered", "conversation_id": cid,
                       "minutes": d.get("minutes")})
    for socket in app[OPERATOR_SOCKETS].all():
        if socket.operator["project"] == project_id and socket.operator.get("is_admin") is True:
            socket.out.push(frame)  # a socket going away drops it; the alert is for whoever is there
    to_visitor = serialize({"type": "unanswered", "conversation_id": cid})
    for socket in list(app[VISITOR_SOCKETS].by_conversation.get(cid, ())):
        if socket.project_id == project_id:
            socket.out.push(to_visitor)
