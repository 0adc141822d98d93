"""What both sides of presence agree on: the statuses, the grace period, the stream.

An operator is online or away by their own choice while an app of theirs is open on
any gateway; offline when they chose it, or when no gateway has reported an open app of
theirs for the grace period (PARLEY_PRESENCE_GRACE_SECONDS). Gateways report every
third of it, so one lost heartbeat never makes anyone offline."""
from __future__ import annotations

from parley.config import positive_seconds

STATUSES = ("online", "away", "offline")
GRACE_VAR = "PARLEY_PRESENCE_GRACE_SECONDS"


def grace_seconds() -> float:
    return positive_seconds(GRACE_VAR)


def heartbeat_seconds() -> float:
    return grace_seconds() / 3


def presence_stream(operator_id: str) -> str:
    return f"presence-{operator_id}"
