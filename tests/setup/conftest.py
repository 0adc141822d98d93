"""The setup page's form; the installation with no project yet is tests/stack.py's `fresh`."""
from __future__ import annotations

from gateway.setup_routes import setup_token


def setup_form(**changes) -> dict:
    form = {"token": setup_token(), "project_id": "acme", "project_name": "ACME Shop", "owner_name": "Alice Owner",
            "owner_email": "alice@acme.example", "password": "correct horse battery", "language": "en"}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not ...}
