"""Presence across two gateways (issue 13, item 1): an operator is online while an app
of theirs is open on either gateway, stays online when one of two tabs closes, and is
offline once the last one has been closed for the grace period; their switch (away)
wins while the app is open. The admin's app hears each change, the widget's config
says whether someone is online, and heartbeats never reach the event store."""
from __future__ import annotations

import time

from parley.service import POOL

from tests.presence.conftest import GRACE_SECONDS, add_operator, own_project
from tests.support import AppSocket
from tests.support import eventually


async def _status(stack, project: str, operator_id: str) -> str:
    r = await stack.registry_client.call("GET", f"/internal/presence/{project}")
    assert r.status == 200
    return "online" if operator_id in {o["id"] for o in r.body["operators"]} else "not online"


async def _widget_online(gateway, project: str) -> bool:
    r = await gateway.get("/api/widget/config", params={"project": project})
    assert r.status == 200, await r.text()
    return (await r.json())["online"]


async def test_presence_across_two_gateways_and_a_closing_tab(stack, gateway_b):
    project, owner = await own_project(stack)
    ann, ann_token = await add_operator(stack, project, owner, "Ann")
    admin_app = await AppSocket.open(gateway_b, owner)      # the admin watches from the other gateway
    await eventually(lambda: _widget_online(stack.gateway, project), timeout=10,
                     what="the widget told someone is online (the owner's own app is open)")
    tab_a = await AppSocket.open(stack.gateway, ann_token)
    tab_b = await AppSocket.open(gateway_b, ann_token)
    await eventually(lambda: any(f["operator_id"] == ann and f["status"] == "online"
                                 for f in admin_app.of_type("presence")), timeout=10, what="admin told Ann is online")
    assert await _status(stack, project, ann) == "online"

    # One tab closes: the other (on the other gateway) keeps her online past the grace.
    await tab_a.close()
    closed_at = time.monotonic()
    await eventually(lambda: time.monotonic() - closed_at > GRACE_SECONDS * 2, timeout=10)
    assert await _status(stack, project, ann) == "online"

    # Her switch: away while the app is open (not offered conversations, not "online").
    r = await stack.call("PUT", "/api/presence", ann_token, json={"status": "away"})
    assert r.status == 200 and (await r.json()) == {"chosen": "away", "status": "away"}
    assert await _status(stack, project, ann) == "not online"
    r = await stack.call("PUT", "/api/presence", ann_token, json={"status": "online"})
    assert (await r.json())["status"] == "online"
    r = await stack.call("PUT", "/api/presence", ann_token, json={"status": "busy"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "status_invalid"

    # The last tab closes: offline after the grace, and the admin hears it.
    await tab_b.close()
    await eventually(lambda: any(f["operator_id"] == ann and f["status"] == "offline"
                                 for f in admin_app.of_type("presence")), timeout=10, what="Ann offline")
    assert await _status(stack, project, ann) == "not online"
    statuses = [f["status"] for f in admin_app.of_type("presence") if f["operator_id"] == ann]
    assert statuses == ["online", "away", "online", "offline"]

    # Admins see everyone; the widget goes offline when nobody is online.
    r = await stack.call("GET", "/api/presence", owner)
    listed = {o["id"]: o["status"] for o in (await r.json())["operators"]}
    assert listed[ann] == "offline"
    r = await stack.call("GET", "/api/presence", ann_token)
    assert "operators" not in await r.json()
    await admin_app.close()
    await eventually(lambda: _nobody(stack, project), timeout=10, what="nobody online")
    assert await _widget_online(gateway_b, project) is False

    # Changes are events; heartbeats are not.
    events = await stack.registry.app[POOL].fetch(
        "select type, data from events where stream_id = $1 order by stream_version", f"presence-{ann}")
    assert [e["data"]["status"] for e in events] == ["online", "away", "online", "offline"]


async def _nobody(stack, project: str) -> bool:
    r = await stack.registry_client.call("GET", f"/internal/presence/{project}")
    return r.body["operators"] == []
