"""What a live visitor's widget says of their visit, cleaned (issue 24, item 2). Pure.

The widget keeps its visit in the browser (widget.js: a visit ends after 30 minutes
without a page) and tells the gateway on every page with a `page` frame: the page's URL
and title, the visit's landing page and referrer, when it started, how many pages it has
seen and the last few. Like page_url on a message, what the page says is the site's
business: it is cut to size, never refused; a field of the wrong type is no field.

The view (`visit`) is what operators see and what gateways tell each other: it holds no
history beyond the visit's last PAGES_KEPT pages, and is gone when the visitor leaves."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from parley.text import strip_controls

URL_MAX = 2000          # as a conversation's page_url (conversation/domain.py)
TITLE_MAX = 200
PAGES_KEPT = 5
PAGES_SEEN_MAX = 100_000
VISIT_MAX_SECONDS = 24 * 3600   # a visit that says it started earlier started a day ago
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
UTM_VALUE_MAX = 256
INVITATION_TEXT_MAX = 1000

def text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return strip_controls(value).strip()[:limit].strip() or None


def url(value: Any) -> str | None:
    """An http(s) URL as the page gave it, cut to URL_MAX; anything else is no URL (a
    `javascript:` link is never shown to an operator as one)."""
    found = text(value, URL_MAX)
    return found if found and found.lower().startswith(("http://", "https://")) else None


def utm(landing_url: str | None) -> dict[str, str]:
    """The campaign the visit came from: the landing page's utm_* params."""
    if not landing_url:
        return {}
    try:
        pairs = parse_qsl(urlsplit(landing_url).query, keep_blank_values=False)
    except ValueError:
        return {}
    found = {}
    for key, value in pairs:
        if key in UTM_KEYS and key not in found and (cleaned := text(value, UTM_VALUE_MAX)):
            found[key] = cleaned
    return found


def _instant_ms(value: Any, now_ms: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return int(min(max(value, now_ms - VISIT_MAX_SECONDS * 1000), now_ms))


def page_view(data: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """The visit as a `page` frame tells it, cleaned: the current page (url, title), the
    landing page's referrer and UTM, when the visit started (epoch ms, not in the future
    and at most a day ago), pages seen (at least the current one) and the last pages,
    newest first."""
    current = url(data.get("url"))
    pages = []
    raw_pages = data.get("pages") if isinstance(data.get("pages"), list) else []
    for page in raw_pages[:PAGES_KEPT]:
        if isinstance(page, dict) and (page_url := url(page.get("url"))):
            pages.append({"url": page_url, "title": text(page.get("title"), TITLE_MAX),
                          "at": _instant_ms(page.get("at"), now_ms) or now_ms})
    if current and (not pages or pages[0]["url"] != current):
        pages = [{"url": current, "title": text(data.get("title"), TITLE_MAX), "at": now_ms}, *pages][:PAGES_KEPT]
    seen = data.get("pages_seen")
    seen = seen if isinstance(seen, int) and not isinstance(seen, bool) else 1
    landing = url(data.get("landing_url"))
    return {"url": current, "title": text(data.get("title"), TITLE_MAX), "referrer": url(data.get("referrer")),
            "landing_url": landing, "utm": utm(landing or current),
            "started_at": _instant_ms(data.get("started_at"), now_ms) or now_ms,
            "pages_seen": min(max(seen, len(pages), 1), PAGES_SEEN_MAX), "pages": pages}


def visit(visitor_id: str, project_id: str, page: dict[str, Any] | None, *, params: dict[str, Any],
          conversation_id: str | None, chatting: bool, invitation: dict[str, Any] | None,
          connected_at: int) -> dict[str, Any]:
    """One live visitor as operators see them (`GET /api/visitors/live`, the `visitors`
    frame) and as gateways tell each other (visitors.signals). Time on site is
    now - started_at, counted where it is shown."""
    page = page or {"url": None, "title": None, "referrer": None, "landing_url": None, "utm": {},
                    "started_at": connected_at, "pages_seen": 1, "pages": []}
    return {"visitor_id": visitor_id, "project_id": project_id, **page, "params": dict(params),
            "conversation_id": conversation_id, "chatting": chatting, "invitation": invitation}


def invitation_text(value: Any) -> str:
    """An operator's invitation: the words they typed, 1-INVITATION_TEXT_MAX characters."""
    if not isinstance(value, str) or not (cleaned := strip_controls(value).strip()):
        raise ValueError("text_required")
    if len(cleaned) > INVITATION_TEXT_MAX:
        raise ValueError("text_too_long")
    return cleaned
