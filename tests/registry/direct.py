"""The operator-registry called as the gateway calls it: signed (stack.registry_client),
with the caller's address in the signed X-Parley-Client-Address header and the
operator's token as a bearer. For tests that must not depend on the gateway."""
from __future__ import annotations

import uuid
from typing import Any

from parley.contract import CLIENT_ADDRESS_HEADER
from parley.service_client import Answer, path

DEFAULT_ADDRESS = "198.51.100.1"


class Registry:
    def __init__(self, stack):
        self.client = stack.registry_client

    async def call(self, method: str, *segments: str, token: str | None = None, json: Any = None,
                   body: bytes | None = None, params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None, address: str | None = DEFAULT_ADDRESS,
                   content_type: str | None = None) -> Answer:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if address is not None:
            sent[CLIENT_ADDRESS_HEADER] = address
        if body is not None and content_type is None:
            content_type = "application/json"
        return await self.client.call(method, path(*segments), json=json, body=body, params=params, headers=sent,
                                      content_type=content_type)

    async def try_login(self, email: str, password: str, *, project: str = "demo",
                        address: str | None = DEFAULT_ADDRESS, headers: dict[str, str] | None = None) -> Answer:
        return await self.call("POST", "api", "session", json={"project": project, "email": email, "password": password},
                               address=address, headers=headers)

    async def login(self, email: str, password: str, *, project: str = "demo",
                    address: str | None = DEFAULT_ADDRESS) -> str:
        r = await self.try_login(email, password, project=project, address=address)
        assert r.status == 201, r.raw
        return r.body["token"]

    async def add_operator(self, token: str, name: str, *, admin: bool = False,
                           password: str = "operator-pass-1") -> tuple[str, str, str]:
        """(operator id, a session token of theirs, their email)."""
        email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.com"
        r = await self.call("POST", "api", "operators", token=token,
                            json={"name": name, "email": email, "password": password, "is_admin": admin})
        assert r.status == 201, r.raw
        return r.body["id"], await self.login(email, password), email

    async def me(self, token: str) -> dict:
        r = await self.call("GET", "api", "session", token=token)
        assert r.status == 200, r.raw
        return r.body


def code(answer: Answer) -> str | None:
    return answer.body.get("error", {}).get("code") if isinstance(answer.body, dict) else None
