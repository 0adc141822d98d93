"""operator-registry's pure rules, without I/O: strict JSON types, control characters,
the current-password rule, login throttling keys and idempotency scopes."""
import uuid

import pytest
from argon2 import Type

from operator_registry import accounts, commands, domain
from operator_registry.domain import Actor, Operator

PROJECT = "demo"
OWNER = Actor(str(uuid.uuid4()), PROJECT, is_admin=True, is_owner=True)
ADMIN = Actor(str(uuid.uuid4()), PROJECT, is_admin=True, is_owner=False)
PLAIN = Actor(str(uuid.uuid4()), PROJECT, is_admin=False, is_owner=False)


def operator(actor: Actor | None = None, **kw) -> Operator:
    fields = {"project_id": PROJECT, "name": "Ann", "email": "ann@example.com"}
    if actor is not None:
        fields.update(is_admin=actor.is_admin, is_owner=actor.is_owner)
    return Operator(id=actor.operator_id if actor else str(uuid.uuid4()), **(fields | kw))


def refusal(call) -> tuple[str, str]:
    with pytest.raises(domain.DomainError) as info:
        call()
    return type(info.value).__name__, info.value.code


# ---- JSON booleans only -----------------------------------------------------------

@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, [], {}, "yes"])
def test_is_admin_must_be_a_json_boolean_when_adding(value):
    assert refusal(lambda: domain.decide_add_operator(OWNER, str(uuid.uuid4()), "Ann", "a@example.com", value)) == \
        ("Invalid", "is_admin_invalid")


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_is_admin_must_be_a_json_boolean_when_changing(value):
    assert refusal(lambda: domain.decide_update_operator(OWNER, operator(), {"is_admin": value}, False)) == \
        ("Invalid", "is_admin_invalid")


def test_real_booleans_still_work_and_a_plain_operator_is_refused_before_the_type_check():
    [added] = domain.decide_add_operator(OWNER, str(uuid.uuid4()), "Ann", "a@example.com", False)
    assert added.data["is_admin"] is False
    [promoted] = domain.decide_update_operator(OWNER, operator(), {"is_admin": True}, False)
    assert promoted.type == "operator.role_changed" and promoted.data == {"is_admin": True}
    assert refusal(lambda: domain.decide_add_operator(PLAIN, str(uuid.uuid4()), "A", "a@example.com", "x")) == \
        ("Forbidden", "forbidden")
    assert refusal(lambda: domain.decide_add_operator(ADMIN, str(uuid.uuid4()), "A", "a@example.com", True)) == \
        ("Forbidden", "forbidden")


# ---- wrong types and control characters ---------------------------------------------

@pytest.mark.parametrize("name, code", [(5, "name_required"), ([], "name_required"), ({}, "name_required"),
                                        (None, "name_required"), ("\x01\x02\x7f", "name_required"),
                                        ("x" * 81, "name_too_long")])
def test_a_name_of_the_wrong_type_or_only_control_characters_is_refused(name, code):
    assert refusal(lambda: domain.clean_name(name)) == ("Invalid", code)


def test_control_characters_are_stripped_from_one_line_text():
    assert domain.clean_name("  Ann\x00\x07 \t\r\nLee\x1b[31m\u0085 ") == "Ann Lee[31m"
    title, text = domain.clean_template("Hi\x08 there\n", "Line 1\r\nLine 2\rLine\x00 3\x0b\tend")
    assert (title, text) == ("Hi there", "Line 1\nLine 2\nLine 3\tend")


@pytest.mark.parametrize("email", [5, [], None, "a\x01b@example.com", "ann@exa\x7fmple.com", "a b@example.com",
                                   "no-at-sign", "x" * 250 + "@example.com"])
def test_a_bad_email_is_refused(email):
    assert refusal(lambda: domain.clean_email(email)) == ("Invalid", "email_invalid")


@pytest.mark.parametrize("password, code", [(5, "password_invalid"), ([], "password_invalid"),
                                            ("short", "password_too_short"), ("x" * 201, "password_too_long")])
def test_a_bad_password_is_refused(password, code):
    assert refusal(lambda: domain.check_password(password)) == ("Invalid", code)


@pytest.mark.parametrize("sites, code", [
    ({}, "sites_invalid"), ("https://a.example", "sites_invalid"), (None, "sites_invalid"),
    ([5], "site_invalid"), (["http://[::1"], "site_invalid"), (["https://a.example:99999"], "site_invalid"),
    (["https://a.exa\x01mple"], "site_invalid"), (["https://user:pw@a.example"], "site_invalid"),
    (["https://a.example/path"], "site_invalid"), (["ftp://a.example"], "site_invalid"),
    (["https://" + "a" * 400 + ".example"], "site_invalid"),
])
def test_bad_sites_are_refused_with_a_code(sites, code):
    assert refusal(lambda: domain.clean_sites(sites)) == ("Invalid", code)


def test_sites_are_normalised_origins():
    assert domain.clean_sites(["https://Shop.example/", "https://shop.example", "http://[::1]:8080"]) == \
        ["https://shop.example", "http://[::1]:8080"]


@pytest.mark.parametrize("avatar_id", ["0" * 31, "0" * 33, "A" * 32, "g" * 32, "0" * 32 + "\n", 5, None,
                                       "../" + "0" * 29])
def test_an_avatar_id_is_32_lowercase_hex(avatar_id):
    assert refusal(lambda: domain.clean_avatar_id(avatar_id)) == ("Invalid", "avatar_id_invalid")
    assert domain.clean_avatar_id("0123456789abcdef" * 2) == "0123456789abcdef" * 2


@pytest.mark.parametrize("project_id, valid", [("demo", True), ("acme-1.shop_2", True), ("a" * 100, True),
                                               ("a" * 101, False), ("", False), ("\x00", False), ("demo\n", False),
                                               ("-demo", False), ("de mo", False), (5, False), (None, False)])
def test_project_ids(project_id, valid):
    assert domain.valid_project_id(project_id) is valid


@pytest.mark.parametrize("value", ["6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a\n", "urn:uuid:6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a",
                                   "{6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a}", "6f1c3a522b7e4c1e9a551f0e2d3c4b5a", "x", "",
                                   5, None])
def test_ids_in_other_spellings_are_no_ids(value):
    assert domain.uuid_or_none(value) is None
    assert domain.uuid_or_none("6F1C3A52-2B7E-4C1E-9A55-1F0E2D3C4B5A") == "6f1c3a52-2b7e-4c1e-9a55-1f0e2d3c4b5a"


@pytest.mark.parametrize("texts", ["x", [], 5, None])
def test_widget_texts_must_be_an_object(texts):
    project = domain.Project(id=PROJECT)
    assert refusal(lambda: domain.decide_widget_settings(project, OWNER, "en", texts)) == ("Invalid", "texts_invalid")
    assert refusal(lambda: domain.decide_widget_settings(project, OWNER, [], {})) == ("Invalid", "language_invalid")
    assert refusal(lambda: domain.decide_widget_settings(project, OWNER, {}, {})) == ("Invalid", "language_invalid")


# ---- a password change needs the current password ----------------------------------------

@pytest.mark.parametrize("me", [PLAIN, ADMIN, OWNER])
def test_changing_your_own_password_needs_the_current_one(me):
    myself = operator(me)
    assert domain.needs_current_password(me, myself, password_given=True)
    assert refusal(lambda: domain.decide_update_operator(me, myself, {}, True)) == \
        ("Invalid", "current_password_required")
    [changed] = domain.decide_update_operator(me, myself, {}, True, current_password_verified=True)
    assert changed.type == "operator.password_changed"


def test_a_manager_resetting_someone_elses_password_does_not_need_it():
    target = operator()
    assert not domain.needs_current_password(OWNER, target, password_given=True)
    [reset] = domain.decide_update_operator(ADMIN, target, {}, True)
    assert reset.type == "operator.password_changed"
    # the permission rules are as before: nobody below admin resets anyone, admins not admins
    assert refusal(lambda: domain.decide_update_operator(PLAIN, target, {}, True)) == ("Forbidden", "forbidden")
    another_admin = operator(Actor(str(uuid.uuid4()), PROJECT, is_admin=True, is_owner=False))
    assert refusal(lambda: domain.decide_update_operator(ADMIN, another_admin, {}, True)) == ("Forbidden", "forbidden")


def test_a_name_change_alone_needs_no_password():
    me = PLAIN
    [renamed] = domain.decide_update_operator(me, operator(me), {"name": "New Name"}, False)
    assert renamed.data == {"name": "New Name"}


# ---- throttling keys ----------------------------------------------------------------

def test_throttling_counts_per_email_and_address_and_per_address_never_per_email_alone():
    a = accounts.throttle_keys("demo", "Ann@Example.com ", "203.0.113.5")
    b = accounts.throttle_keys("demo", "ann@example.com", "198.51.100.7")
    assert a[0] == accounts.throttle_keys("demo", "ann@example.com", "203.0.113.5")[0]  # same person, same place
    assert a[0] != b[0] and a[1] != b[1]                                                 # another address: other counts
    assert accounts.throttle_keys("other", "ann@example.com", "203.0.113.5")[0] != a[0]  # another project
    assert a[1] == "address:203.0.113.5"
    assert len(accounts.throttle_keys("demo", "x" * 60000, "1.2.3.4")[0]) < 100          # bounded keys


def test_limits():
    per_pair, per_address = accounts.FAILURES_PER_EMAIL_AND_ADDRESS, accounts.FAILURES_PER_ADDRESS
    assert (per_pair, per_address) == (5, 30)
    assert not accounts.over_limit(per_pair - 1, per_address - 1)
    assert accounts.over_limit(per_pair, 0) and accounts.over_limit(0, per_address)


@pytest.mark.parametrize("header, address", [(None, "unknown"), ("", "unknown"), ("  ", "unknown"),
                                             ("203.0.113.5", "203.0.113.5"), ("2001:db8::1", "2001:db8::1"),
                                             ("1.2.3.4\r\nX: y", "1.2.3.4X:y"), ("9" * 500, "9" * 100)])
def test_the_client_address_comes_from_the_signed_header_only(header, address):
    assert accounts.client_address(header) == address


# ---- idempotency keys ---------------------------------------------------------------

def test_idempotency_keys_are_scoped_to_project_operator_method_and_path():
    key = "retry-key-123"
    mine = commands.idempotent_command_id(PLAIN, "POST", "/api/templates", key)
    assert mine == commands.idempotent_command_id(PLAIN, "POST", "/api/templates", key)   # a retry replays
    others = [commands.idempotent_command_id(ADMIN, "POST", "/api/templates", key),
              commands.idempotent_command_id(Actor(PLAIN.operator_id, "acme", False, False), "POST", "/api/templates", key),
              commands.idempotent_command_id(PLAIN, "PUT", "/api/templates", key),
              commands.idempotent_command_id(PLAIN, "POST", "/api/operators", key),
              commands.idempotent_command_id(None, "POST", "/api/templates", key)]
    assert mine not in others and len(set(others)) == len(others)
    assert PROJECT in mine and PLAIN.operator_id in mine
    assert commands.idempotent_command_id(PLAIN, "POST", "/api/templates", "short") is None
    assert commands.idempotent_command_id(PLAIN, "POST", "/api/templates", "x" * 101) is None


def test_passwords_are_hashed_with_owasps_argon2id_setting():
    """Issue 19: a login cost ~1 s on a loaded 2-CPU machine with argon2-cffi's default
    (64 MiB, 3 passes, 4 lanes: 127 ms a check when idle). OWASP's first setting for
    argon2id (19 MiB, 2 passes, 1 lane) checks in ~20 ms and is what production hashes with."""
    h = accounts.PASSWORD_HASHER
    assert (h.type, h.memory_cost, h.time_cost, h.parallelism) == (Type.ID, 19 * 1024, 2, 1)
    assert accounts.PASSWORD_HASHER.hash("x").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize("text", [
    "Hi {{visitor.name}}", "{{ operator.name }} of {{project.name}}", "{{params.office}}", "{{params.Офис 2}}",
    "Braces that are not a variable: {x}, {{ {a} }}, }} {{"])
def test_a_template_may_hold_the_known_variables(text):
    assert domain.clean_template("t", text) == ("t", text)


@pytest.mark.parametrize("text", ["{{visitor.phone}}", "{{}}", "{{ params. }}", "{{name}}", "{{operator.email}}"])
def test_a_template_with_a_variable_parley_does_not_know_is_refused_with_its_name(text):
    with pytest.raises(domain.Invalid) as refused:
        domain.clean_template("t", text)
    assert refused.value.code == "template_variable_unknown"
    assert "is not a variable" in str(refused.value) and "{{visitor.name}}" in str(refused.value)
