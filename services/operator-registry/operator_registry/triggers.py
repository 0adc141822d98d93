"""Proactive triggers (issue 24, item 3): an admin's "after N seconds on a page matching P
(and/or this many pages, a custom param), show message M once per visitor per day",
in Russian and English, on or off. Pure: the rules of what may be stored.

The widget (web/widget.js) decides when one fires - it knows the page, the time on it,
the visit's pages and params, whether the chat is open and someone online - and shows
it at most once a day per visitor and trigger. A trigger fires only within working
hours with someone online, and never to a visitor already chatting. The registry keeps
them with the project (`project.triggers_changed`) and the widget gets the enabled
ones with its configuration."""
from __future__ import annotations

import uuid
from typing import Any

from parley.contract import canonical_uuid
from parley.text import strip_controls

from operator_registry.widget_texts import LANGUAGES

TRIGGERS_MAX = 20
NAME_MAX = 80
PAGE_MAX = 300
TEXT_MAX = 500
SECONDS_MAX = 3600
PAGES_MAX = 100
PARAM_NAME_MAX = 64
PARAM_VALUE_MAX = 256


class TriggerRejected(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _text(value: Any, limit: int, what: str, code: str, *, required: bool = True, multiline: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise TriggerRejected(code, f"{what} is text.")
    cleaned = strip_controls(value)
    cleaned = (cleaned if multiline else cleaned.replace("\n", " ")).strip()
    if required and not cleaned:
        raise TriggerRejected(code, f"{what} is required.")
    if len(cleaned) > limit:
        raise TriggerRejected(code, f"{what} is at most {limit} characters.")
    return cleaned


def _whole(value: Any, low: int, high: int, what: str, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TriggerRejected(code, f"{what} is a whole number from {low} to {high}.")
    return value


def clean_trigger(raw: Any) -> dict[str, Any]:
    """One trigger as stored: id (kept, or made), name, enabled, page (a part of the URL,
    `*` for any characters; empty for every page), seconds on the page, pages seen at
    least, an optional custom param that must equal a value, and its text per language
    (at least one)."""
    if not isinstance(raw, dict):
        raise TriggerRejected("triggers_invalid", "Each trigger is an object.")
    name = _text(raw.get("name"), NAME_MAX, "A trigger's name", "trigger_name_invalid")
    given = raw.get("id")
    trigger_id = canonical_uuid(given) if given is not None else str(uuid.uuid4())
    if trigger_id is None:
        raise TriggerRejected("trigger_id_invalid", f"Trigger {name!r}: its id is a UUID (or none, for a new one).")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise TriggerRejected("trigger_enabled_invalid", f"Trigger {name!r}: enabled is true or false.")
    page = _text(raw.get("page"), PAGE_MAX, f"Trigger {name!r}: the page", "trigger_page_invalid", required=False)
    seconds = _whole(raw.get("seconds", 0), 0, SECONDS_MAX, f"Trigger {name!r}: seconds on the page",
                     "trigger_seconds_invalid")
    min_pages = _whole(raw.get("min_pages", 1), 1, PAGES_MAX, f"Trigger {name!r}: pages seen",
                       "trigger_min_pages_invalid")
    param = raw.get("param")
    if param is not None:
        if not isinstance(param, dict):
            raise TriggerRejected("trigger_param_invalid", f"Trigger {name!r}: param is {{name, value}} or null.")
        param = {"name": _text(param.get("name"), PARAM_NAME_MAX, f"Trigger {name!r}: the param's name",
                               "trigger_param_invalid"),
                 "value": _text(param.get("value"), PARAM_VALUE_MAX, f"Trigger {name!r}: the param's value",
                                "trigger_param_invalid")}
    texts = raw.get("text")
    if not isinstance(texts, dict) or set(texts) - set(LANGUAGES):
        raise TriggerRejected("trigger_text_invalid",
                              f"Trigger {name!r}: text is an object of {' and '.join(LANGUAGES)} texts.")
    text = {lang: cleaned for lang in LANGUAGES
            if (cleaned := _text(texts.get(lang), TEXT_MAX, f"Trigger {name!r}: the {lang} text",
                                 "trigger_text_invalid", required=False, multiline=True))}
    if not text:
        raise TriggerRejected("trigger_text_invalid", f"Trigger {name!r}: write its message in at least one language.")
    return {"id": trigger_id, "name": name, "enabled": enabled, "page": page, "seconds": seconds,
            "min_pages": min_pages, "param": param, "text": text}


def clean_triggers(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise TriggerRejected("triggers_invalid", "triggers is a list.")
    if len(raw) > TRIGGERS_MAX:
        raise TriggerRejected("triggers_too_many", f"At most {TRIGGERS_MAX} triggers.")
    cleaned = [clean_trigger(t) for t in raw]
    if len({t["id"] for t in cleaned}) != len(cleaned):
        raise TriggerRejected("trigger_id_invalid", "Two triggers have the same id.")
    return cleaned


def for_widget(triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the widget gets: the enabled ones."""
    return [{k: v for k, v in t.items() if k != "enabled"} for t in triggers if t.get("enabled")]
