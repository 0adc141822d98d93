"""Which files a visitor may download: their own uploads, and the files of their
own conversation (those an operator sent them)."""
from __future__ import annotations

from aiohttp import web

from parley.service_client import path

from gateway import auth, verified_visitors, visitor_tokens
from gateway.upstreams import conversation


async def may_download(request: web.Request, row) -> bool:
    identity = visitor_tokens.verify(auth.visitor_token_of(request))
    if identity is None or identity.project_id != row["project_id"] \
            or not await verified_visitors.still_verified(request.app, identity):
        return False
    if row["uploaded_by"] == f"visitor:{identity.visitor_id}":
        return True
    if row["conversation_id"] is None:
        return False
    answer = await conversation(request.app).call("GET", path("internal", "visitor", "conversation"),
                                                  params={"project_id": identity.project_id,
                                                          "visitor_id": identity.visitor_id})
    return answer.status == 200 and answer.body.get("conversation_id") == row["conversation_id"]
