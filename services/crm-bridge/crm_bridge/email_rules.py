"""Transcripts by email (issue 24, item 5), the pure part: what SMTP settings may be
stored, and the email a transcript makes. No I/O.

Settings: host, port, security (starttls, tls or none), user and password (write-only:
never shown again; an empty password keeps the one stored), the sender's address and
name (the project's name in the email), the email's language (ru or en), and whether a
closed conversation's transcript goes by itself to the email the visitor left.

The email: a subject, a plain-text part and an HTML part (every text escaped), the
messages both ways in order - never notes: the conversation service's transcript has
none - and a Message-ID made from the delivery id, the same at every attempt."""
from __future__ import annotations

import html
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

SECURITY = ("starttls", "tls", "none")
LANGUAGES = ("ru", "en")
HOST_MAX = 253
USER_MAX = 200
PASSWORD_MAX = 200
NAME_MAX = 100
EMAIL_MAX = 200
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")


class SettingsInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field

    @property
    def code(self) -> str:
        return f"{self.field}_invalid"


def email_address(value: Any, field: str = "to") -> str:
    if not isinstance(value, str) or len(value.strip()) > EMAIL_MAX or not _EMAIL.fullmatch(value.strip()):
        raise SettingsInvalid(field, f"An email looks like name@example.com (at most {EMAIL_MAX} characters).")
    return value.strip()


def clean_settings(body: Any, stored_password: str | None) -> dict[str, Any]:
    """The settings to store from a PUT body; a missing or empty password keeps the stored one."""
    if not isinstance(body, dict):
        raise SettingsInvalid("body", "Send the settings as a JSON object.")
    host = body.get("host")
    if not isinstance(host, str) or not host.strip() or len(host.strip()) > HOST_MAX or not _HOST.fullmatch(host.strip()):
        raise SettingsInvalid("host", "host is the SMTP server's name or address, e.g. smtp.example.com.")
    port = body.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SettingsInvalid("port", "port is a whole number, 1-65535 (587 for STARTTLS, 465 for TLS).")
    security = body.get("security", "starttls")
    if security not in SECURITY:
        raise SettingsInvalid("security", "security is starttls, tls or none.")
    user = body.get("user") or None
    if user is not None and (not isinstance(user, str) or len(user) > USER_MAX):
        raise SettingsInvalid("user", f"user is text, at most {USER_MAX} characters.")
    password = body.get("password")
    if password is not None and (not isinstance(password, str) or len(password) > PASSWORD_MAX):
        raise SettingsInvalid("password", f"password is text, at most {PASSWORD_MAX} characters.")
    from_name = body.get("from_name")
    if not isinstance(from_name, str) or not from_name.strip() or len(from_name.strip()) > NAME_MAX:
        raise SettingsInvalid("from_name", f"from_name is the project's name in the email, 1-{NAME_MAX} characters.")
    language = body.get("language", "en")
    if language not in LANGUAGES:
        raise SettingsInvalid("language", "language is ru or en.")
    on_close = body.get("on_close", False)
    if not isinstance(on_close, bool):
        raise SettingsInvalid("on_close", "on_close is true or false.")
    return {"host": host.strip(), "port": port, "security": security, "user": user,
            "password": password if password else stored_password, "from_address": email_address(
                body.get("from_address"), "from_address"), "from_name": from_name.strip(), "language": language,
            "on_close": on_close}


def view(settings: dict[str, Any] | None) -> dict[str, Any]:
    """What an admin sees: everything but the password (only whether one is set)."""
    if settings is None:
        return {"configured": False}
    shown = {k: v for k, v in settings.items() if k != "password"}
    return {"configured": True, **shown, "password_set": bool(settings.get("password"))}


TEXTS = {
    "en": {"subject": "Your conversation with {name}", "intro": "Here is your conversation with {name}.",
           "you": "You", "operator": "{name}", "file": "File: {name}", "test_subject": "Parley: test email from {name}",
           "test_body": "The SMTP settings of {name} work: this email came through them."},
    "ru": {"subject": "Ваш диалог с {name}", "intro": "Ваш диалог с {name}.",
           "you": "Вы", "operator": "{name}", "file": "Файл: {name}", "test_subject": "Parley: проверка почты {name}",
           "test_body": "Настройки SMTP проекта {name} работают: это письмо пришло через них."},
}


def _when(at: str) -> str:
    try:
        return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return ""


def transcript_email(settings: dict[str, Any], transcript: dict[str, Any], to: str, delivery_id: str) -> EmailMessage:
    texts = TEXTS[settings["language"]]
    name = settings["from_name"]
    lines, rows = [texts["intro"].format(name=name), ""], []
    for m in transcript["messages"]:
        who = texts["you"] if m["from"] == "visitor" else texts["operator"].format(name=m.get("operator") or name)
        body = m["text"] or ""
        if m.get("file"):
            body = (body + "\n" if body else "") + texts["file"].format(name=m["file"])
        lines += [f"{who} · {_when(m['at'])}", body, ""]
        rows.append(f'<tr><td style="color:#667085;padding:4px 12px 4px 0;vertical-align:top;white-space:nowrap">'
                    f'{html.escape(who)}<br><small>{html.escape(_when(m["at"]))}</small></td>'
                    f'<td style="padding:4px 0;white-space:pre-wrap">{html.escape(body)}</td></tr>')
    page = (f'<!doctype html><html lang="{settings["language"]}"><body style="font-family:system-ui,sans-serif;'
            f'color:#1f2430"><p>{html.escape(texts["intro"].format(name=name))}</p>'
            f'<table style="border-collapse:collapse">{"".join(rows)}</table></body></html>')
    message = _envelope(settings, to, texts["subject"].format(name=name), delivery_id)
    message.set_content("\n".join(lines))
    message.add_alternative(page, subtype="html")
    return message


def test_email(settings: dict[str, Any], to: str) -> EmailMessage:
    texts = TEXTS[settings["language"]]
    message = _envelope(settings, to, texts["test_subject"].format(name=settings["from_name"]), None)
    message.set_content(texts["test_body"].format(name=settings["from_name"]))
    return message


def _envelope(settings: dict[str, Any], to: str, subject: str, delivery_id: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((settings["from_name"], settings["from_address"]))
    message["To"] = to
    message["Subject"] = subject
    domain = settings["from_address"].rsplit("@", 1)[-1]
    # The same Message-ID at every attempt of a delivery: a copy sent again after a crash
    # between the server's answer and our record of it is the same message to mail clients.
    message["Message-ID"] = f"<{delivery_id}@{domain}>" if delivery_id else make_msgid(domain=domain)
    return message
