"""The one event envelope. Every event on every topic is this object, serialized
with orjson; `schemas/envelope.schema.json` is its contract."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import orjson

from parley import logs


@dataclass(frozen=True)
class Event:
    type: str                    # "family.past_verb", e.g. "chat.visitor_message_posted"
    stream_id: str               # "category-<id>"; the Kafka key
    data: dict[str, Any]
    version: int = 1             # schema version of `data`
    stream_version: int = 0      # set by the event store on append
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    correlation_id: str | None = None
    causation_id: str | None = None
    project_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "occurred_at": self.occurred_at,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "project_id": self.project_id,
            "data": self.data,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Event":
        return cls(
            id=d["id"], type=d["type"], version=d["version"], stream_id=d["stream_id"],
            stream_version=d["stream_version"], occurred_at=d["occurred_at"],
            correlation_id=d.get("correlation_id"), causation_id=d.get("causation_id"),
            project_id=d.get("project_id"), data=d["data"],
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Event":
        return cls.from_dict(orjson.loads(raw))

    def with_version(self, stream_version: int) -> "Event":
        return replace(self, stream_version=stream_version)


def new_event(type: str, stream_id: str, data: dict[str, Any], *, version: int = 1,
              project_id: str | None = None, caused_by: "Event | None" = None) -> Event:
    """An event in the current correlation context: caused by `caused_by` if given
    (inheriting its correlation id), else by the request being handled."""
    correlation = caused_by.correlation_id if caused_by else logs.correlation_id.get()
    return Event(
        type=type, stream_id=stream_id, data=data, version=version,
        correlation_id=correlation or logs.new_correlation_id(),
        causation_id=caused_by.id if caused_by else None,
        project_id=project_id if project_id is not None else (caused_by.project_id if caused_by else None),
    )


def stream_category(stream_id: str) -> str:
    """'conversation-9f1c...' -> 'conversation'."""
    return stream_id.split("-", 1)[0]
