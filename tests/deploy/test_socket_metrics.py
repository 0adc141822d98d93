"""The gateway counts WebSockets open and closed (the disconnect-storm alert reads them)."""
import asyncio

from prometheus_client import REGISTRY

from tests.stack import OWNER_EMAIL, OWNER_PASSWORD


def _sample(name: str, kind: str) -> float:
    return REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0


async def test_an_operator_socket_is_counted_open_then_closed(stack):
    token = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    open_before = _sample("parley_ws_open", "operator")
    closed_before = _sample("parley_ws_disconnects_total", "operator")
    ws = await stack.gateway.ws_connect("/ws/operator", headers={"Authorization": f"Bearer {token}"})
    assert (await ws.receive_json(timeout=10))["type"] == "hello"
    assert _sample("parley_ws_open", "operator") == open_before + 1
    await ws.close()
    for _ in range(100):  # the server's side of the close runs after the client's returns
        if _sample("parley_ws_disconnects_total", "operator") == closed_before + 1:
            break
        await asyncio.sleep(0.05)
    assert _sample("parley_ws_disconnects_total", "operator") == closed_before + 1
    assert _sample("parley_ws_open", "operator") == open_before
