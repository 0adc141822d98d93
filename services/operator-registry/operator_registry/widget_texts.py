"""Standard texts of the chat widget: defaults per language and per-project overrides.

Every project has a default widget language (one of ``LANGUAGES``) and may override any
standard text. Overrides are checked by ``validate_overrides`` before they are stored;
the widget receives ``effective_texts(language, overrides)``.

Some texts take placeholders written as ``{name}``. The widget fills them by literal
replacement; a key accepts exactly the placeholders its default text uses (or none), so
an override can never ask the widget for a value it does not have.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

LANGUAGES = ("ru", "en")

# Length limits, in characters, by kind of text.
_LABEL = 40      # buttons, field labels, statuses
_TITLE = 80      # titles, subtitles, placeholders, one-line indicators
_MESSAGE = 300   # notices and messages shown in the conversation
_LONG = 500      # greeting, privacy note

# key -> max length (characters) of an override
TEXT_LIMITS: dict[str, int] = {
    # Launcher and window header
    "launcher_label": _LABEL,           # button that opens the widget
    "window_title": _TITLE,
    "online_subtitle": _TITLE,          # operators are online
    "offline_subtitle": _TITLE,         # nobody online / outside working hours
    "close_label": _LABEL,              # close/minimize button (screen readers)
    # Conversation
    "greeting": _LONG,                  # shown before the visitor's first message
    "input_placeholder": _TITLE,
    "send_label": _LABEL,
    "attach_label": _LABEL,
    "status_sent": _LABEL,
    "status_delivered": _LABEL,
    "status_read": _LABEL,              # under the visitor's messages once an operator opened the chat
    "typing": _TITLE,                   # "{name} is typing…"
    "waiting_for_operator": _MESSAGE,
    "waiting_while_closed": _MESSAGE,   # under the visitor's message while the chat is closed or nobody is online
    "waiting_unanswered": _MESSAGE,     # nobody took the conversation for the project's unanswered minutes
    "operator_joined": _MESSAGE,        # "{name} joined the chat"
    "chat_closed": _MESSAGE,
    "new_conversation_label": _LABEL,
    # Rating after the chat is closed (CSAT)
    "rating_prompt": _TITLE,
    "rating_comment_placeholder": _TITLE,
    "rating_submit_label": _LABEL,
    "rating_thanks": _MESSAGE,
    # Errors and connection notices
    "file_too_large": _MESSAGE,
    "file_type_not_allowed": _MESSAGE,
    "send_failed_retrying": _MESSAGE,
    "reconnecting": _MESSAGE,
    "reconnected": _MESSAGE,
    "chat_unavailable": _MESSAGE,       # chat is disabled for the project
    # Contact form
    "contact_form_title": _TITLE,
    "name_label": _LABEL,
    "phone_label": _LABEL,
    "email_label": _LABEL,
    "contact_submit_label": _LABEL,
    "contact_thanks": _MESSAGE,
    "privacy_note": _LONG,              # under the contact form
    "contact_open_label": _LABEL,       # the link in the chat that opens the contact form
    "contact_cancel_label": _LABEL,     # closes the contact form without sending
    "contact_invalid_phone": _MESSAGE,  # the phone is not 5-15 digits
    "contact_invalid_email": _MESSAGE,  # the email does not look like name@example.com
    # "Email me this conversation" (crm-bridge sends it, without notes)
    "transcript_open_label": _LABEL,    # the link under the conversation
    "transcript_submit_label": _LABEL,
    "transcript_sent": _MESSAGE,        # "We will email this conversation to {name}." ({name}: the address)
}

# Keys whose texts may span several lines; every other key is a single line.
MULTILINE_KEYS: frozenset[str] = frozenset(
    {"greeting", "chat_unavailable", "contact_thanks", "privacy_note"}
)

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "launcher_label": "Напишите нам",
        "window_title": "Служба поддержки",
        "online_subtitle": "Мы на связи и обычно отвечаем за пару минут",
        "offline_subtitle": "Сейчас мы не в сети. Оставьте сообщение — мы ответим позже",
        "close_label": "Закрыть окно чата",
        "greeting": "Здравствуйте! Есть вопрос? Напишите нам — с радостью поможем.",
        "input_placeholder": "Введите сообщение…",
        "send_label": "Отправить",
        "attach_label": "Прикрепить файл",
        "status_sent": "Отправлено",
        "status_delivered": "Доставлено",
        "status_read": "Прочитано",
        "typing": "{name} печатает…",
        "waiting_for_operator": "Подождите немного — оператор скоро подключится к чату.",
        "waiting_while_closed": "Сейчас мы не на связи. Мы ответим, как только начнём работу, — здесь и на почту или телефон, если вы их оставили.",
        "waiting_unanswered": "Простите за ожидание — все операторы сейчас заняты. Оставьте почту или телефон, и мы ответим туда.",
        "operator_joined": "{name} теперь в чате",
        "chat_closed": "Чат завершён. Спасибо, что обратились к нам!",
        "new_conversation_label": "Начать новый чат",
        "rating_prompt": "Как мы справились?",
        "rating_comment_placeholder": "Хотите что-то добавить? (необязательно)",
        "rating_submit_label": "Отправить оценку",
        "rating_thanks": "Спасибо за оценку!",
        "file_too_large": "Файл слишком большой. Выберите файл поменьше.",
        "file_type_not_allowed": "Файлы такого типа отправлять нельзя.",
        "send_failed_retrying": "Сообщение не отправилось. Пробуем ещё раз…",
        "reconnecting": "Связь прервалась. Переподключаемся…",
        "reconnected": "Связь восстановлена",
        "chat_unavailable": "Чат сейчас недоступен. Пожалуйста, загляните позже.",
        "contact_form_title": "Оставьте контакты — мы с вами свяжемся",
        "name_label": "Имя",
        "phone_label": "Телефон",
        "email_label": "Электронная почта",
        "contact_submit_label": "Отправить",
        "contact_thanks": "Спасибо! Мы свяжемся с вами в ближайшее время.",
        "privacy_note": "Отправляя форму, вы соглашаетесь на обработку персональных данных.",
        "contact_open_label": "Оставить контакты",
        "transcript_open_label": "Прислать диалог на почту",
        "transcript_submit_label": "Отправить",
        "transcript_sent": "Пришлём этот диалог на {name}.",
        "contact_cancel_label": "Отмена",
        "contact_invalid_phone": "Проверьте телефон: нужны цифры, например +7 900 123-45-67.",
        "contact_invalid_email": "Проверьте адрес почты: например, name@example.com.",
    },
    "en": {
        "launcher_label": "Chat with us",
        "window_title": "Customer support",
        "online_subtitle": "We're online and usually reply within a few minutes",
        "offline_subtitle": "We're away right now. Leave a message and we'll get back to you",
        "close_label": "Close chat window",
        "greeting": "Hi there! Got a question? Send us a message and we'll be happy to help.",
        "input_placeholder": "Type your message…",
        "send_label": "Send",
        "attach_label": "Attach a file",
        "status_sent": "Sent",
        "status_delivered": "Delivered",
        "status_read": "Read",
        "typing": "{name} is typing…",
        "waiting_for_operator": "Hang tight — an operator will be with you shortly.",
        "waiting_while_closed": "We're not here right now. We'll answer as soon as we're back — here, and by email or phone if you left them.",
        "waiting_unanswered": "Sorry for the wait — everyone is busy right now. Leave your email or phone and we'll answer there.",
        "operator_joined": "{name} joined the chat",
        "chat_closed": "This chat has ended. Thanks for reaching out!",
        "new_conversation_label": "Start a new chat",
        "rating_prompt": "How did we do?",
        "rating_comment_placeholder": "Anything to add? (optional)",
        "rating_submit_label": "Send rating",
        "rating_thanks": "Thank you for your rating!",
        "file_too_large": "This file is too large. Please choose a smaller one.",
        "file_type_not_allowed": "Files of this type can't be sent.",
        "send_failed_retrying": "Your message wasn't sent. Retrying…",
        "reconnecting": "Connection lost. Reconnecting…",
        "reconnected": "You're back online",
        "chat_unavailable": "Chat is unavailable right now. Please check back later.",
        "contact_form_title": "Leave your details and we'll get in touch",
        "name_label": "Name",
        "phone_label": "Phone",
        "email_label": "Email",
        "contact_submit_label": "Send",
        "contact_thanks": "Thank you! We'll be in touch soon.",
        "privacy_note": "By submitting this form, you agree to the processing of your personal data.",
        "contact_open_label": "Leave your contacts",
        "transcript_open_label": "Email me this conversation",
        "transcript_submit_label": "Send",
        "transcript_sent": "We will email this conversation to {name}.",
        "contact_cancel_label": "Cancel",
        "contact_invalid_phone": "Please check the phone: digits, e.g. +1 202 555 0100.",
        "contact_invalid_email": "Please check the email, e.g. name@example.com.",
    },
}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def placeholders(text: str) -> set[str]:
    """Names of the ``{...}`` placeholders used in ``text``."""
    return set(_PLACEHOLDER.findall(text))


# key -> placeholders an override of that key may use (those of the English default;
# the tests check every language's default uses the same set).
ALLOWED_PLACEHOLDERS: dict[str, frozenset[str]] = {
    key: frozenset(placeholders(text)) for key, text in DEFAULT_TEXTS["en"].items()
}


class TextsRejected(ValueError):
    """Overrides that cannot be stored; ``problems`` maps each offending key to why."""

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(self.problems.values()))

    def __str__(self) -> str:
        return "; ".join(self.problems.values())


def _braced(names) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names))


def _text_problems(key: str, text: str) -> list[str]:
    problems = []
    limit = TEXT_LIMITS[key]
    if len(text) > limit:
        problems.append(f"{key!r} is {len(text)} characters, at most {limit}")
    for ch in dict.fromkeys(text):  # each distinct character once, in order
        if ch == "\n":
            if key not in MULTILINE_KEYS:
                problems.append(f"{key!r} must be a single line")
        elif unicodedata.category(ch) == "Cc":
            problems.append(f"{key!r} contains a control character (U+{ord(ch):04X})")
    unknown = placeholders(text) - ALLOWED_PLACEHOLDERS[key]
    if unknown:
        allowed = ALLOWED_PLACEHOLDERS[key]
        noun = "placeholder" if len(unknown) == 1 else "placeholders"
        hint = f"allowed: {_braced(allowed)}" if allowed else "this text takes no placeholders"
        problems.append(f"{key!r} uses unknown {noun} {_braced(unknown)}; {hint}")
    return problems


def validate_overrides(overrides: dict) -> dict[str, str]:
    """Check a project's overrides: known keys only, str values, stripped, not empty, at
    most TEXT_LIMITS[key] chars, no control characters except newline in multi-line keys,
    only the placeholders the key's default uses. Returns the cleaned dict (values
    stripped, CRLF turned into LF). Raises TextsRejected listing EVERY problem."""
    if not isinstance(overrides, Mapping):
        raise TextsRejected(
            {"overrides": f"overrides must be an object of texts, got {type(overrides).__name__}"}
        )
    cleaned: dict[str, str] = {}
    problems: dict[str, str] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or key not in TEXT_LIMITS:
            problems[str(key)] = f"unknown key {key!r}"
            continue
        if not isinstance(value, str):
            problems[key] = f"{key!r} must be a string, got {type(value).__name__}"
            continue
        text = value.replace("\r\n", "\n").strip()
        if not text:
            problems[key] = f"{key!r} is empty"
            continue
        found = _text_problems(key, text)
        if found:
            problems[key] = "; ".join(found)
        else:
            cleaned[key] = text
    if problems:
        raise TextsRejected(problems)
    return cleaned


def effective_texts(language: str, overrides: dict[str, str]) -> dict[str, str]:
    """DEFAULT_TEXTS[language] with overrides applied. ValueError for an unknown language.

    The result always has exactly the keys of TEXT_LIMITS: overrides of keys that are no
    longer known (stored before a key was retired) are ignored."""
    if language not in DEFAULT_TEXTS:
        raise ValueError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    texts = dict(DEFAULT_TEXTS[language])
    for key, value in (overrides or {}).items():
        if key in texts:
            texts[key] = value
    return texts
