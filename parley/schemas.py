"""The contract: the envelope schema, one JSON Schema per event type and version
(`events/<type>/v<version>.schema.json`), and the topic list (asyncapi.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from parley.envelope import Event, stream_category


class SchemaViolation(ValueError):
    """An event does not match its schema: a bug in the producer, never sent."""


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str
    stream_categories: tuple[str, ...]
    partitions: int
    replicas: int
    config: dict[str, str]


class Catalog:
    def __init__(self, *dirs: Path):
        if not dirs:
            raise ValueError("Catalog needs at least the schemas folder")
        self.dirs = dirs
        self.envelope, self._envelope_fast = self._validators(
            orjson.loads((dirs[0] / "envelope.schema.json").read_bytes()))
        self.topics = load_topics(dirs[0] / "asyncapi.yaml")
        self._data_validators: dict[tuple[str, int], tuple[Draft202012Validator, Any]] = {}

    @staticmethod
    def _validators(schema: dict[str, Any]) -> tuple[Draft202012Validator, Any]:
        """The schema compiled twice: jsonschema-rs answers "valid?" in microseconds on
        every event (pure-Python validation was a sixth of the conversation service's CPU
        per message, issue 21); jsonschema says what is wrong when it is not - the same
        messages as ever, and the final word (a format only jsonschema-rs checks, such as
        date-time, refuses nothing that was accepted before)."""
        Draft202012Validator.check_schema(schema)
        return (Draft202012Validator(schema, format_checker=FormatChecker()),
                jsonschema_rs.Draft202012Validator(schema, validate_formats=True))

    def _data_validator(self, type: str, version: int) -> tuple[Draft202012Validator, Any]:
        key = (type, version)
        if key not in self._data_validators:
            for d in self.dirs:
                path = d / "events" / type / f"v{version}.schema.json"
                if path.exists():
                    self._data_validators[key] = self._validators(orjson.loads(path.read_bytes()))
                    break
            else:
                raise SchemaViolation(
                    f"no schema for event type {type!r} version {version}: "
                    f"add events/{type}/v{version}.schema.json under {self.dirs[0]}")
        return self._data_validators[key]

    def validate(self, event: Event | dict[str, Any]) -> None:
        doc = event.to_dict() if isinstance(event, Event) else event
        if self._envelope_fast.is_valid(doc) and self._data_validator(doc["type"], doc["version"])[1].is_valid(
                doc["data"]) and _iso_datetime(doc["occurred_at"]):
            return
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '<envelope>'}: {e.message}"
                    for e in self.envelope.iter_errors(doc)]
        if not problems:
            if not _iso_datetime(doc["occurred_at"]):
                problems.append(f"occurred_at: {doc['occurred_at']!r} is not an ISO 8601 date-time")
            problems += [f"data/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                         for e in self._data_validator(doc["type"], doc["version"])[0].iter_errors(doc["data"])]
        if problems:
            raise SchemaViolation(f"event {doc.get('type')!r} breaks its schema: " + "; ".join(problems))

    def topic_for(self, stream_id: str) -> str:
        category = stream_category(stream_id)
        for topic in self.topics:
            if category in topic.stream_categories:
                return topic.name
        raise SchemaViolation(
            f"stream {stream_id!r}: no topic in asyncapi.yaml declares stream category {category!r}")


def _iso_datetime(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
        return True
    except (TypeError, ValueError):
        return False


def load_topics(asyncapi_path: Path) -> list[Topic]:
    doc = yaml.safe_load(asyncapi_path.read_text())
    topics = []
    for name, channel in doc["channels"].items():
        binding = channel["bindings"]["kafka"]
        config = {k: ",".join(v) if isinstance(v, list) else str(v)
                  for k, v in binding.get("topicConfiguration", {}).items()}
        topics.append(Topic(name, channel["x-parley-owner"], tuple(channel["x-parley-stream-categories"]),
                            int(binding["partitions"]), int(binding.get("replicas", 1)), config))
    return topics


@cache
def default_catalog(schemas_dir: Path) -> Catalog:
    return Catalog(schemas_dir)
