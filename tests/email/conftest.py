"""Transcripts by email: a real SMTP server (devstack/mail_sink.py, aiosmtpd) on a free
port, its SMTP side stopped and started again for outages; crm-bridge may use loopback
addresses (PARLEY_CRM_ALLOW_PRIVATE=1, as `make run` sets)."""
from __future__ import annotations

import pytest

from devstack.mail_sink import Sink
from devstack.procs import free_port


@pytest.fixture(autouse=True)
def private_smtp(monkeypatch):
    monkeypatch.setenv("PARLEY_CRM_ALLOW_PRIVATE", "1")


@pytest.fixture
async def sink():
    caught = Sink()
    caught.port = free_port()
    await caught.start_smtp("127.0.0.1", caught.port)
    yield caught
    await caught.stop_smtp()
