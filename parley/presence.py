"""What both sides of presence agree on: the statuses, the grace period, the stream.

An operator is online or away by their own choice while an app of theirs is open on
any gateway; offline when they chose it, or when no gateway has reported an open app of
theirs for the grace period (PARLEY_PRESENCE_GRACE_SECONDS). Gateways report every
third of it, so one lost heartbeat never makes anyone offline."""
from __future__ import annotations

from parley.config import env

STATUSES = ("online", "away", "offline")
GRACE_VAR = "PARLEY_PRESENCE_GRACE_SECONDS"


def grace_seconds() -> float:
    raw = env(GRACE_VAR) or "30"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise SystemExit(f"{GRACE_VAR} must be a number of seconds above 0 (default 30), not {raw!r}")
    return value


def heartbeat_seconds() -> float:
    return grace_seconds() / 3


def presence_stream(operator_id: str) -> str:
    return f"presence-{operator_id}"
