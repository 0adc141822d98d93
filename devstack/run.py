"""`make run`: Kafka, PostgreSQL, the five services and the local CRM stand-in, until Ctrl-C.

Prints where everything is once every service's /readyz answers 200, after pointing
the demo project's CRM at the stand-in (only while it has none, so an admin's own
choice survives a re-run). Ctrl-C (or SIGTERM) stops the services gracefully, then
the broker and the database; children are tied to this process, so even a killed run
leaves no stray process behind."""
from __future__ import annotations

import fcntl
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from parley.config import env, resolve_path
from devstack import components
from devstack.procs import answers_200, say, spawn, stop, wait_until
from parley.service_names import SERVICES

# (service, python module) in start order; ports are PARLEY_PORT_BASE + index.
# The CRM stand-in's port: after the services and the gateway's internal port (base + 5).
STANDIN_OFFSET = 6
# The mail sink's SMTP and web ports: the next two of the range.
MAIL_SMTP_OFFSET, MAIL_WEB_OFFSET = 7, 8


def _kept_secret(run_dir: Path, name: str) -> str:
    """One per run folder, kept: visitors stay who they are across restarts, and a
    service restarted by hand still talks to the others."""
    path = run_dir / name
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    """One JSON call; an error answer raises RuntimeError with the server's message."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=None if body is None else orjson.dumps(body))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {urlsplit(url).path} answered {e.code}: "
                           f"{e.read().decode(errors='replace')[:300]}") from None


def _configure_demo_crm(gateway: str, webhook_url: str) -> str:
    """Points the demo project's CRM at the stand-in through the public API, as its owner
    would, unless it already has one (an admin's choice is never overwritten). Returns
    what was done."""
    owner = env("PARLEY_OWNER_EMAIL")
    token = _call("POST", f"{gateway}/api/session",
                  {"project": "demo", "email": owner, "password": env("PARLEY_OWNER_PASSWORD")})["token"]
    kind = _call("GET", f"{gateway}/api/project/crm", token=token)["kind"]
    if kind != "none":
        return f"the demo project's CRM is already set ({kind}); left as it is"
    # Another manager than the owner's by default, so a lead sent by the owner shows the
    # operator's own manager being picked, not the fallback.
    users = _call("POST", f"{webhook_url}user.get.json", {"FILTER": {"ACTIVE": True}})["result"]
    default = next((u["ID"] for u in users if u["EMAIL"].lower() != owner.lower()), None)
    _call("PUT", f"{gateway}/api/project/crm", {"kind": "bitrix24", "webhook_url": webhook_url,
                                                "default_responsible": default, "source_name": "Parley chat"},
          token=token)
    return "the demo project's CRM is now the local stand-in (Bitrix24 webhook)"


def _configure_demo_email(gateway: str, smtp_port: int) -> str:
    """Points the demo project's email at the local mail sink, as its owner would, unless
    it already has settings (an admin's choice is never overwritten)."""
    token = _call("POST", f"{gateway}/api/session", {"project": "demo", "email": env("PARLEY_OWNER_EMAIL"),
                                                     "password": env("PARLEY_OWNER_PASSWORD")})["token"]
    if _call("GET", f"{gateway}/api/project/email", token=token)["configured"]:
        return "the demo project's email is already set; left as it is"
    _call("PUT", f"{gateway}/api/project/email", {
        "host": "localhost", "port": smtp_port, "security": "none", "from_address": "chat@parley.local",
        "from_name": "Parley demo store", "language": "en", "on_close": True}, token=token)
    return "the demo project's email goes to the local mail sink"


def _lock_run_dir(run_dir: Path):
    lock = open(run_dir / "run.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another `make run` is using {run_dir}; stop it, or set PARLEY_RUN_DIR "
                         "and PARLEY_PORT_BASE to run a second one beside it.")
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def main() -> int:
    started = time.monotonic()
    run_dir = resolve_path(env("PARLEY_RUN_DIR")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock_run_dir(run_dir)
    logs_dir = run_dir / "logs"
    logs_dir.mkdir(exist_ok=True)
    base = int(env("PARLEY_PORT_BASE"))

    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    comps = None
    procs: dict[str, object] = {}
    try:
        comps = components.start(run_dir)
        child_env = {**os.environ, "DATABASE_URL": comps.database_url,
                     "KAFKA_BOOTSTRAP_SERVERS": comps.bootstrap, "PYTHONUNBUFFERED": "1",
                     # By host name, as compose and k8s reach services.
                     "PARLEY_OPERATOR_REGISTRY_URL": f"http://localhost:{base + 2}",
                     "PARLEY_CONVERSATION_URL": f"http://localhost:{base + 1}",
                     "PARLEY_CRM_BRIDGE_URL": f"http://localhost:{base + 3}",
                     "PARLEY_SCHEDULER_URL": f"http://localhost:{base + 4}",
                     "PARLEY_INTERNAL_PORT": str(base + 5),
                     "PARLEY_VISITOR_SECRET": env("PARLEY_VISITOR_SECRET") or _kept_secret(run_dir, "visitor-secret"),
                     "PARLEY_INTERNAL_SECRET": env("PARLEY_INTERNAL_SECRET") or _kept_secret(run_dir, "internal-secret"),
                     # The lead's link back to its conversation (crm-bridge) and the
                     # gateway's own address follow the port base unless told otherwise.
                     "PARLEY_PUBLIC_URL": env("PARLEY_PUBLIC_URL") or f"http://localhost:{base}",
                     "PARLEY_SEED_DEMO": "1"}  # a newcomer tries project demo at once
        # The stand-in is in memory: a restart forgets its leads, but the kept secret
        # keeps the demo project's stored webhook URL valid. Its seeded manager #1 has
        # the owner's email (PARLEY_OWNER_EMAIL, inherited like every setting).
        standin_port = base + STANDIN_OFFSET
        standin = f"http://localhost:{standin_port}"
        standin_secret = _kept_secret(run_dir, "crm-standin-secret")
        say(f"starting the CRM stand-in on :{standin_port} (log: {logs_dir / 'crm-standin.log'})")
        procs["crm-standin"] = spawn(
            [sys.executable, "-m", "crm_bridge.standin", "--port", str(standin_port), "--secret", standin_secret,
             "--webhook-secret", _kept_secret(run_dir, "crm-standin-webhook-secret")],
            log_path=logs_dir / "crm-standin.log", env=child_env)
        mail_smtp, mail_web = base + MAIL_SMTP_OFFSET, base + MAIL_WEB_OFFSET
        say(f"starting the mail sink: SMTP :{mail_smtp}, mail at :{mail_web} (log: {logs_dir / 'mail-sink.log'})")
        procs["mail-sink"] = spawn([sys.executable, "-m", "devstack.mail_sink", "--smtp-port", str(mail_smtp),
                                    "--http-port", str(mail_web)], log_path=logs_dir / "mail-sink.log", env=child_env)
        # crm-bridge refuses loopback CRM addresses unless told otherwise; only here, for the stand-in.
        extra_env = {"crm-bridge": {"PARLEY_CRM_ALLOW_PRIVATE": "1"}}
        for i, (name, module) in enumerate(SERVICES):
            say(f"starting {name} on :{base + i} (log: {logs_dir / (name + '.log')})")
            procs[name] = spawn([sys.executable, "-m", module], log_path=logs_dir / f"{name}.log",
                                env={**child_env, "PARLEY_HTTP_PORT": str(base + i), **extra_env.get(name, {})})
        wait_until("the CRM stand-in", lambda: answers_200(f"http://127.0.0.1:{standin_port}/_leads"),
                   timeout=60, alive=lambda: procs["crm-standin"].poll() is None)
        wait_until("the mail sink", lambda: answers_200(f"http://127.0.0.1:{mail_web}/api/messages"),
                   timeout=60, alive=lambda: procs["mail-sink"].poll() is None)
        for i, (name, _) in enumerate(SERVICES):
            proc = procs[name]
            wait_until(f"{name} /readyz", lambda: answers_200(f"http://127.0.0.1:{base + i}/readyz"),
                       timeout=120, alive=lambda: proc.poll() is None)
        gateway = f"http://localhost:{base}"
        try:
            say(_configure_demo_crm(gateway, f"{standin}/rest/1/{standin_secret}/"))
        except Exception as e:  # the chat works without a CRM: say so, and keep running
            say(f"could not point the demo project's CRM at the CRM stand-in: {e}. Everything else runs, "
                f"but \"Send to CRM\" has nowhere to go: see {logs_dir} and restart `make run`, or set the CRM "
                "yourself (PUT /api/project/crm as the owner).")
        try:
            say(_configure_demo_email(gateway, mail_smtp))
        except Exception as e:  # the chat works without email
            say(f"could not point the demo project's email at the mail sink: {e}. Everything else runs; "
                "set it in Settings › Email.")
        print(f"""
Parley is ready in {time.monotonic() - started:.1f} s ({comps.kind}).

  Demo site with the chat widget:  {gateway}/demo
  Operator app:                    {gateway}/app
  Gateway:                         {gateway}  (health: {gateway}/readyz, metrics: http://127.0.0.1:{base + 5}/metrics)
  Owner login:                     project demo, {env('PARLEY_OWNER_EMAIL')} / {env('PARLEY_OWNER_PASSWORD')}
  CRM stand-in (leads):            {standin}/
  Mail sink (transcripts):         http://localhost:{mail_web}/  (SMTP :{mail_smtp})
  REST API:                        {gateway}/api/openapi.json
  Services:                        {', '.join(f'{n} :{base + i}' for i, (n, _) in enumerate(SERVICES))}
  Kafka:                           {comps.bootstrap}
  Logs:                            {logs_dir}

Press Ctrl-C to stop everything.
""", flush=True)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; see {logs_dir / (name + '.log')}. Stopping.")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as e:
        say(f"could not start: {e}. Logs are in {logs_dir}.")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if procs:
            say("stopping services...")
        for name, proc in reversed(list(procs.items())):
            stop(proc)
        if comps:
            say("stopping Kafka and PostgreSQL...")
            comps.stop()
        say("stopped.")
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
