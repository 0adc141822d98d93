"""Two-factor login (issue 23): TOTP (RFC 6238, `pyotp`: 6 digits, 30 s, one step of
clock drift either way) and ten one-time recovery codes.

- An operator enrols from their profile: `POST /api/me/two-factor/enrol` answers a new
  secret with its `otpauth://` URI and a QR code (SVG, `segno`); a code from the app
  confirms it (`.../confirm`), which switches it on and answers the recovery codes, shown
  once. `DELETE /api/me/two-factor` with a current code switches it off, unless the
  project requires it.
- Login (routes.login) asks for `code` once the password is right: a TOTP code of a step
  later than the last one used, or a recovery code (each good once). A wrong code counts
  as a failed login in the same throttle as passwords.
- The owner may require it of everyone (`PUT /api/project/two-factor`): an operator
  without it then logs in to a session that may only enrol (`must_enrol`, enforced by
  the registry's session middleware and the gateway's auth) - and reset another
  operator's (`POST /api/operators/{id}/two-factor/reset`, for a lost phone), in the
  audit log.

Secrets and recovery digests are rows here, never events (as the identity secret).
This module holds the rules (routes.login and the session middleware, authentication.py, use them); the
routes are two_factor_routes.py."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import asyncpg
import pyotp

from parley.contract import TWO_FACTOR_ENROLMENT_REQUIRED
from parley.http import Rejected

ISSUER = "Parley"
RECOVERY_CODES = 10
STEP_SECONDS = 30
DRIFT_STEPS = 1
# The routes a session that must enrol may use (the rest answer 403 two_factor_enrolment_required).
ENROLMENT_PATHS = ("/api/me/two-factor", "/api/session")


def enrolment_required() -> Rejected:
    """The refusal of a session that must enrol first (the gateway's is the same, parley.contract)."""
    return Rejected(403, *TWO_FACTOR_ENROLMENT_REQUIRED)


@dataclass(frozen=True)
class State:
    enabled: bool
    required: bool
    recovery_codes_left: int

    @property
    def must_enrol(self) -> bool:
        return self.required and not self.enabled


async def state(db: asyncpg.Pool | asyncpg.Connection, operator_id: str, project_id: str) -> State:
    row = await db.fetchrow(
        """select (select confirmed_at is not null from two_factor where operator_id = $1) as enabled,
                  (select cardinality(recovery_hashes) from two_factor where operator_id = $1) as left_,
                  (select required from two_factor_required where project_id = $2) as required""",
        operator_id, project_id)
    return State(bool(row["enabled"]), bool(row["required"]), row["left_"] or 0 if row["enabled"] else 0)


def code_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]


def step_of(secret: str, code: str, after_step: int, now: float | None = None) -> int | None:
    """The time step `code` is for, within the drift and later than `after_step`; else None."""
    if not (isinstance(code, str) and code.strip().isdigit() and len(code.strip()) == 6):
        return None
    totp, now = pyotp.TOTP(secret), time.time() if now is None else now
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after_step and hmac.compare_digest(totp.at(step * STEP_SECONDS), code.strip()):
            return step
    return None


async def check_login_code(conn: asyncpg.Connection, operator_id: str, code: object) -> bool:
    """Whether `code` (TOTP or a recovery code) opens this operator's login; a code that
    does is used up. Runs in `conn`'s transaction, with the row locked."""
    row = await conn.fetchrow(
        "select secret, last_step, recovery_hashes from two_factor where operator_id = $1 and confirmed_at is not null"
        " for update", operator_id)
    if row is None or not isinstance(code, str) or len(code) > 40:
        return False
    step = step_of(row["secret"], code, row["last_step"])
    if step is not None:
        await conn.execute("update two_factor set last_step = $2 where operator_id = $1", operator_id, step)
        return True
    digest = code_digest(code)
    if any(hmac.compare_digest(digest, h) for h in row["recovery_hashes"]):
        await conn.execute("update two_factor set recovery_hashes = array_remove(recovery_hashes, $2)"
                           " where operator_id = $1", operator_id, digest)
        return True
    return False


async def enabled(db: asyncpg.Pool | asyncpg.Connection, operator_id: str) -> bool:
    return bool(await db.fetchval("select 1 from two_factor where operator_id = $1 and confirmed_at is not null",
                                  operator_id))
