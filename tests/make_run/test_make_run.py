"""`make run`, as a newcomer types it: it becomes ready (every service's /readyz
answers 200), prints where things are, a lead sent from the demo reaches the local CRM
stand-in with the right manager, and Ctrl-C leaves no process behind. Run twice in the
same folder, so the second start (data already there, an admin's CRM choice to keep) is
covered too."""
import asyncio
import os
import random
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import pytest
from playwright.async_api import async_playwright

from parley.config import REPO_ROOT, env
from devstack.procs import port_is_free
from devstack.run import SERVICES, STANDIN_OFFSET
from tests.make_run.processes import ctrl_c, make_run_until_ready, status
from tests.chromium import ARGS, CHROMIUM, screenshot_path
from tests.visitor import ScriptedVisitor

ARTIFACTS = REPO_ROOT / "test-artifacts"


def free_port_block(size: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if all(port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def processes_of(run_dir: Path) -> list[str]:
    """Every live process that belongs to this run: started with the run folder in its
    command line or environment."""
    found = []
    marker = str(run_dir).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {command[:200]}")
    return found


def login(base: int, email: str, password: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{base}/api/session", method="POST", headers={"Content-Type": "application/json"},
        data=orjson.dumps({"project": "demo", "email": email, "password": password}))
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def call(method: str, url: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=None if body is None else orjson.dumps(body))
    with urllib.request.urlopen(request, timeout=10) as r:
        return orjson.loads(r.read())


def owner_token(base: int) -> str:
    return call("POST", f"http://127.0.0.1:{base}/api/session", body={
        "project": "demo", "email": env("PARLEY_OWNER_EMAIL"), "password": env("PARLEY_OWNER_PASSWORD")})["token"]


async def a_visitor_writes(base: int) -> None:
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{base}") as client:
        visitor = ScriptedVisitor(client)
        await visitor.start()
        await visitor.send_and_wait("Hello! A quote for 10 licenses, please.")
        await visitor.ws.send_json({"type": "contacts", "name": "Maria Ivanova", "phone": "+7 900 123-45-67"})
        await visitor.send_and_wait("My phone is above.")
        await visitor.drop()


async def title_behind(link: str) -> str:
    """Chromium follows a lead's link, logs in as the owner, and reads the conversation's title."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(link)
            await page.get_by_test_id("login-project").fill("demo")
            await page.get_by_test_id("login-email").fill(env("PARLEY_OWNER_EMAIL"))
            await page.get_by_test_id("login-password").fill(env("PARLEY_OWNER_PASSWORD"))
            await page.get_by_test_id("login-password").press("Enter")
            title = page.locator("#conv-title")
            await title.filter(has_text="Maria").wait_for(timeout=15000)
            await page.screenshot(path=screenshot_path("lead-link-opens-the-conversation"))
            return await title.inner_text()
        finally:
            await browser.close()


def eventually(read, enough, timeout: float = 30):
    """`read()` once `enough` of it is true, or its last value after `timeout` seconds: the
    inbox and the CRM are fed asynchronously, from Kafka."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if enough(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def check_a_lead_reaches_the_standin(base: int, run_dir: Path) -> None:
    """What a newcomer does: write on the demo page, take the conversation as the owner,
    "Send to CRM"; the lead appears in the stand-in, the owner's manager responsible."""
    token = owner_token(base)
    gateway = f"http://127.0.0.1:{base}"
    secret = (run_dir / "crm-standin-secret").read_text().strip()
    shown = call("GET", f"{gateway}/api/project/crm", token)
    assert shown["kind"] == "bitrix24", shown
    assert secret not in orjson.dumps(shown).decode()
    hook = f"http://127.0.0.1:{base + STANDIN_OFFSET}/rest/1/{secret}/"
    [owners_manager] = call("POST", f"{hook}user.get.json", body={"FILTER": {"EMAIL": env("PARLEY_OWNER_EMAIL")}})[
        "result"]
    assert shown["default_responsible"] not in (None, owners_manager["ID"])  # so the match is what picks it

    asyncio.run(a_visitor_writes(base))
    [conversation] = eventually(lambda: call("GET", f"{gateway}/api/inbox?view=new", token)["conversations"], len)
    call("POST", f"{gateway}/api/conversations/{conversation['id']}/take", token)
    call("POST", f"{gateway}/api/conversations/{conversation['id']}/lead", token)
    # A second click is refused, not a second lead (issue 19).
    with pytest.raises(urllib.error.HTTPError) as again:
        call("POST", f"{gateway}/api/conversations/{conversation['id']}/lead", token)
    assert again.value.code == 409 and orjson.loads(again.value.read())["error"]["code"] == "lead_already_sent"
    leads = eventually(lambda: call("GET", f"http://127.0.0.1:{base + STANDIN_OFFSET}/_leads")["bitrix24"], len)
    assert len(leads) == 1, leads
    assert leads[0]["ASSIGNED_BY_ID"] == owners_manager["ID"], leads
    assert leads[0]["TITLE"] == "Chat: Maria Ivanova", leads
    # The lead links back to the conversation where this run's gateway is, not :8080, and a
    # manager who follows it in a browser lands on that conversation after logging in.
    link = f"http://localhost:{base}/app/#/conversations/{conversation['id']}"
    assert link in leads[0]["COMMENTS"], leads
    assert asyncio.run(title_behind(link)) == "Maria Ivanova"
    assert status(f"http://127.0.0.1:{base + STANDIN_OFFSET}/") == 200  # the page the banner points at


def check_working_hours_switch_the_widget(base: int) -> None:
    """The scheduler is wired in: the demo starts always open; hours that never open close
    the widget at once (then put back as they were)."""
    token, gateway = owner_token(base), f"http://127.0.0.1:{base}"
    config = f"{gateway}/api/widget/config?project=demo"
    assert call("GET", config)["open"] is True
    before = call("GET", f"{gateway}/api/project/schedule", token)
    assert before["show_any_time"] is True
    call("PUT", f"{gateway}/api/project/schedule", token, {**before, "show_any_time": False, "week": {}})
    assert eventually(lambda: call("GET", config), lambda c: c["open"] is False, timeout=10)["open"] is False
    call("PUT", f"{gateway}/api/project/schedule", token, before)
    assert eventually(lambda: call("GET", config), lambda c: c["open"] is True, timeout=10)["open"] is True


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (IPv4, from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.slow
def test_make_run_becomes_ready_and_ctrl_c_leaves_nothing_behind(tmp_path):
    run_dir = tmp_path / "run"
    base = free_port_block(STANDIN_OFFSET + 1)  # the services, the gateway's internal port, the CRM stand-in
    timings = []
    admins_choice = None
    for attempt in ("first", "second"):
        proc, seconds, output = make_run_until_ready(run_dir, base)
        try:
            timings.append(f"{attempt} run ready in {seconds:.1f} s")
            assert "Gateway:" in output and f"http://localhost:{base}" in output
            assert "Owner login:" in output
            assert f"CRM stand-in (leads):            http://localhost:{base + STANDIN_OFFSET}/" in output
            for i, (name, _) in enumerate(SERVICES):
                assert status(f"http://127.0.0.1:{base + i}/readyz") == 200, name
                assert status(f"http://127.0.0.1:{base + i}/healthz") == 200, name
            # only the gateway's public port is open beyond loopback; metrics are internal
            assert listening_addresses(base) == {"0.0.0.0"}
            for port in range(base + 1, base + STANDIN_OFFSET + 1):
                assert listening_addresses(port) == {"127.0.0.1"}, port
            assert status(f"http://127.0.0.1:{base}/metrics") == 404
            assert status(f"http://127.0.0.1:{base + len(SERVICES)}/metrics") == 200
            # and the services behind it answer signed calls only
            assert status(f"http://127.0.0.1:{base + 1}/api/inbox?view=all") == 401
            # the demo project is seeded: the printed owner login works through the gateway
            assert login(base, env("PARLEY_OWNER_EMAIL"), env("PARLEY_OWNER_PASSWORD")) == 201
            crm = f"http://127.0.0.1:{base}/api/project/crm"
            if attempt == "first":
                check_a_lead_reaches_the_standin(base, run_dir)
                check_working_hours_switch_the_widget(base)
                # An admin's own choice, which the next start must leave alone.
                admins_choice = call("PUT", crm, owner_token(base), {"kind": "bitrix24", "default_responsible": "3"})
            else:
                assert call("GET", crm, owner_token(base)) == admins_choice
        finally:
            rest = ctrl_c(proc)
        assert "stopped." in rest, rest
        leftovers = processes_of(run_dir)
        assert leftovers == [], f"processes left after Ctrl-C: {leftovers}"
        assert all(port_is_free(base + i) for i in range(STANDIN_OFFSET + 1))

    for name, _ in SERVICES:  # every service logged structured JSON
        lines = (run_dir / "logs" / f"{name}.log").read_text().splitlines()
        entries = [orjson.loads(line) for line in lines if line.startswith("{")]
        assert entries and all(e["service"] == name for e in entries), name
        assert any(e["msg"] == "stopped" for e in entries), f"{name} did not shut down gracefully"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "make-run-timings.txt").write_text("\n".join(timings) + "\n")
