"""Issue 23: two-factor login (TOTP) through the gateway: enrolment with a QR code and a
confirming code, ten recovery codes, login with a code (good once) or a recovery code
(good once), wrong codes throttled as passwords, the owner's requirement (a session
that may only enrol) and the owner's reset, in the audit log."""
from __future__ import annotations

import time

import pyotp

from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.support import eventually

PASSWORD = "operator-pass-1"


async def login(stack, email: str, **extra):
    r = await stack.gateway.post("/api/session", json={"project": "demo", "email": email, "password": PASSWORD,
                                                       **extra})
    return r.status, await r.json()


async def enrol(stack, token: str) -> tuple[str, list[str]]:
    r = await stack.call("POST", "/api/me/two-factor/enrol", token, json={})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["qr_svg"].lstrip().startswith("<svg") and body["otpauth_uri"].startswith("otpauth://totp/")
    secret = body["secret"]
    assert pyotp.TOTP(secret).provisioning_uri().split("secret=")[1][:16] == secret[:16]
    r = await stack.call("POST", "/api/me/two-factor/confirm", token, json={"code": "000000"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "code_invalid"
    r = await stack.call("POST", "/api/me/two-factor/confirm", token, json={"code": pyotp.TOTP(secret).now()})
    assert r.status == 200, await r.text()
    codes = (await r.json())["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def next_code(secret: str) -> str:
    """The code of the next time step (within the accepted drift), so never the one just used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def test_enrol_then_log_in_with_a_code_once_or_a_recovery_code_once(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, token, email = await stack.add_operator(owner, "Tara Totp")
    assert (await (await stack.call("GET", "/api/me/two-factor", token)).json())["enabled"] is False
    secret, codes = await enrol(stack, token)
    me = await (await stack.call("GET", "/api/session", token)).json()
    assert me["two_factor"] == {"enabled": True, "required": False, "must_enrol": False}
    r = await stack.call("POST", "/api/me/two-factor/enrol", token, json={})
    assert r.status == 409   # not twice while it is on

    status, body = await login(stack, email)
    assert (status, body["error"]["code"]) == (401, "two_factor_required") and "token" not in body
    status, body = await login(stack, email, code="123456")
    assert (status, body["error"]["code"]) == (401, "two_factor_invalid")
    code = next_code(secret)
    status, body = await login(stack, email, code=code)
    assert status == 201 and body["token"]
    status, body = await login(stack, email, code=code)   # a code is good once
    assert (status, body["error"]["code"]) == (401, "two_factor_invalid")
    status, body = await login(stack, email, code=codes[0].upper())
    assert status == 201
    status, body = await login(stack, email, code=codes[0])   # a recovery code too
    assert status == 401
    left = await (await stack.call("GET", "/api/me/two-factor", token)).json()
    assert left["recovery_codes_left"] == 9


async def test_wrong_codes_are_throttled_as_passwords_are(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    _, token, email = await stack.add_operator(owner, "Guessed Gena")
    secret, _ = await enrol(stack, token)
    statuses = [(await login(stack, email, code=f"{n:06d}"))[0] for n in range(6)]
    assert statuses[:4] == [401] * 4 and statuses[-1] == 429
    status, body = await login(stack, email, code=next_code(secret))   # even the right code waits now
    assert status == 429


async def test_the_owner_requires_it_and_resets_it(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, token, email = await stack.add_operator(owner, "Late Lena")
    _, admin, _ = await stack.add_operator(owner, "Admin Alex", admin=True)
    r = await stack.call("PUT", "/api/project/two-factor", admin, json={"required": True})
    assert r.status == 403, "the owner's decision"
    r = await stack.call("PUT", "/api/project/two-factor", owner, json={"required": "yes"})
    assert r.status == 422
    await enrol(stack, owner)   # (else the owner's own session could only enrol)
    r = await stack.call("PUT", "/api/project/two-factor", owner, json={"required": True})
    assert r.status == 200, await r.text()

    # Lena has no second factor: her session may only enrol, on the gateway's routes and the registry's.
    status, body = await login(stack, email)
    assert status == 201 and body["operator"]["two_factor"]["must_enrol"] is True
    lena = body["token"]
    for method, path in (("GET", "/api/inbox"), ("GET", "/api/operators"), ("GET", "/api/templates")):
        r = await stack.call(method, path, lena)
        assert r.status == 403 and (await r.json())["error"]["code"] == "two_factor_enrolment_required", path
    secret, _ = await enrol(stack, lena)
    assert (await stack.call("GET", "/api/inbox", lena)).status == 200
    r = await stack.call("DELETE", "/api/me/two-factor", lena, json={"code": next_code(secret)})
    assert r.status == 409 and (await r.json())["error"]["code"] == "two_factor_required"

    # A lost phone: the owner resets it (an admin may not); Lena enrols again at her next login.
    r = await stack.call("POST", f"/api/operators/{operator_id}/two-factor/reset", admin, json={})
    assert r.status == 403
    r = await stack.call("POST", f"/api/operators/{operator_id}/two-factor/reset", owner, json={})
    assert r.status == 204
    status, body = await login(stack, email)
    assert status == 201 and body["operator"]["two_factor"]["must_enrol"] is True

    wanted = {"settings.two_factor", "operator.two_factor_enabled", "operator.two_factor_reset"}

    async def audited() -> bool:
        r = await stack.call("GET", "/api/project/audit", owner)
        return wanted <= {e["action"] for e in (await r.json())["entries"]}
    await eventually(audited, timeout=15, what="the two-factor entries in the audit log")
    r = await stack.call("PUT", "/api/project/two-factor", owner, json={"required": False})
    assert r.status == 200
    status, _ = await login(stack, email)
    assert status == 201     # no longer required, and Lena's was reset: the password alone
