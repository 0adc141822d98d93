"""The gateway's rate limits (parley/sliding_window.py), counted in this gateway's
memory. (Limits are per gateway: with N gateways a client may get up to N times the
limit. Shared counting is not built.)"""
from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from parley.sliding_window import SlidingWindow


MESSAGES_PER_MINUTE_PER_VISITOR = 30
MESSAGES_PER_MINUTE_PER_ADDRESS = 120
NEW_VISITORS_PER_MINUTE_PER_ADDRESS = 20
UPLOADS_PER_MINUTE_PER_ADDRESS = 30
PAGES_PER_MINUTE_PER_VISITOR = 60   # page frames (live visitors): more is a script, not a person browsing
INVITES_PER_MINUTE_PER_OPERATOR = 20


@dataclass
class Limits:
    messages_per_visitor: SlidingWindow = field(default_factory=lambda: SlidingWindow(MESSAGES_PER_MINUTE_PER_VISITOR))
    messages_per_address: SlidingWindow = field(
        default_factory=lambda: SlidingWindow(MESSAGES_PER_MINUTE_PER_ADDRESS))
    visitor_sessions_per_address: SlidingWindow = field(
        default_factory=lambda: SlidingWindow(NEW_VISITORS_PER_MINUTE_PER_ADDRESS))
    uploads_per_address: SlidingWindow = field(default_factory=lambda: SlidingWindow(UPLOADS_PER_MINUTE_PER_ADDRESS))
    pages_per_visitor: SlidingWindow = field(default_factory=lambda: SlidingWindow(PAGES_PER_MINUTE_PER_VISITOR))
    invites_per_operator: SlidingWindow = field(
        default_factory=lambda: SlidingWindow(INVITES_PER_MINUTE_PER_OPERATOR))


LIMITS = web.AppKey("rate_limits", Limits)


def limits(app: web.Application) -> Limits:
    return app[LIMITS]
