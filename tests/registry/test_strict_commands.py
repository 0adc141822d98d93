"""Strict types and scopes on the registry's commands: a password change needs the
current password (a manager's reset does not), JSON booleans only, idempotency keys
scoped to project and actor, and the avatar recorded only through an internal route."""
import uuid

from parley.service import POOL

from operator_registry import accounts
from tests.registry.direct import Registry, code
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

AVATAR_ID = "0123456789abcdef0123456789abcdef"


# ---- a password change needs the current password ------------------------------------

async def test_changing_your_own_password_needs_the_current_one(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    me, token, email = await registry.add_operator(owner, "Self Service")
    for body, status, error in [
        ({"password": "brand-new-pass-1"}, 422, "current_password_required"),
        ({"password": "brand-new-pass-1", "current_password": None}, 422, "current_password_required"),
        ({"password": "brand-new-pass-1", "current_password": 12345}, 422, "current_password_required"),
        ({"password": "brand-new-pass-1", "current_password": "not-my-password"}, 403, "current_password_wrong"),
    ]:
        r = await registry.call("PATCH", "api", "operators", me, token=token, json=body)
        assert (r.status, code(r)) == (status, error), (body, r.raw)
    assert (await registry.try_login(email, "brand-new-pass-1")).status == 401  # nothing changed
    r = await registry.call("PATCH", "api", "operators", me, token=token,
                            json={"password": "brand-new-pass-1", "current_password": "operator-pass-1"})
    assert r.status == 200, r.raw
    assert (await registry.try_login(email, "operator-pass-1")).status == 401
    await registry.login(email, "brand-new-pass-1")
    assert (await registry.call("GET", "api", "session", token=token)).status == 200  # this session stays


async def test_the_owner_changing_their_own_password_needs_it_too(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    owner_id = (await registry.me(owner))["id"]
    r = await registry.call("PATCH", "api", "operators", owner_id, token=owner, json={"password": "owner-new-pass-1"})
    assert (r.status, code(r)) == (422, "current_password_required")


async def test_a_manager_resets_someone_elses_password_without_knowing_it(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    admin_id, admin, _ = await registry.add_operator(owner, "Admin Ada", admin=True)
    operator_id, operator, email = await registry.add_operator(owner, "Forgetful Fred")
    r = await registry.call("PATCH", "api", "operators", operator_id, token=admin, json={"password": "reset-by-admin-1"})
    assert r.status == 200, r.raw
    await registry.login(email, "reset-by-admin-1")
    assert (await registry.call("GET", "api", "session", token=operator)).status == 401  # their sessions end
    # the permission rules are as before: an operator resets nobody else's, an admin no admin's
    _, other, _ = await registry.add_operator(owner, "Other Olga")
    r = await registry.call("PATCH", "api", "operators", operator_id, token=other, json={"password": "hijack-pass-1"})
    assert r.status == 403
    r = await registry.call("PATCH", "api", "operators", admin_id, token=(await registry.add_operator(
        owner, "Admin Bea", admin=True))[1], json={"password": "hijack-pass-1"})
    assert r.status == 403


async def test_guessing_the_current_password_is_throttled_like_a_login(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    me, token, email = await registry.add_operator(owner, "Stolen Session")
    for _ in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS):
        r = await registry.call("PATCH", "api", "operators", me, token=token, address="203.0.113.9",
                                json={"password": "attacker-pass-1", "current_password": "guess-guess"})
        assert code(r) == "current_password_wrong"
    r = await registry.call("PATCH", "api", "operators", me, token=token, address="203.0.113.9",
                            json={"password": "attacker-pass-1", "current_password": "operator-pass-1"})
    assert (r.status, code(r)) == (429, "too_many_attempts")
    await registry.login(email, "operator-pass-1", address="198.51.100.77")  # the operator is not locked out


# ---- JSON booleans only ---------------------------------------------------------------

async def test_is_admin_must_be_a_json_boolean(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    target, _, _ = await registry.add_operator(owner, "Plain Paul")
    for value in ["false", "true", 0, 1, None, [], {}]:
        email = f"flag.{uuid.uuid4().hex[:6]}@example.com"
        r = await registry.call("POST", "api", "operators", token=owner,
                                json={"name": "Flag", "email": email, "password": "flag-pass-123", "is_admin": value})
        assert (r.status, code(r)) == (422, "is_admin_invalid"), (value, r.raw)
        assert not await stack.registry.app[POOL].fetchval("select count(*) from operators where email = $1", email)
        r = await registry.call("PATCH", "api", "operators", target, token=owner, json={"is_admin": value})
        assert (r.status, code(r)) == (422, "is_admin_invalid"), value
    r = await registry.call("GET", "api", "operators", target, token=owner)
    assert r.body["is_admin"] is False


# ---- idempotency keys are scoped to project and actor -------------------------------------

async def test_one_operators_idempotency_key_never_replays_anothers_outcome(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, admin, _ = await registry.add_operator(owner, "Admin Ann", admin=True)
    await stack.create_project("acme", "boss@acme.example", "acme-owner-pass")
    acme_owner = await registry.login("boss@acme.example", "acme-owner-pass", project="acme")
    key = {"Idempotency-Key": "same-key-" + uuid.uuid4().hex}

    async def create(token, title):
        r = await registry.call("POST", "api", "templates", token=token, json={"title": title, "text": "Text."},
                                headers=key)
        assert r.status == 201, r.raw
        return r.body

    mine = await create(owner, "Owner's")
    assert await create(owner, "Owner's") == mine                    # a retry replays the first outcome
    colleague = await create(admin, "Admin's")                       # same project, another operator
    foreign = await create(acme_owner, "Acme's")                     # another project
    assert (colleague["title"], foreign["title"]) == ("Admin's", "Acme's")
    assert len({mine["id"], colleague["id"], foreign["id"]}) == 3
    demo = (await registry.call("GET", "api", "templates", token=owner)).body["templates"]
    assert sorted(t["title"] for t in demo) == ["Admin's", "Owner's"]
    acme = (await registry.call("GET", "api", "templates", token=acme_owner)).body["templates"]
    assert [t["title"] for t in acme] == ["Acme's"]


# ---- the avatar is recorded through an internal route only ---------------------------------

async def test_the_avatar_is_recorded_through_the_internal_route_only(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, operator, _ = await registry.add_operator(owner, "Pic")
    victim, _, _ = await registry.add_operator(owner, "Victim")
    public = await registry.call("PUT", "api", "operators", operator_id, "avatar", token=operator,
                                 json={"avatar_id": AVATAR_ID})
    assert public.status in (404, 405) and code(public)
    r = await registry.call("PUT", "internal", "operators", operator_id, "avatar", token=operator,
                            json={"avatar_id": AVATAR_ID})
    assert r.status == 200, r.raw
    assert r.body["avatar_url"] == f"/avatars/{AVATAR_ID}.png"
    r = await registry.call("PUT", "internal", "operators", victim, "avatar", token=operator,
                            json={"avatar_id": AVATAR_ID})
    assert r.status == 403
    assert (await registry.call("GET", "internal", "operators", victim, "avatar-permission", token=operator)).status == 403
    assert (await registry.call("GET", "internal", "operators", victim, "avatar-permission", token=owner)).status == 204


async def test_an_avatar_id_is_32_lowercase_hex_characters(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    owner_id = (await registry.me(owner))["id"]
    for avatar_id in ["0123456789ABCDEF0123456789ABCDEF", "0" * 31, "0" * 33, "g" * 32, AVATAR_ID + "\n",
                      "../../" + "0" * 26, 5, None, [AVATAR_ID]]:
        r = await registry.call("PUT", "internal", "operators", owner_id, "avatar", token=owner,
                                json={"avatar_id": avatar_id})
        assert (r.status, code(r)) == (422, "avatar_id_invalid"), avatar_id


async def test_an_unsigned_call_to_the_internal_avatar_route_is_refused(stack):
    owner = await Registry(stack).login(OWNER_EMAIL, OWNER_PASSWORD)
    owner_id = (await Registry(stack).me(owner))["id"]
    r = await stack.registry.put(f"/internal/operators/{owner_id}/avatar", json={"avatar_id": AVATAR_ID},
                                 headers={"Authorization": f"Bearer {owner}"})
    assert r.status == 401 and (await r.json())["error"]["code"] == "unsigned_call"
