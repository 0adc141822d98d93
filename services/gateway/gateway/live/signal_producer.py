"""The gateway's one producer for ephemeral signals between gateways (typing.signals,
visitors.signals): started by the first signal, so a gateway nobody types or browses on
never connects it. Losing a signal is harmless (the next one, or the next refresh,
supersedes it), so it does not wait for more than the leader's acknowledgement."""
from __future__ import annotations

import logging

import orjson
from aiohttp import web

from parley import kafka
from parley.service import SETTINGS

log = logging.getLogger(__name__)

PRODUCER = web.AppKey("signal_producer", dict)   # {"producer": AIOKafkaProducer | None}


async def producer(app: web.Application):
    """Cleanup context: the producer is stopped with the gateway."""
    app[PRODUCER] = {"producer": None}
    yield
    if app[PRODUCER]["producer"] is not None:
        await app[PRODUCER]["producer"].stop()


async def publish(app: web.Application, topic: str, key: str, message: dict) -> bool:
    """One signal; False when it could not go (the broker away), never an exception."""
    held = app[PRODUCER]
    try:
        if held["producer"] is None:
            made = kafka.producer(app[SETTINGS].kafka_bootstrap, enable_idempotence=False, acks=1, linger_ms=0)
            await made.start()
            if held["producer"] is None:
                held["producer"] = made
            else:   # another signal started one meanwhile
                await made.stop()
        await held["producer"].send(topic, orjson.dumps(message), key=key.encode())
    except Exception as e:   # the broker away: a signal is not worth an error
        log.warning("signal not sent", extra={"topic": topic, "error": type(e).__name__})
        return False
    return True
