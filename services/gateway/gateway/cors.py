"""CORS for what the widget calls from the site's own pages (another origin than the
gateway's). No cookies travel on these routes: the widget authenticates with its visitor
token, and each route checks the Origin against the project's sites itself (config is
public, files need the token), so echoing the Origin gives nothing away."""
from __future__ import annotations

from aiohttp import web

from parley.http import Rejected, error_response

WIDGET_PATHS = ("/api/widget/config", "/api/visitor/", "/files/")


@web.middleware
async def widget_cors(request: web.Request, handler):
    origin = request.headers.get("Origin")
    if origin is None or not request.path.startswith(WIDGET_PATHS):
        return await handler(request)
    if request.method == "OPTIONS":
        response = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Content-Type, X-File-Name, X-Parley-Visitor-Token",
            "Access-Control-Max-Age": "600"})
    else:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            response = e
        except Rejected as e:  # the widget must be able to read why it was refused
            response = error_response(e.status, e.code, e.message, e.headers)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    if isinstance(response, web.HTTPException):
        raise response
    return response
