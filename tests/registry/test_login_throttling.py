"""Login throttling never locks out the rightful user: failures count per (project +
email, client address) and per client address, never per email alone. The address is
the one the gateway signed (X-Parley-Client-Address), never X-Forwarded-For."""
from parley.service import POOL

from operator_registry import accounts
from tests.registry.direct import Registry, code
from tests.stack import OWNER_EMAIL, OWNER_PASSWORD

ATTACKER, OPERATOR_HOME, ELSEWHERE = "203.0.113.66", "198.51.100.20", "192.0.2.30"


async def test_wrong_passwords_from_one_address_do_not_lock_the_rightful_user_out_elsewhere(stack):
    registry = Registry(stack)
    owner = await registry.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, _, email = await registry.add_operator(owner, "Cid")
    for _ in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS):
        r = await registry.try_login(email, "bad-password", address=ATTACKER)
        assert (r.status, code(r)) == (401, "invalid_credentials")
    # from the attacker's address: refused, even with the right password, and told for how long
    for password in ("bad-password", "operator-pass-1"):
        r = await registry.try_login(email, password, address=ATTACKER)
        assert (r.status, code(r), r.headers.get("Retry-After")) == (429, "too_many_attempts", "900")
    # the operator, from their own address, logs in
    r = await registry.try_login(email, "operator-pass-1", address=OPERATOR_HOME)
    assert r.status == 201 and r.body["token"]
    # another email from the attacker's address still gets its own attempts
    assert (await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=ATTACKER)).status == 201


async def test_a_spray_over_many_emails_from_one_address_is_blocked_per_address(stack):
    registry = Registry(stack)
    for i in range(accounts.FAILURES_PER_ADDRESS):
        r = await registry.try_login(f"guess{i}@example.com", "bad-password", address=ATTACKER)
        assert r.status == 401
    r = await registry.try_login("one-more@example.com", "bad-password", address=ATTACKER)
    assert (r.status, code(r)) == (429, "too_many_attempts") and r.headers["Retry-After"] == "900"
    r = await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=ATTACKER)
    assert r.status == 429
    assert (await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=ELSEWHERE)).status == 201


async def test_a_forged_x_forwarded_for_changes_nothing(stack):
    registry = Registry(stack)
    # Failures sent "from" the owner's address in X-Forwarded-For are the attacker's own...
    for i in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS + 1):
        await registry.try_login(OWNER_EMAIL, "bad-password", address=ATTACKER,
                                 headers={"X-Forwarded-For": f"{OPERATOR_HOME}, 10.0.0.{i}"})
    assert (await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=OPERATOR_HOME)).status == 201
    # ...and a fresh X-Forwarded-For per attempt does not reset the attacker's count.
    r = await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=ATTACKER,
                                 headers={"X-Forwarded-For": "10.9.9.9"})
    assert r.status == 429


async def test_without_a_signed_address_the_caller_is_counted_as_unknown(stack):
    registry = Registry(stack)
    for _ in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS):
        await registry.try_login(OWNER_EMAIL, "bad-password", address=None, headers={"X-Forwarded-For": ATTACKER})
    assert (await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=None)).status == 429
    assert (await registry.try_login(OWNER_EMAIL, OWNER_PASSWORD, address=ATTACKER)).status == 201
    rows = await stack.registry.app[POOL].fetch("select distinct key from login_failures")
    assert {r["key"] for r in rows} >= {"address:unknown"}
    assert not any(ATTACKER in r["key"] for r in rows)


async def test_a_success_starts_the_count_again_and_old_failures_are_pruned(stack):
    registry = Registry(stack)
    pool = stack.registry.app[POOL]
    for _ in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS - 1):
        await registry.try_login(OWNER_EMAIL, "bad-password", address=OPERATOR_HOME)
    await registry.login(OWNER_EMAIL, OWNER_PASSWORD, address=OPERATOR_HOME)
    for _ in range(accounts.FAILURES_PER_EMAIL_AND_ADDRESS - 1):
        assert (await registry.try_login(OWNER_EMAIL, "bad-password", address=OPERATOR_HOME)).status == 401
    await registry.login(OWNER_EMAIL, OWNER_PASSWORD, address=OPERATOR_HOME)

    await pool.execute("insert into login_failures (key, at) select 'address:old-' || n, now() - interval '16 minutes' "
                       "from generate_series(1, 500) n")
    await registry.try_login("someone@example.com", "bad-password", address=ELSEWHERE)
    assert await pool.fetchval("select count(*) from login_failures where at < now() - interval '15 minutes'") == 0
    assert await pool.fetchval("select count(*) from login_failures where key = $1", f"address:{ELSEWHERE}") == 1
