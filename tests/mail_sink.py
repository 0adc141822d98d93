"""The mail sink's fixtures (a pytest plugin, tests/conftest.py): a real SMTP server
(devstack/mail_sink.py, aiosmtpd) on a free port, whose SMTP side a test may stop and
start again for an outage; and crm-bridge allowed to send to loopback addresses
(PARLEY_CRM_ALLOW_PRIVATE=1, as `make run` sets; read at each send)."""
from __future__ import annotations

import pytest

from devstack.mail_sink import Sink
from devstack.procs import free_port


@pytest.fixture
def private_smtp(monkeypatch):
    monkeypatch.setenv("PARLEY_CRM_ALLOW_PRIVATE", "1")


@pytest.fixture
async def sink(private_smtp):
    caught = Sink()
    caught.port = free_port()
    await caught.start_smtp("127.0.0.1", caught.port)
    yield caught
    await caught.stop_smtp()
