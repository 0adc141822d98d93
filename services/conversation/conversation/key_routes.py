"""The conversations' keys for the services that read their sealed events
(docs/architecture.md, Personal data): `GET /internal/subject-keys?subjects=a,b` -
signed calls only, as every internal route - answers `{"keys": {subject: base64 key or
null}}`. Null is an erased conversation (or one whose personal data never went out):
the caller reads its events in their erased form. Keys are never on a topic."""
from __future__ import annotations

import base64
import re

from aiohttp import web

from parley import subject_keys
from parley.http import Rejected, ok
from parley.service import POOL

MAX_SUBJECTS = 100
_SUBJECT = re.compile(r"^conversation-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def keys(request: web.Request) -> web.Response:
    subjects = [s for s in request.query.get("subjects", "").split(",") if s]
    if not subjects or len(subjects) > MAX_SUBJECTS or not all(_SUBJECT.match(s) for s in subjects):
        raise Rejected(422, "subjects_invalid", f"subjects: 1-{MAX_SUBJECTS} conversation stream ids, comma-separated.")
    found = await subject_keys.keys_for(request.app[POOL], subjects)
    return ok({"keys": {s: base64.b64encode(k).decode() if k is not None else None for s, k in found.items()}})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/internal/subject-keys", keys)
