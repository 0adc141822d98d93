"""Proactive triggers (issue 24, item 3): the rules of what may be stored (pure,
operator_registry/triggers.py), and PUT /api/project/triggers through the gateway -
admins only, clear refusals, nothing lost, the widget's configuration holds the enabled
ones, the audit log names them."""
from __future__ import annotations

import pytest

from operator_registry.triggers import TRIGGERS_MAX, TriggerRejected, clean_trigger, clean_triggers, for_widget
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

GOOD = {"name": " Pricing help ", "page": "/pricing*", "seconds": 20, "min_pages": 2,
        "param": {"name": "plan", "value": "pro"}, "text": {"en": "Questions about plans?", "ru": "Вопросы о тарифах?"}}


def test_a_trigger_is_cleaned_and_given_an_id():
    cleaned = clean_trigger(GOOD)
    assert cleaned["name"] == "Pricing help" and cleaned["enabled"] is True and len(cleaned["id"]) == 36
    assert clean_trigger({**GOOD, "id": cleaned["id"].upper()})["id"] == cleaned["id"]   # kept, canonical
    assert clean_trigger({"name": "Any page", "text": {"ru": "Здравствуйте!\r\nЧем помочь?\x00"}}) | {"id": "x"} == {
        "id": "x", "name": "Any page", "enabled": True, "page": "", "seconds": 0, "min_pages": 1, "param": None,
        "text": {"ru": "Здравствуйте!\nЧем помочь?"}}


@pytest.mark.parametrize("change, code", [
    ({"name": ""}, "trigger_name_invalid"), ({"name": 5}, "trigger_name_invalid"), ({"name": "x" * 81}, "trigger_name_invalid"),
    ({"id": "../x"}, "trigger_id_invalid"), ({"enabled": "yes"}, "trigger_enabled_invalid"),
    ({"page": "x" * 301}, "trigger_page_invalid"), ({"page": ["/a"]}, "trigger_page_invalid"),
    ({"seconds": -1}, "trigger_seconds_invalid"), ({"seconds": 3601}, "trigger_seconds_invalid"),
    ({"seconds": True}, "trigger_seconds_invalid"), ({"seconds": "20"}, "trigger_seconds_invalid"),
    ({"min_pages": 0}, "trigger_min_pages_invalid"), ({"param": "plan=pro"}, "trigger_param_invalid"),
    ({"param": {"name": "", "value": "x"}}, "trigger_param_invalid"), ({"text": {}}, "trigger_text_invalid"),
    ({"text": {"de": "Hallo"}}, "trigger_text_invalid"), ({"text": {"en": "  "}}, "trigger_text_invalid"),
    ({"text": {"en": "x" * 501}}, "trigger_text_invalid"), ({"text": "Hello"}, "trigger_text_invalid"),
])
def test_a_bad_field_is_refused_with_its_code(change, code):
    with pytest.raises(TriggerRejected) as refused:
        clean_trigger({**GOOD, **change})
    assert refused.value.code == code and str(refused.value)


def test_the_list_is_bounded_and_ids_are_unique():
    with pytest.raises(TriggerRejected, match="At most"):
        clean_triggers([GOOD] * (TRIGGERS_MAX + 1))
    one = clean_trigger(GOOD)
    with pytest.raises(TriggerRejected, match="same id"):
        clean_triggers([one, one])
    with pytest.raises(TriggerRejected):
        clean_triggers({"triggers": []})
    assert for_widget([one, {**one, "id": "b", "enabled": False}]) == [{k: v for k, v in one.items() if k != "enabled"}]


async def test_admins_set_triggers_and_the_widget_gets_the_enabled_ones(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    off = {**GOOD, "name": "Resting", "enabled": False}
    r = await stack.call("PUT", "/api/project/triggers", owner, json={"triggers": [GOOD, off]})
    assert r.status == 200, await r.text()
    saved = (await r.json())["triggers"]
    assert [t["name"] for t in saved] == ["Pricing help", "Resting"]
    config = await (await stack.call("GET", "/api/widget/config?project=demo")).json()
    assert [t["name"] for t in config["triggers"]] == ["Pricing help"] and "enabled" not in config["triggers"][0]

    # A refused list changes nothing, and says which field.
    r = await stack.call("PUT", "/api/project/triggers", owner, json={"triggers": [saved[0], {**GOOD, "seconds": 99999}]})
    assert r.status == 422 and (await r.json())["error"]["code"] == "trigger_seconds_invalid"
    r = await stack.call("PUT", "/api/project/triggers", owner, json={"triggers": "all"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "triggers_invalid"
    project = await (await stack.call("GET", "/api/project", owner)).json()
    assert project["triggers"] == saved

    # Operators may not change them, nor see them in the project.
    _, operator, _ = await stack.add_operator(owner, "Olga")
    r = await stack.call("PUT", "/api/project/triggers", operator, json={"triggers": []})
    assert r.status == 403
    assert "triggers" not in await (await stack.call("GET", "/api/project", operator)).json()

    # Edited by id (the id stays), and the audit log names the change.
    r = await stack.call("PUT", "/api/project/triggers", owner, json={"triggers": [{**saved[0], "seconds": 5}]})
    assert r.status == 200 and (await r.json())["triggers"][0]["id"] == saved[0]["id"]
    audit = await (await stack.call("GET", "/api/project/audit", owner)).json()
    assert any(e["action"] == "settings.triggers" for e in audit["entries"]), audit
