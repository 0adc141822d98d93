"""Structured JSON logs, one object per line on stderr, each carrying the
correlation id of the request or event being handled."""
from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid

import orjson

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


# What a caller may hand us as its correlation id (a header, a call of a batch): short
# and plain, so it cannot forge log lines or fill them.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def correlation_id_from(given: object) -> str:
    """The caller's correlation id if it is an acceptable one, else a new one."""
    return given if isinstance(given, str) and _ACCEPTED.match(given) else new_correlation_id()


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kafka client logs every reconnect attempt at INFO; keep ours readable.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
