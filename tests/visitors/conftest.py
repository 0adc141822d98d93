"""Live visitors tests: a short refresh period (PARLEY_LIVE_VISITORS_REFRESH_SECONDS), set
before the stack starts, so departures and silent gateways show in seconds."""
from __future__ import annotations

import pytest

REFRESH_SECONDS = 2.0


@pytest.fixture(autouse=True)
def short_refresh(monkeypatch):
    monkeypatch.setenv("PARLEY_LIVE_VISITORS_REFRESH_SECONDS", str(REFRESH_SECONDS))
