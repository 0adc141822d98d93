"""domain.check_new_project, pure: each field's refusal carries a code naming the field
(what the setup form shows beside it and the CLI prints), with the usual rules' message."""
from __future__ import annotations

import pytest

from operator_registry import domain

GOOD = dict(project_id="acme", name="ACME", owner_name="Alice", owner_email="alice@acme.example",
            password="long enough password")


@pytest.mark.parametrize("field, value, code", [
    ("project_id", "", "project_id_invalid"), ("project_id", "-starts-with-dash", "project_id_invalid"),
    ("project_id", "a/b", "project_id_invalid"), ("project_id", "x" * 101, "project_id_invalid"),
    ("project_id", None, "project_id_invalid"), ("project_id", "acme\n", "project_id_invalid"),
    ("name", "", "project_name_invalid"), ("name", "n" * 81, "project_name_invalid"), ("name", 7, "project_name_invalid"),
    ("owner_name", "\x00\x07", "owner_name_invalid"), ("owner_name", ["Alice"], "owner_name_invalid"),
    ("owner_email", "alice", "owner_email_invalid"), ("owner_email", "a@b.c\x00", "owner_email_invalid"),
    ("password", "123456789", "password_invalid"), ("password", "p" * 201, "password_invalid"),
    ("password", None, "password_invalid"),
])
def test_each_field_is_refused_with_its_own_code(field, value, code):
    with pytest.raises(domain.Invalid) as refused:
        domain.check_new_project(**{**GOOD, field: value})
    assert refused.value.code == code and refused.value.message


def test_the_messages_name_the_field_they_are_about():
    with pytest.raises(domain.Invalid) as refused:
        domain.check_new_project(**{**GOOD, "name": " "})
    assert refused.value.message == "Project name is required."


def test_good_fields_pass_and_ids_like_the_snippets_are_accepted():
    for project_id in ("acme", "ACME.shop_2", "a", "x" * 100):
        domain.check_new_project(**{**GOOD, "project_id": project_id})
