"""Whose address a request is: the peer, or the client behind our own proxies - never
what the client wrote into X-Forwarded-For itself."""
import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.client_ip import client_ip


def request(forwarded: str | None, peer: str = "10.0.0.9"):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    req = make_mocked_request("GET", "/", headers=headers)
    return req.clone(remote=peer)


@pytest.mark.parametrize("hops, forwarded, expected", [
    (0, None, "10.0.0.9"),                          # no proxy: the peer
    (0, "1.2.3.4", "10.0.0.9"),                     # no proxy trusted: a client's header is ignored
    (1, "203.0.113.7", "203.0.113.7"),              # behind an ingress
    (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),     # a spoofed entry in front is not believed
    (2, "6.6.6.6, 203.0.113.7, 10.0.0.5", "203.0.113.7"),
    (1, None, "10.0.0.9"),                          # a proxy that forgot the header: the peer
])
def test_client_ip(monkeypatch, hops, forwarded, expected):
    monkeypatch.setenv("PARLEY_TRUSTED_PROXY_HOPS", str(hops))
    assert client_ip(request(forwarded)) == expected
