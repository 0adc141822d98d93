"""The one shape of a refusal by a service's rules: a machine-readable code, a human
message, and what kind of refusal it is. Domains raise it without knowing HTTP;
parley.http turns the kind into a status in one place, for a single call and for each
call of a batch alike (parley.call_batches)."""
from __future__ import annotations

from typing import Literal

Kind = Literal["not_found", "forbidden", "conflict", "invalid", "too_large"]

STATUS_OF: dict[str, int] = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422, "too_large": 413}


class DomainError(Exception):
    """A command refused by the rules. A subclass may name its kind once (`kind = "forbidden"`)."""
    kind: Kind = "invalid"

    def __init__(self, code: str, message: str, kind: Kind | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        if kind is not None:
            self.kind = kind
