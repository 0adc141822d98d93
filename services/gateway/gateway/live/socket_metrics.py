"""WebSocket gauges for the gateway: sockets open now and sockets closed, per kind
(visitor, operator). A burst of closes against the open count is a disconnect storm (a
proxy cutting idle upgrades, a gateway replica going away): the alert rules read them.
Closes the gateway decides are counted by close code: 4408 is a client that stopped
reading (its send queue was full), 4401 a revoked session, 1001 a shutdown."""
from prometheus_client import Counter, Gauge

OPEN = Gauge("parley_ws_open", "WebSockets open on this gateway", ["kind"])
DISCONNECTS = Counter("parley_ws_disconnects_total", "WebSockets closed, by either side", ["kind"])
GATEWAY_CLOSES = Counter("parley_ws_gateway_closes_total", "WebSockets the gateway closed, by close code", ["code"])


def opened(kind: str) -> None:
    OPEN.labels(kind).inc()


def closed(kind: str) -> None:
    OPEN.labels(kind).dec()
    DISCONNECTS.labels(kind).inc()


def closed_by_gateway(code: int) -> None:
    GATEWAY_CLOSES.labels(str(code)).inc()
