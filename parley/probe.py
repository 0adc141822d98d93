"""The containers' health check: `python -m parley.probe [PATH | URL]` exits 0 when
http://127.0.0.1:$PARLEY_HTTP_PORT/PATH (default /healthz) or URL answers 2xx, else 1 with
the reason on stderr.

A module, not a `python -c "..."` line in the Dockerfile and compose: podman before 5.8
splits a health check's arguments at spaces when compose creates the container through
its Docker API (podman issue 26519), which turns such a line into a syntax error. Arguments
without spaces mean the same on every engine."""
from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_SECONDS = 4


def url_for(target: str) -> str:
    if target.startswith(("http://", "https://")):
        return target
    return f"http://127.0.0.1:{os.environ.get('PARLEY_HTTP_PORT') or '8080'}{target}"


def main(argv: list[str]) -> int:
    url = url_for(argv[0] if argv else "/healthz")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS):
            return 0
    except OSError as e:  # refused, timed out, or an HTTPError for a non-2xx answer
        print(f"{url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
