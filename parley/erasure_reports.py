"""A service's part of an erasure, reported to the conversation service, which runs the
erasure and calls it done once every part of every conversation is in (its
erasure_requests.py): `POST /internal/privacy/erasures/{id}/parts`, signed.

Called by a consumer of `chat.conversation_erased` inside the transaction that did its
part: a failed report fails the batch, which is applied again (every part is
idempotent), so a part is never done unreported."""
from __future__ import annotations

from typing import Any

from parley import internal_auth
from parley.contract import id_of
from parley.envelope import Event
from parley.service_client import ServiceClient, new_session, path


async def report(conversation_url: str, part: str, event: Event, result: dict[str, Any]) -> None:
    """`conversation_url`: where the conversation service answers (the caller's setting)."""
    async with new_session() as session:
        client = ServiceClient("conversation", conversation_url.rstrip("/"), session, internal_auth.secret())
        await client.checked("POST", path("internal", "privacy", "erasures", event.data["erasure_id"], "parts"),
                             json={"conversation_id": id_of(event.stream_id), "part": part, "result": result})
