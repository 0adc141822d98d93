"""Names and rules that both sides of a service boundary use, written once.

The gateway and the services behind it must agree on the session cookie, the headers
that carry who acts, how stream ids are formed and who may see a conversation. Each
of these used to be copied on both sides; a copy that drifts is a security hole."""
from __future__ import annotations

import re
import uuid

# ---- the operator's session ---------------------------------------------------------
SESSION_COOKIE = "parley_session"
# A token that rotated on this request, for clients that keep it themselves (bearer).
ROTATED_TOKEN_HEADER = "X-Parley-Session"

# ---- two-factor login ------------------------------------------------------------------
# A session of a project that requires two-factor login, for an operator who has not set it
# up, may only enrol: the registry refuses its own routes and the gateway everything else
# (REST and /ws/operator) with this 403, word for word.
TWO_FACTOR_ENROLMENT_REQUIRED = ("two_factor_enrolment_required",
                                 "This project requires two-factor login: set it up in your profile first.")

# ---- service-to-service headers (believed only on a signed call, see internal_auth) --
ACTOR_HEADER = "X-Parley-Actor"                    # the operator the gateway authenticated, JSON
CLIENT_ADDRESS_HEADER = "X-Parley-Client-Address"  # the caller's address as the gateway saw it
TIMESTAMP_HEADER = "X-Parley-Timestamp"
SIGNATURE_HEADER = "X-Parley-Signature"
# Headers whose values are covered by the signature when present: anything a service
# decides on (who acts, from where, with which credentials, under which command id).
SIGNED_HEADERS = (ACTOR_HEADER, CLIENT_ADDRESS_HEADER, "Authorization", "Cookie", "Idempotency-Key")

# ---- stream ids ---------------------------------------------------------------------
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def canonical_uuid(value: object) -> str | None:
    """The lowercase hyphenated form, or None. Strict on purpose: `uuid.UUID` also takes
    braces, `urn:uuid:` and bare hex, which would give one id several spellings."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    if not _UUID.fullmatch(lowered):  # fullmatch: `$` would let a trailing newline through
        return None
    return str(uuid.UUID(lowered))


def conversation_stream(conversation_id: str) -> str:
    return f"conversation-{conversation_id}"


def operator_stream(operator_id: str) -> str:
    return f"operator-{operator_id}"


def project_stream(project_id: str) -> str:
    return f"project-{project_id}"


def template_stream(template_id: str) -> str:
    return f"template-{template_id}"


def id_of(stream_id: str) -> str:
    """`conversation-<uuid>` -> `<uuid>` (the id part of any stream id)."""
    return stream_id.split("-", 1)[1]


# ---- who may see a conversation ----------------------------------------------------------

def operator_may_see(conversation_project: str, assignee_id: str | None, *, project_id: str, operator_id: str,
                     is_admin: bool) -> bool:
    """An operator sees the unclaimed conversations of their project and their own; an
    admin sees every conversation of the project. Nobody sees another project's."""
    return conversation_project == project_id and (is_admin or assignee_id is None or assignee_id == operator_id)
