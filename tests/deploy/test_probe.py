"""The containers' health check (parley/probe.py): 0 only for a 2xx from the service."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from parley import probe


class Answers(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.send_response({"/healthz": 200, "/readyz": 503}.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def port(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PARLEY_HTTP_PORT", str(server.server_port))
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_a_2xx_is_healthy_anything_else_is_not(port, capsys):
    assert probe.main([]) == 0                       # /healthz by default
    assert probe.main(["/readyz"]) == 1
    assert "503" in capsys.readouterr().err
    assert probe.main([f"http://127.0.0.1:{port}/healthz"]) == 0
    assert probe.main([f"http://127.0.0.1:{port}/nothing"]) == 1


def test_nothing_listening_is_unhealthy(port, monkeypatch, capsys):
    monkeypatch.setenv("PARLEY_HTTP_PORT", "1")
    assert probe.main(["/healthz"]) == 1
    assert "refused" in capsys.readouterr().err.lower()
