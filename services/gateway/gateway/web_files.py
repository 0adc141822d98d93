"""The web's own files, served as they are: the widget, the demo page, the operator
app and the first-run page. They live in the repository's top-level `web/` (no build
step; ES modules), the image has them at PARLEY_WEB_DIR. Each route says its own
caching and Content-Security-Policy, because each kind of page needs another."""
from __future__ import annotations

from aiohttp import web

from parley.config import env, resolve_path

WEB = resolve_path(env("PARLEY_WEB_DIR"))
APP = WEB / "app"


async def widget_js(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "widget.js", headers={
        "Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "public, max-age=300",
        "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"})


async def demo(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "demo.html", headers={"Content-Type": "text/html; charset=utf-8"})


async def operator_app(_: web.Request) -> web.StreamResponse:
    """The operator app's shell; its modules and assets are under /app/static/."""
    return web.FileResponse(APP / "index.html", headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data:; "
                                   "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"})


async def service_worker(_: web.Request) -> web.StreamResponse:
    # Served from /app/ so that its scope is the whole app.
    return web.FileResponse(APP / "sw.js", headers={
        "Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/demo", demo)
    app.router.add_get("/app", operator_app)
    app.router.add_get("/app/", operator_app)
    app.router.add_get("/app/sw.js", service_worker)
    app.router.add_static("/app/static", APP)
