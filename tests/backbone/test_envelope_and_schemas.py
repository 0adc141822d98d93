import pytest

from parley import logs
from parley.config import REPO_ROOT
from parley.envelope import Event, new_event, stream_category
from parley.schemas import SchemaViolation, load_topics
from tests.support import item_added


def test_event_round_trips_through_the_wire_format():
    event = item_added("item-1", 7, note="hello").with_version(3)
    assert Event.from_bytes(event.to_bytes()) == event


def test_new_event_inherits_correlation_and_causation():
    token = logs.correlation_id.set("req-42")
    try:
        first = new_event("test.item_added", "item-1", {"n": 1}, project_id="p1")
    finally:
        logs.correlation_id.reset(token)
    second = new_event("test.item_added", "item-1", {"n": 2}, caused_by=first)
    assert first.correlation_id == "req-42"
    assert (second.correlation_id, second.causation_id, second.project_id) == ("req-42", first.id, "p1")


def test_stream_category_is_the_prefix():
    assert stream_category("conversation-3f2a-99") == "conversation"


def test_valid_event_passes(catalog):
    catalog.validate(item_added("item-1", 1).with_version(1))


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["data"].update(n="seven"), "data/n: 'seven' is not of type 'integer'"),
    (lambda d: d["data"].update(extra=1), "Additional properties are not allowed"),
    (lambda d: d.update(stream_version=0), "0 is less than the minimum of 1"),
    (lambda d: d.update(id="not-a-uuid"), "is not a 'uuid'"),
    (lambda d: d.update(type="NoFamily"), "does not match"),
    (lambda d: d.update(occurred_at="yesterday"), "not an ISO 8601 date-time"),
    (lambda d: d.pop("correlation_id"), "'correlation_id' is a required property"),
])
def test_invalid_events_are_refused_with_the_reason(catalog, change, reason):
    doc = item_added("item-1", 1).with_version(1).to_dict()
    change(doc)
    with pytest.raises(SchemaViolation, match=reason.replace("(", r"\(").replace(")", r"\)")):
        catalog.validate(doc)


def test_an_event_type_without_a_schema_is_refused(catalog):
    event = new_event("chat.unknown_happened", "conversation-1", {}).with_version(1)
    with pytest.raises(SchemaViolation, match="no schema for event type 'chat.unknown_happened'"):
        catalog.validate(event)


def test_asyncapi_declares_the_event_topics_and_routes_streams():
    topics = {t.name: t for t in load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml")}
    events = {"conversation.events", "operator.events", "project.events", "lead.events", "schedule.events",
              "audit.events"}
    assert set(topics) == events | {"typing.signals", "visitors.signals"}
    assert topics["conversation.events"].partitions >= 3
    assert all(topics[name].config["retention.ms"] == "-1" for name in events)   # projections rebuild from them


def test_signals_are_ephemeral_and_never_routed_to():
    """Typing and live visitors never enter the event store: no stream category routes to
    their topics, and they keep a minute at most (the visitors' pages, whose segments roll
    every minute, so that the minute holds)."""
    topics = {t.name: t for t in load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml")}
    for name in ("typing.signals", "visitors.signals"):
        assert topics[name].stream_categories == () and topics[name].owner == "gateway"
        assert 0 < int(topics[name].config["retention.ms"]) <= 60_000
    assert int(topics["visitors.signals"].config["segment.ms"]) <= 60_000


def test_streams_route_to_their_topic(catalog):
    assert catalog.topic_for("conversation-abc") == "conversation.events"
    assert catalog.topic_for("lead-abc") == "lead.events"
    assert catalog.topic_for("project-abc") == "project.events"
    with pytest.raises(SchemaViolation, match="no topic in asyncapi.yaml declares stream category 'nope'"):
        catalog.topic_for("nope-1")


def test_configuration_doc_matches_the_code():
    from parley.config import configuration_doc
    assert (REPO_ROOT / "docs" / "configuration.md").read_text() == configuration_doc()
