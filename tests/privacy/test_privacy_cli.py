"""Issue 20's command line, as an operations engineer runs it with the services'
environment: `python -m parley.admin privacy export` prints the JSON document (the lead
included), `privacy erase --yes` erases by email, prints its progress and the CRM lead
to erase there, and the export afterwards holds nothing of the person. A subject named
twice, or a malformed email, is refused with a clear message and exit status 1."""
from __future__ import annotations

import asyncio
import os
import sys

import orjson

from tests.crm_bridge.test_handoff import OWNER_EMAIL, OWNER_PASSWORD, configure, wait_settled
from tests.privacy.marked import marked_conversation
from tests.stack import by_host_name


async def admin(stack, bridge, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PARLEY_CONVERSATION_URL": by_host_name(stack.conversation),
           "PARLEY_CRM_BRIDGE_URL": by_host_name(bridge.client)}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "parley.admin", "privacy", *args, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    return process.returncode, out.decode(), err.decode()


async def test_export_and_erase_from_the_command_line(crm_stack):
    stack, bridge = crm_stack, crm_stack.bridge
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    await configure(stack, owner, default_responsible="9")
    cid, mark, _ = await marked_conversation(stack, owner)
    await wait_settled(bridge, 1)
    email = f"{mark.lower()}@example.com"

    code, out, err = await admin(stack, bridge, "export", "--project", "demo", "--email", email)
    assert code == 0, err
    exported = orjson.loads(out)
    assert [c["id"] for c in exported["conversations"]] == [cid] and mark in out
    assert [lead["lead_id"] for lead in exported["conversations"][0]["leads"]] == ["100"]

    code, out, err = await admin(stack, bridge, "erase", "--project", "demo", "--email", "not an email", "--yes")
    assert code == 1 and "email_invalid" in err and "Traceback" not in err
    code, out, err = await admin(stack, bridge, "erase", "--project", "demo", "--email", email, "--yes")
    assert code == 0, err
    assert "done: 1 conversation(s)" in out and "lead 100" in out and "erasing:" in out

    code, out, err = await admin(stack, bridge, "export", "--project", "demo", "--conversation-id", cid)
    assert code == 0 and mark not in out and orjson.loads(out)["conversations"][0]["erased_at"]
