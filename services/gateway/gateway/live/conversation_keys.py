"""The conversations' personal-data keys this gateway holds (parley/key_ring.py), to
open the sealed events it pushes: fetched from the conversation service a poll at a
time, and handed over by the answer to a visitor command that started a conversation
(`subject_key`), so a new conversation's first pushes wait on no key call."""
from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from parley.contract import conversation_stream
from parley.key_ring import KeyRing, fetch_with

from gateway import upstreams

KEYS = web.AppKey("conversation_keys", KeyRing)


def setup(app: web.Application) -> None:
    app[KEYS] = KeyRing(fetch_with(lambda: upstreams.conversation(app)))


def keep_from(app: web.Application, answer: dict[str, Any]) -> None:
    """Keep the key a visitor command's answer carries, if it started the conversation."""
    if isinstance(key := answer.get("subject_key"), str):
        app[KEYS].remember(conversation_stream(answer["conversation_id"]), base64.b64decode(key))
