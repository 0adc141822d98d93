"""Who sees which conversation event - the one place that decides it.

Visitors see messages (theirs and operators'), who joined, the closing, that an
operator has read their messages (not who) and their own rating; never
internal notes, assignments by name of the admin, params, contacts or lead requests.
Operators see everything of the conversations they may see: the unclaimed ones and
their own, and an admin every conversation of the project."""
from __future__ import annotations

from typing import Any

from parley.contract import id_of, operator_may_see


def _attachment(a: dict | None) -> dict | None:
    if not a:
        return None
    return {"url": f"/files/{a['file_id']}", "name": a["name"], "size": a["size"], "content_type": a["content_type"]}


def _operator(d: dict) -> dict:
    return {"name": d["operator_name"], "avatar_url": d.get("operator_avatar_url")}


def for_visitor(event: dict[str, Any]) -> dict[str, Any] | None:
    d, kind = event["data"], event["type"]
    base = {"type": "event", "seq": event["stream_version"], "at": event["occurred_at"]}
    if kind == "chat.visitor_message_posted":
        return {**base, "kind": "visitor_message", "id": d["message_id"], "text": d["text"],
                "attachment": _attachment(d.get("attachment"))}
    if kind == "chat.operator_replied":
        return {**base, "kind": "operator_message", "id": d["message_id"], "text": d["text"],
                "attachment": _attachment(d.get("attachment")), "operator": _operator(d)}
    if kind in ("assignment.taken", "assignment.assigned", "assignment.accepted"):
        return {**base, "kind": "operator_joined", "operator": _operator(d)}
    if kind == "status.changed" and d["status"] == "closed":
        return {**base, "kind": "closed"}
    if kind == "chat.read_by_operator":   # "Read" under the visitor's messages up to `read_seq`
        return {**base, "kind": "read", "read_seq": d["seq"]}
    if kind == "chat.rated":              # asked once: a reloaded widget does not ask again
        return {**base, "kind": "rated", "rating": d["rating"]}
    return None


def for_operator(event: dict[str, Any]) -> dict[str, Any]:
    data = dict(event["data"])
    if "attachment" in data:
        data["attachment"] = _attachment(data["attachment"])
    return {"type": "conversation_event", "conversation_id": id_of(event["stream_id"]),
            "seq": event["stream_version"], "event": event["type"], "at": event["occurred_at"], "data": data}


def may_see(project_id: str, assignee_id: str | None, operator: dict[str, Any]) -> bool:
    """contract.operator_may_see for an operator as the registry describes them."""
    return operator_may_see(project_id, assignee_id, project_id=operator["project"], operator_id=operator["id"],
                            is_admin=operator["is_admin"])
