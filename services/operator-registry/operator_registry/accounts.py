"""Credentials and sessions: argon2id password hashes, long-lived revocable session
tokens that rotate on use, and login throttling.

A token is `<session id>.<secret>`; only sha256(secret) is stored. A token older than
PARLEY_SESSION_ROTATE_SECONDS is replaced on its next use (`rotate`; the new token goes
back to the client), and the previous one stays valid for
PARLEY_SESSION_ROTATION_GRACE_SECONDS so requests already in flight with it still pass.

Throttling counts failed logins per (project + email, client address) and per client
address, never per email alone: a stranger who knows an operator's email can exhaust
the attempts from their own address only, and the operator still logs in from theirs.
The client address is the one the gateway signed (contract.CLIENT_ADDRESS_HEADER)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

import asyncpg
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from parley.config import env

from operator_registry.domain import Actor, uuid_or_none

SESSION_IDLE_DAYS = 90
FAILURES_PER_EMAIL_AND_ADDRESS = 5   # in THROTTLE_WINDOW
FAILURES_PER_ADDRESS = 30
THROTTLE_WINDOW = "15 minutes"
THROTTLE_RETRY_AFTER = 900           # seconds: the window, as the client's Retry-After
UNKNOWN_ADDRESS = "unknown"
ADDRESS_MAX = 100


def rotate_seconds() -> int:
    """Read on every use, so a running registry (and a test) follows the environment."""
    return int(env("PARLEY_SESSION_ROTATE_SECONDS"))


def rotation_grace_seconds() -> int:
    return int(env("PARLEY_SESSION_ROTATION_GRACE_SECONDS"))

# argon2id with OWASP's first recommended setting (Password Storage Cheat Sheet: 19 MiB,
# 2 passes, 1 lane). argon2-cffi's default (RFC 9106's low-memory one: 64 MiB, 3 passes,
# 4 lanes) verified in 127 ms on an idle 2-CPU machine against 20 ms for this, and its
# 4 lanes contend for the 2 CPUs with everything else: a login took ~1 s on a loaded
# machine. Hashes made before keep verifying with the parameters stored in them.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_hasher = PASSWORD_HASHER   # (the suite swaps in a cheap one for its in-process registries)
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
    due_for_rotation: bool = False  # presented with its current secret, and older than rotate_seconds()
    secret_hash: bytes = field(default=b"", repr=False)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _split(token: object) -> tuple[str, str] | None:
    if not isinstance(token, str):
        return None
    session_id, _, secret = token.partition(".")
    session_id = uuid_or_none(session_id)
    return (session_id, secret) if session_id and secret else None


async def create_session(conn: asyncpg.Connection, session_id: str, operator_id: str, project_id: str,
                         *, user_agent: str | None = None, address: str | None = None) -> str:
    """Returns the token; only its digest is stored, with where it was opened from (the
    sessions page shows it)."""
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "insert into sessions (id, operator_id, project_id, secret_hash, user_agent, address)"
        " values ($1, $2, $3, $4, $5, $6)",
        session_id, operator_id, project_id, _digest(secret), (user_agent or "")[:300] or None, address)
    return f"{session_id}.{secret}"


async def open_sessions(db: asyncpg.Pool | asyncpg.Connection, operator_id: str) -> list[asyncpg.Record]:
    """An operator's sessions that still stand, the most recently used first."""
    return await db.fetch(
        """select id::text, created_at, last_used_at, user_agent, address from sessions
           where operator_id = $1 and revoked_at is null and last_used_at > now() - make_interval(days => $2)
           order by last_used_at desc""", operator_id, SESSION_IDLE_DAYS)


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


async def verify_session(pool: asyncpg.Pool, token: object) -> Session | None:
    """Who holds this token, or None. Does not rotate: see `rotate`."""
    parts = _split(token)
    if parts is None:
        return None
    session_id, secret = parts
    row = await pool.fetchrow(_SESSION_QUERY, session_id, rotate_seconds(), SESSION_IDLE_DAYS)
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
    await pool.execute("update sessions set last_used_at = now() where id = $1 and last_used_at < now() - interval '1 minute'",
                       session_id)
    actor = Actor(operator_id=row["operator_id"], project_id=row["project_id"],
                  is_admin=row["is_admin"], is_owner=row["is_owner"])
    return Session(session_id, actor, row["name"], row["email"],
                   due_for_rotation=current and row["due_for_rotation"], secret_hash=row["secret_hash"])


async def session_stands(pool: asyncpg.Pool, session_id: str) -> bool:
    """Whether a session (by id, whatever its current token) still gives access: not revoked,
    not idle too long, its operator active. The gateway asks this for the open sockets of
    an operator whose access changed; their tokens may have rotated since on REST calls."""
    row = await pool.fetchrow(_SESSION_QUERY, session_id, rotate_seconds(), SESSION_IDLE_DAYS)
    return row is not None and (row["operator_ok"] or (not row["is_operator"]
                                                       and row["operator_id"] == row["owner_operator_id"]))


async def rotate(pool: asyncpg.Pool, session: Session) -> str | None:
    """A fresh token for a session that is due, or None (not due, revoked meanwhile, or a
    concurrent request rotated it first: that request's client gets the new token). Call it
    only when the answer that carries the new token will be sent: a token rotated and then
    lost would log the operator out once the grace is over."""
    if not session.due_for_rotation:
        return None
    fresh = secrets.token_urlsafe(32)
    rotated = await pool.execute(
        """update sessions set previous_hash = secret_hash, previous_until = now() + make_interval(secs => $3),
                  secret_hash = $2, rotated_at = now(), last_used_at = now()
           where id = $1 and secret_hash = $4 and revoked_at is null""",
        session.id, _digest(fresh), rotation_grace_seconds(), session.secret_hash)
    return f"{session.id}.{fresh}" if rotated.endswith(" 1") else None


async def revoke_sessions(conn: asyncpg.Connection, operator_id: str, *, keep: str | None = None) -> list[str]:
    rows = await conn.fetch(
        """update sessions set revoked_at = now()
           where operator_id = $1 and revoked_at is null and ($2::uuid is null or id <> $2::uuid)
           returning id::text""", operator_id, keep)
    return [r["id"] for r in rows]


def client_address(value: str | None) -> str:
    """The caller's address as the gateway signed it (contract.CLIENT_ADDRESS_HEADER);
    never X-Forwarded-For or the socket's peer, which is the gateway itself."""
    value = "".join(c for c in (value or "") if c.isprintable() and not c.isspace())[:ADDRESS_MAX]
    return value or UNKNOWN_ADDRESS


def throttle_keys(project_id: str, email: str, address: str) -> tuple[str, str]:
    """(per project + email + address, per address). The first is a digest: emails and
    project ids from a login form are unbounded and must not collide when joined."""
    pair = orjson.dumps([project_id, email.strip().lower(), address])
    return "login:" + hashlib.sha256(pair).hexdigest(), "address:" + address


def over_limit(failures_for_email_and_address: int, failures_for_address: int) -> bool:
    return (failures_for_email_and_address >= FAILURES_PER_EMAIL_AND_ADDRESS
            or failures_for_address >= FAILURES_PER_ADDRESS)


async def throttled(db: asyncpg.Pool | asyncpg.Connection, pair_key: str, address_key: str) -> bool:
    counts = await db.fetchrow(
        f"""select count(*) filter (where key = $1) as pair, count(*) filter (where key = $2) as address
            from login_failures where key in ($1, $2) and at > now() - interval '{THROTTLE_WINDOW}'""",
        pair_key, address_key)
    return over_limit(counts["pair"], counts["address"])


async def record_failure(db: asyncpg.Pool | asyncpg.Connection, pair_key: str, address_key: str) -> None:
    """Counts one failure, and prunes what has left the window (the table stays small)."""
    await db.executemany("insert into login_failures (key) values ($1)", [(pair_key,), (address_key,)])
    await db.execute(f"delete from login_failures where at < now() - interval '{THROTTLE_WINDOW}'")


async def forget_failures(db: asyncpg.Pool | asyncpg.Connection, pair_key: str) -> None:
    """After a success from this address: this email's count from here starts again."""
    await db.execute("delete from login_failures where key = $1", pair_key)
