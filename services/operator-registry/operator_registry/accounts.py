"""Credentials and sessions: argon2id password hashes, long-lived revocable session
tokens that rotate on use, and login throttling per email and per IP.

A token is `<session id>.<secret>`; only sha256(secret) is stored. After
SESSION_ROTATE_SECONDS a request gets a fresh secret (returned to the client), and the
previous one stays valid for ROTATION_GRACE_SECONDS so requests already in flight with it
still pass."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from parley.config import env

from operator_registry.domain import Actor

SESSION_ROTATE_SECONDS = int(env("PARLEY_SESSION_ROTATE_SECONDS"))
ROTATION_GRACE_SECONDS = 60
SESSION_IDLE_DAYS = 90
FAILURES_PER_EMAIL = 5       # in THROTTLE_WINDOW
FAILURES_PER_IP = 30
THROTTLE_WINDOW = "15 minutes"

_hasher = PasswordHasher()   # argon2id, the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("a password nobody has")


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow (tens of ms): keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            # An unknown email still costs one verification, so timing does not tell.
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)


@dataclass(frozen=True)
class Session:
    id: str
    actor: Actor
    name: str
    email: str
    new_token: str | None = None  # set when this use rotated the token


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _split(token: str) -> tuple[str, str] | None:
    session_id, _, secret = token.partition(".")
    try:
        uuid.UUID(session_id)
    except ValueError:
        return None
    return (session_id, secret) if secret else None


async def create_session(conn: asyncpg.Connection, session_id: str, operator_id: str, project_id: str) -> str:
    """Returns the token; only its digest is stored."""
    secret = secrets.token_urlsafe(32)
    await conn.execute("insert into sessions (id, operator_id, project_id, secret_hash) values ($1, $2, $3, $4)",
                       session_id, operator_id, project_id, _digest(secret))
    return f"{session_id}.{secret}"


_SESSION_QUERY = """
select s.id::text, s.operator_id::text, s.project_id, s.secret_hash, s.previous_hash,
       s.previous_until > now() as previous_valid,
       s.rotated_at < now() - make_interval(secs => $2) as due_for_rotation,
       o.id is not null as is_operator, coalesce(o.active and not o.removed, false) as operator_ok,
       coalesce(o.is_admin, true) as is_admin, coalesce(o.is_owner, true) as is_owner,
       coalesce(o.name, p.owner_name) as name, coalesce(o.email, p.owner_email) as email,
       p.owner_operator_id::text as owner_operator_id
from sessions s
join projects p on p.id = s.project_id
left join operators o on o.id = s.operator_id
where s.id = $1 and s.revoked_at is null and s.last_used_at > now() - make_interval(days => $3)
"""


async def verify_session(pool: asyncpg.Pool, token: str | None) -> Session | None:
    parts = _split(token or "")
    if parts is None:
        return None
    session_id, secret = parts
    row = await pool.fetchrow(_SESSION_QUERY, session_id, SESSION_ROTATE_SECONDS, SESSION_IDLE_DAYS)
    if row is None:
        return None
    # Before the chat is enabled, the owner is not an operator yet but may log in.
    if not (row["operator_ok"] or (not row["is_operator"] and row["operator_id"] == row["owner_operator_id"])):
        return None
    digest = _digest(secret)
    current = hmac.compare_digest(digest, row["secret_hash"])
    if not current and not (row["previous_valid"] and row["previous_hash"]
                            and hmac.compare_digest(digest, row["previous_hash"])):
        return None
    new_token = None
    if current and row["due_for_rotation"]:
        fresh = secrets.token_urlsafe(32)
        rotated = await pool.execute(
            """update sessions set previous_hash = secret_hash, previous_until = now() + make_interval(secs => $3),
                      secret_hash = $2, rotated_at = now(), last_used_at = now()
               where id = $1 and secret_hash = $4""",
            session_id, _digest(fresh), ROTATION_GRACE_SECONDS, row["secret_hash"])
        if rotated.endswith(" 1"):
            new_token = f"{session_id}.{fresh}"
    else:
        await pool.execute("update sessions set last_used_at = now() where id = $1 and last_used_at < now() - interval '1 minute'",
                           session_id)
    actor = Actor(operator_id=row["operator_id"], project_id=row["project_id"],
                  is_admin=row["is_admin"], is_owner=row["is_owner"])
    return Session(session_id, actor, row["name"], row["email"], new_token)


async def revoke_sessions(conn: asyncpg.Connection, operator_id: str, *, keep: str | None = None) -> list[str]:
    rows = await conn.fetch(
        """update sessions set revoked_at = now()
           where operator_id = $1 and revoked_at is null and ($2::uuid is null or id <> $2::uuid)
           returning id::text""", operator_id, keep)
    return [r["id"] for r in rows]


async def throttled(pool: asyncpg.Pool, email_key: str, ip_key: str) -> bool:
    counts = await pool.fetchrow(
        f"""select count(*) filter (where key = $1) as email, count(*) filter (where key = $2) as ip
            from login_failures where key in ($1, $2) and at > now() - interval '{THROTTLE_WINDOW}'""",
        email_key, ip_key)
    return counts["email"] >= FAILURES_PER_EMAIL or counts["ip"] >= FAILURES_PER_IP


async def record_failure(pool: asyncpg.Pool, email_key: str, ip_key: str) -> None:
    await pool.executemany("insert into login_failures (key) values ($1)", [(email_key,), (ip_key,)])
    await pool.execute(f"delete from login_failures where at < now() - interval '{THROTTLE_WINDOW}'")
