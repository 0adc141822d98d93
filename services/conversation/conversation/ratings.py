"""CSAT: the visitor rates a closed conversation, once (issue 13, item 4). Pure.

`chat.rated` carries the rating (1-5), an optional comment and who handled the
conversation when it was rated, so the per-operator summary needs nothing else. Refused:
a conversation that is not closed (409 not_closed), one already rated (409
already_rated: asked once), another visitor's (404, as if it did not exist), a rating
outside 1-5 (422 rating_invalid)."""
from __future__ import annotations

from typing import Any

from parley.contract import conversation_stream
from parley.envelope import Event, new_event

from conversation.domain import Conversation, DomainError, clean_text

COMMENT_MAX = 1000


def decide_rating(state: Conversation | None, visitor_id: str, rating: Any, comment: Any) -> list[Event]:
    if state is None or state.visitor_id != visitor_id:
        raise DomainError("not_found", "Conversation not found.", "not_found")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise DomainError("rating_invalid", "A rating is a whole number from 1 to 5.")
    try:
        comment = clean_text(comment, COMMENT_MAX, allow_empty=True) or None
    except DomainError as e:
        raise DomainError("comment_invalid", f"A comment is text up to {COMMENT_MAX} characters.", e.kind) from None
    if state.rated:
        raise DomainError("already_rated", "This conversation has been rated already. Thank you!", "conflict")
    if state.status != "closed":
        raise DomainError("not_closed", "A conversation is rated once it is closed.", "conflict")
    return [new_event("chat.rated", conversation_stream(state.id),
                      {"rating": rating, "comment": comment, "operator_id": state.assignee_id,
                       "operator_name": state.assignee_name}, project_id=state.project_id)]
