"""The registry's audit entries (operator_registry/audit_log.entries_for), without I/O:
which of its events the trail records, what they say, and that each is a valid
`audit.recorded` event holding ids and setting names - never an operator's new name
or email, and nothing for events that are no administrative act."""
from __future__ import annotations

import uuid

import pytest

from parley.config import REPO_ROOT
from parley.envelope import new_event
from parley.schemas import Catalog

from operator_registry import domain
from operator_registry.audit_log import entries_for
from operator_registry.domain import Actor

OWNER = Actor(str(uuid.uuid4()), "demo", True, True)


@pytest.fixture(scope="module")
def catalog():
    return Catalog(REPO_ROOT / "schemas")


def test_operator_acts_are_recorded_by_id_with_what_changed_not_its_value(catalog):
    target = domain.Operator(id=str(uuid.uuid4()), project_id="demo", name="Old", email="old@example.com")
    added = domain.decide_add_operator(OWNER, target.id, "Ann", "ann@example.com", True)
    changed = domain.decide_update_operator(OWNER, target, {"name": "Secret Name", "email": "new@example.com",
                                                            "is_admin": True}, password_given=True)
    entries = entries_for(added + changed, OWNER.operator_id)
    assert [(e.data["action"], e.data["target"], e.data["detail"]) for e in entries] == [
        ("operator.added", target.id, {"is_admin": True}),
        ("operator.changed", target.id, {"fields": ["email", "name"]}),
        ("operator.password_changed", target.id, {}),
        ("operator.role_changed", target.id, {"is_admin": True})]
    for e in entries:
        catalog.validate(e.with_version(1))
        assert e.data["by"] == OWNER.operator_id and e.project_id == "demo"
        assert e.stream_id.startswith("audit-") and "Secret" not in str(e.data) and "new@" not in str(e.data)
    assert len({e.stream_id for e in entries}) == 4            # a stream each: acts never conflict


def test_settings_are_recorded_and_sessions_are_not(catalog):
    project = domain.Project(id="demo", chat_enabled=True)
    events = (domain.decide_sites(project, OWNER, ["https://shop.example"])
              + domain.decide_disable_chat(project, OWNER)
              + domain.decide_widget_settings(project, OWNER, "ru", {"launcher_label": "Спросите нас"})
              + [new_event("operator.logged_in", f"operator-{OWNER.operator_id}", {"session_id": "s"},
                           project_id="demo")])
    entries = entries_for(events, OWNER.operator_id)
    assert [(e.data["action"], e.data["detail"]) for e in entries] == [
        ("settings.sites", {"sites": ["https://shop.example"]}),
        ("settings.chat", {"enabled": False}),
        ("settings.widget", {"language": "ru", "texts": ["launcher_label"]})]
    for e in entries:
        catalog.validate(e.with_version(1))
