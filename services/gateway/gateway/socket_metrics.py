"""WebSocket gauges for the gateway: sockets open now and sockets closed, per kind
(visitor, operator). A burst of closes against the open count is a disconnect storm (a
proxy cutting idle upgrades, a gateway replica going away): the alert rules read them."""
from prometheus_client import Counter, Gauge

OPEN = Gauge("parley_ws_open", "WebSockets open on this gateway", ["kind"])
DISCONNECTS = Counter("parley_ws_disconnects_total", "WebSockets closed, by either side", ["kind"])


def opened(kind: str) -> None:
    OPEN.labels(kind).inc()


def closed(kind: str) -> None:
    OPEN.labels(kind).dec()
    DISCONNECTS.labels(kind).inc()
