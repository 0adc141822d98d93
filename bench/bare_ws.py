"""The floor for memory per idle socket: a bare aiohttp WebSocket server, nothing but an
upgrade and a read loop, with the same heartbeat as the gateway's sockets.

    python -m bench.bare_ws PORT"""
from __future__ import annotations

import sys

from aiohttp import web


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=25)
    await ws.prepare(request)
    await ws.send_json({"type": "hello"})
    async for _ in ws:
        pass
    return ws


async def ready(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
