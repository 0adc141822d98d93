"""A local mail sink for `make run` and the tests (issue 24, item 5): an SMTP server
(aiosmtpd) that keeps every message it is given, in memory, and an HTTP page that shows
them (`/`) and lists them as JSON (`GET /api/messages`). No mail leaves the machine.

    python -m devstack.mail_sink --smtp-port 8087 --http-port 8088"""
from __future__ import annotations

import argparse
import asyncio
import html
from datetime import datetime, timezone
from email import message_from_bytes, policy
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP

MAX_KEPT = 500


class Sink:
    """What was caught, newest last, and the SMTP side's handler."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.server: asyncio.AbstractServer | None = None

    async def handle_DATA(self, server, session, envelope) -> str:   # aiosmtpd's handler hook
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        page = parsed.get_body(preferencelist=("html",))
        self.messages.append({
            "id": len(self.messages) + 1, "received_at": datetime.now(timezone.utc).isoformat(),
            "mail_from": envelope.mail_from, "rcpt_to": list(envelope.rcpt_tos), "message_id": parsed["Message-ID"],
            "from": parsed["From"], "to": parsed["To"], "subject": parsed["Subject"],
            "text": text.get_content() if text is not None else "", "html": page.get_content() if page is not None else ""})
        del self.messages[:-MAX_KEPT]
        return "250 Message accepted for delivery"

    async def start_smtp(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self, hostname="parley-mail-sink"), host, port)

    async def stop_smtp(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def http_app(sink: Sink) -> web.Application:
    async def messages(_: web.Request) -> web.Response:
        return web.json_response({"messages": sink.messages})

    async def page(_: web.Request) -> web.Response:
        rows = "".join(
            f"<article><h2>{html.escape(m['subject'] or '')}</h2><p><small>{html.escape(m['from'] or '')} → "
            f"{html.escape(m['to'] or '')} · {html.escape(m['received_at'])}</small></p>"
            f"<pre>{html.escape(m['text'])}</pre></article>" for m in reversed(sink.messages))
        body = (f'<!doctype html><html><head><meta charset="utf-8"><title>Parley mail sink</title>'
                f'<meta http-equiv="refresh" content="5"></head><body style="font-family:system-ui;max-width:900px;'
                f'margin:2em auto"><h1>Mail caught ({len(sink.messages)})</h1>'
                f'{rows or "<p>No mail yet. Ask for a transcript from the widget.</p>"}</body></html>')
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/api/messages", messages)
    return app


async def serve(smtp_port: int, http_port: int, host: str = "127.0.0.1") -> None:
    sink = Sink()
    await sink.start_smtp(host, smtp_port)
    runner = web.AppRunner(http_app(sink))
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()
    print(f"mail sink: SMTP on {host}:{smtp_port}, mail at http://{host}:{http_port}/", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.mail_sink", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.smtp_port, args.http_port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
