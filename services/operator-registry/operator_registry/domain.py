"""Projects, operators and quick-reply templates: pure state, evolve and decide.

No I/O here. `evolve(state, event)` folds one event into an aggregate's state;
the `decide_*` functions check a command against the state and the acting operator
and return the events to append, or raise a DomainError (Forbidden, Invalid, NotFound,
Conflict: parley.domain_error's one shape) with a code and a message; parley.http maps
each kind to a status in one place.

Input is taken as the JSON the client sent: every field is checked for its type (a
boolean is a JSON boolean, never a truthy string), and control characters are stripped
from one-line text (names, titles) or refused (emails, sites)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from parley.contract import canonical_uuid
from parley.domain_error import DomainError
from parley.envelope import Event, new_event

from operator_registry.triggers import TriggerRejected, clean_triggers
from operator_registry.widget_texts import LANGUAGES, TextsRejected, validate_overrides

NAME_MAX = 80
EMAIL_MAX = 254
PASSWORD_MIN = 10
PASSWORD_MAX = 200
SITES_MAX = 50
TEMPLATE_TITLE_MAX = 100
TEMPLATE_TEXT_MAX = 2000
# A template's variables, filled in by the operator app when the template is used
# (web/app/template_vars.js, the same grammar): {{visitor.name}}, {{operator.name}},
# {{project.name}} and a custom param {{params.<its name>}}. Anything else in double
# braces is refused when the template is saved, not found out when it is sent.
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
TEMPLATE_VARIABLE_NAME = re.compile(r"(?:visitor\.name|operator\.name|project\.name|params\.[^{}\s][^{}]{0,63})")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A project id as it appears in the snippet's data-project and in every event's envelope
# (at most 100 characters there).
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
AVATAR_ID = re.compile(r"^[0-9a-f]{32}$")


class Forbidden(DomainError):
    """The actor may not do this."""
    kind = "forbidden"


class Invalid(DomainError):
    """The input breaks a rule of its field."""
    kind = "invalid"


class NotFound(DomainError):
    """No such thing, or not one the actor may know about."""
    kind = "not_found"


class Conflict(DomainError):
    """The thing exists already."""
    kind = "conflict"


def forbidden(message: str, code: str = "forbidden") -> Forbidden:
    return Forbidden(code, message)


def invalid(code: str, message: str) -> Invalid:
    return Invalid(code, message)


def not_found(what: str) -> NotFound:
    return NotFound("not_found", f"{what} not found")


@dataclass(frozen=True)
class Actor:
    """The operator a request acts for (from their session)."""
    operator_id: str
    project_id: str
    is_admin: bool
    is_owner: bool


@dataclass(frozen=True)
class Project:
    id: str
    name: str = ""
    owner_name: str = ""
    owner_email: str = ""
    chat_enabled: bool = False
    owner_operator_id: str = ""
    language: str = "ru"
    texts: dict[str, str] = field(default_factory=dict)
    sites: tuple[str, ...] = ()
    triggers: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Operator:
    id: str
    project_id: str = ""
    name: str = ""
    email: str = ""
    is_admin: bool = False
    is_owner: bool = False
    active: bool = True
    removed: bool = False
    avatar_id: str | None = None


@dataclass(frozen=True)
class Template:
    id: str
    project_id: str = ""
    title: str = ""
    text: str = ""
    deleted: bool = False


# ---- evolve -------------------------------------------------------------------

def evolve_project(state: Project | None, event: Event) -> Project:
    d = event.data
    match event.type:
        case "project.created":
            return Project(id=event.project_id, name=d["name"], owner_name=d["owner_name"],
                           owner_email=d["owner_email"], owner_operator_id=d["owner_operator_id"],
                           language=d["language"])
        case "project.chat_enabled":
            return replace(state, chat_enabled=True)
        case "project.chat_disabled":
            return replace(state, chat_enabled=False)
        case "project.widget_settings_changed":
            return replace(state, language=d["language"], texts=d["texts"])
        case "project.sites_changed":
            return replace(state, sites=tuple(d["sites"]))
        case "project.triggers_changed":
            return replace(state, triggers=tuple(d["triggers"]))
    return state


def evolve_operator(state: Operator | None, event: Event) -> Operator:
    d = event.data
    match event.type:
        case "operator.added":
            return Operator(id=d["operator_id"], project_id=event.project_id, name=d["name"], email=d["email"],
                            is_admin=d["is_admin"], is_owner=d["is_owner"])
        case "operator.profile_changed":
            return replace(state, name=d.get("name", state.name), email=d.get("email", state.email))
        case "operator.role_changed":
            return replace(state, is_admin=d["is_admin"])
        case "operator.avatar_changed":
            return replace(state, avatar_id=d["avatar_id"])
        case "operator.deactivated":
            return replace(state, active=False)
        case "operator.reactivated":
            return replace(state, active=True)
        case "operator.removed":
            return replace(state, active=False, removed=True)
    return state


def evolve_template(state: Template | None, event: Event) -> Template:
    d = event.data
    match event.type:
        case "template.created":
            return Template(id=d["template_id"], project_id=event.project_id, title=d["title"], text=d["text"])
        case "template.updated":
            return replace(state, title=d["title"], text=d["text"])
        case "template.deleted":
            return replace(state, deleted=True)
    return state


def fold(evolve, events: list[Event]):
    state = None
    for event in events:
        state = evolve(state, event)
    return state


# ---- validation ---------------------------------------------------------------

def _is_control(c: str) -> bool:
    return unicodedata.category(c) == "Cc"


def one_line(text: str) -> str:
    """Whitespace of any kind collapsed to single spaces, other control characters dropped."""
    return " ".join("".join(" " if c.isspace() else c for c in text if c.isspace() or not _is_control(c)).split())


def multi_line(text: str) -> str:
    """Line breaks (CRLF and CR become LF) and tabs kept, other control characters dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or not _is_control(c)).strip()


def uuid_or_none(value: Any) -> str | None:
    """contract.canonical_uuid, never raising: its pattern's `$` lets a trailing newline
    through to uuid.UUID, which then raises ValueError."""
    try:
        return canonical_uuid(value)
    except ValueError:
        return None


def valid_project_id(value: Any) -> bool:
    return isinstance(value, str) and PROJECT_ID.fullmatch(value) is not None


def check_bool(value: Any, field: str) -> bool:
    """A JSON boolean, nothing else: `bool("false")` is True, and that once made admins."""
    if not isinstance(value, bool):
        raise invalid(f"{field}_invalid", f"{field} must be true or false (a JSON boolean).")
    return value


def clean_avatar_id(avatar_id: Any) -> str:
    if not isinstance(avatar_id, str) or not AVATAR_ID.fullmatch(avatar_id):
        raise invalid("avatar_id_invalid", "avatar_id must be the gateway's file id: 32 lowercase hex characters.")
    return avatar_id


def clean_name(name: Any, what: str = "Display name") -> str:
    if not isinstance(name, str):
        raise invalid("name_required", f"{what} is required (a string).")
    name = one_line(name)
    if not name:
        raise invalid("name_required", f"{what} is required.")
    if len(name) > NAME_MAX:
        raise invalid("name_too_long", f"{what} is {len(name)} characters; at most {NAME_MAX}.")
    return name


def clean_email(email: Any) -> str:
    email = email.strip() if isinstance(email, str) else ""
    if not _EMAIL.match(email) or len(email) > EMAIL_MAX or any(_is_control(c) for c in email):
        raise invalid("email_invalid", "Enter a valid email address, like name@example.com.")
    return email


def check_password(password: Any) -> str:
    if not isinstance(password, str):
        raise invalid("password_invalid", "The password must be a string.")
    if len(password) < PASSWORD_MIN:
        raise invalid("password_too_short", f"The password must be at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise invalid("password_too_long", f"The password must be at most {PASSWORD_MAX} characters.")
    return password


def clean_sites(sites: Any) -> list[str]:
    if not isinstance(sites, list) or len(sites) > SITES_MAX:
        raise invalid("sites_invalid", f"Sites must be a list of at most {SITES_MAX} origins.")
    cleaned = []
    for site in sites:
        origin = _origin(site)
        if origin is None:
            shown = repr(site) if len(repr(site)) <= 200 else repr(site)[:200] + "..."
            raise invalid("site_invalid", f"{shown} is not an origin like https://example.com")
        if origin not in cleaned:
            cleaned.append(origin)
    return cleaned


def _origin(site: Any) -> str | None:
    """`https://Example.com/` -> `https://example.com`; None unless it is an http(s) origin."""
    if not isinstance(site, str) or len(site) > 300 or any(_is_control(c) for c in site):
        return None
    try:
        parts = urlsplit(site.strip().rstrip("/"))
        port = parts.port  # raises ValueError when out of range
    except ValueError:     # e.g. an unclosed IPv6 bracket
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query
            or parts.fragment or parts.username or parts.password is not None
            or any(c.isspace() for c in parts.netloc)):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def clean_template(title: Any, text: Any) -> tuple[str, str]:
    title = one_line(title) if isinstance(title, str) else ""
    text = multi_line(text) if isinstance(text, str) else ""
    if not title:
        raise invalid("title_required", "Template title is required.")
    if not text:
        raise invalid("text_required", "Template text is required.")
    if len(title) > TEMPLATE_TITLE_MAX:
        raise invalid("title_too_long", f"Title is {len(title)} characters; at most {TEMPLATE_TITLE_MAX}.")
    if len(text) > TEMPLATE_TEXT_MAX:
        raise invalid("text_too_long", f"Text is {len(text)} characters; at most {TEMPLATE_TEXT_MAX}.")
    for name in TEMPLATE_VARIABLE.findall(text):
        if not TEMPLATE_VARIABLE_NAME.fullmatch(name):
            raise invalid("template_variable_unknown",
                          f"{{{{{name[:80]}}}}} is not a variable; use {{{{visitor.name}}}}, {{{{operator.name}}}}, "
                          "{{project.name}} or {{params.<param name>}}.")
    return title, text


PROJECT_ID_RULE = "A project id is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."


def setup_already_done() -> Conflict:
    return Conflict("setup_already_done", "This installation already has a project; "
                                          "log in to it, or ask its owner to add you.")


def check_new_project(project_id: Any, name: Any, owner_name: Any, owner_email: Any, password: Any) -> None:
    """A new project's form (the first-run page, `parley.admin create-project`), field by
    field: each refusal's code names its field (`owner_email_invalid`), so a form can show
    it beside that field. The rules are the usual ones; only the codes are the form's."""
    def project_id_rule():
        if not valid_project_id(project_id):
            raise invalid("project_id_invalid", PROJECT_ID_RULE)

    checks = [("project_id", project_id_rule), ("project_name", lambda: clean_name(name, "Project name")),
              ("owner_name", lambda: clean_name(owner_name, "Your name")),
              ("owner_email", lambda: clean_email(owner_email)), ("password", lambda: check_password(password))]
    for field_name, check in checks:
        try:
            check()
        except Invalid as e:
            raise invalid(f"{field_name}_invalid", e.message) from None


# ---- permissions --------------------------------------------------------------

def require_admin(actor: Actor) -> None:
    if not (actor.is_admin or actor.is_owner):
        raise forbidden("Only an admin can do this.")


def require_owner(actor: Actor) -> None:
    if not actor.is_owner:
        raise forbidden("Only the project owner can do this.")


def require_manage(actor: Actor, target: Operator) -> None:
    """Owner: everyone. Admin: non-admin operators. Others: nobody."""
    if actor.project_id != target.project_id:
        raise not_found("Operator")
    if actor.is_owner:
        return
    if actor.is_admin and not target.is_admin and not target.is_owner:
        return
    raise forbidden("Only the owner can manage admins; admins manage operators.")


# ---- decide -------------------------------------------------------------------

def decide_create_project(state: Project | None, project_id: str, name: str, owner_name: str,
                          owner_email: str, language: str, owner_operator_id: str) -> list[Event]:
    if state is not None:
        raise Conflict("project_exists", f"Project {project_id!r} already exists.")
    if not valid_project_id(project_id):
        raise invalid("project_id_invalid", PROJECT_ID_RULE)
    if language not in LANGUAGES:
        raise invalid("language_invalid", f"Language must be one of {', '.join(LANGUAGES)}.")
    return [new_event("project.created", f"project-{project_id}",
                      {"name": clean_name(name), "owner_name": clean_name(owner_name),
                       "owner_email": clean_email(owner_email), "language": language,
                       "owner_operator_id": owner_operator_id}, project_id=project_id)]


def decide_enable_chat(project: Project, actor: Actor) -> list[Event]:
    """Enabling the first time also makes the owner an operator (and admin) with their
    own credentials; that event goes to the operator's stream (see the handler)."""
    require_owner(actor)
    if project.chat_enabled:
        return []
    return [new_event("project.chat_enabled", f"project-{project.id}",
                      {"owner_operator_id": project.owner_operator_id}, project_id=project.id)]


def decide_disable_chat(project: Project, actor: Actor) -> list[Event]:
    require_owner(actor)
    if not project.chat_enabled:
        return []
    return [new_event("project.chat_disabled", f"project-{project.id}", {}, project_id=project.id)]


def decide_widget_settings(project: Project, actor: Actor, language: Any, texts: Any) -> list[Event]:
    require_admin(actor)
    if language not in LANGUAGES:
        raise invalid("language_invalid", f"Language must be one of {', '.join(LANGUAGES)}.")
    if not isinstance(texts, dict):
        raise invalid("texts_invalid", "Texts must be an object of text key to text.")
    try:
        cleaned = validate_overrides(texts)
    except TextsRejected as e:
        raise invalid("texts_invalid", str(e))
    return [new_event("project.widget_settings_changed", f"project-{project.id}",
                      {"language": language, "texts": cleaned}, project_id=project.id)]


def decide_triggers(project: Project, actor: Actor, raw: Any) -> list[Event]:
    """The project's proactive triggers, all of them at once (triggers.py checks each)."""
    require_admin(actor)
    try:
        cleaned = clean_triggers(raw)
    except TriggerRejected as e:
        raise invalid(e.code, str(e))
    if list(project.triggers) == cleaned:
        return []
    return [new_event("project.triggers_changed", f"project-{project.id}", {"triggers": cleaned},
                      project_id=project.id)]


def decide_sites(project: Project, actor: Actor, sites: Any) -> list[Event]:
    require_admin(actor)
    return [new_event("project.sites_changed", f"project-{project.id}", {"sites": clean_sites(sites)},
                      project_id=project.id)]


def decide_add_operator(actor: Actor, operator_id: str, name: Any, email: Any, is_admin: Any,
                        *, is_owner: bool = False) -> list[Event]:
    if not is_owner:
        require_admin(actor)
    is_admin = check_bool(is_admin, "is_admin")
    if is_admin and not is_owner:
        require_owner(actor)
    return [new_event("operator.added", f"operator-{operator_id}",
                      {"operator_id": operator_id, "name": clean_name(name), "email": clean_email(email),
                       "is_admin": is_admin or is_owner, "is_owner": is_owner},
                      project_id=actor.project_id)]


def needs_current_password(actor: Actor, target: Operator, password_given: bool) -> bool:
    """Changing your own password takes the current one (a session left open on a shared
    computer must not be enough to take the account over); an admin or the owner
    resetting someone else's does not."""
    return password_given and actor.operator_id == target.id


def decide_update_operator(actor: Actor, target: Operator, changes: dict[str, Any],
                           password_given: bool, *, current_password_verified: bool = False) -> list[Event]:
    """Self-service: name and password (with the current one). Managers: name, email,
    password; the owner: admin flag."""
    if target.removed:
        raise not_found("Operator")
    is_self = actor.operator_id == target.id
    if not is_self or "email" in changes:
        require_manage(actor, target)
    if "is_admin" in changes:
        check_bool(changes["is_admin"], "is_admin")
    if needs_current_password(actor, target, password_given) and not current_password_verified:
        raise invalid("current_password_required", "To change your password, send your current one as current_password.")
    stream, pid = f"operator-{target.id}", target.project_id
    events = []
    profile = {}
    if "name" in changes:
        profile["name"] = clean_name(changes["name"])
    if "email" in changes:
        profile["email"] = clean_email(changes["email"])
    if profile:
        events.append(new_event("operator.profile_changed", stream, profile, project_id=pid))
    if password_given:
        events.append(new_event("operator.password_changed", stream, {"by": actor.operator_id}, project_id=pid))
    if "is_admin" in changes and changes["is_admin"] != target.is_admin:
        require_owner(actor)
        if target.is_owner:
            raise forbidden("The owner is always an admin.")
        events.append(new_event("operator.role_changed", stream, {"is_admin": changes["is_admin"]},
                                project_id=pid))
    return events


def _lifecycle(actor: Actor, target: Operator, type: str, verb: str, *, needed: bool = True) -> list[Event]:
    if target.removed:
        raise not_found("Operator")
    require_manage(actor, target)
    if target.is_owner:
        raise forbidden(f"The owner cannot be {verb}.")
    if not needed:
        return []
    return [new_event(type, f"operator-{target.id}", {"by": actor.operator_id}, project_id=target.project_id)]


def decide_deactivate(actor: Actor, target: Operator) -> list[Event]:
    return _lifecycle(actor, target, "operator.deactivated", "deactivated", needed=target.active)


def decide_reactivate(actor: Actor, target: Operator) -> list[Event]:
    return _lifecycle(actor, target, "operator.reactivated", "reactivated", needed=not target.active)


def decide_remove(actor: Actor, target: Operator) -> list[Event]:
    return _lifecycle(actor, target, "operator.removed", "removed")


def decide_avatar(actor: Actor, target: Operator, avatar_id: Any) -> list[Event]:
    avatar_id = clean_avatar_id(avatar_id)
    if target.removed:
        raise not_found("Operator")
    if actor.operator_id != target.id:
        require_manage(actor, target)
    return [new_event("operator.avatar_changed", f"operator-{target.id}", {"avatar_id": avatar_id},
                      project_id=target.project_id)]


def decide_create_template(actor: Actor, template_id: str, title: Any, text: Any) -> list[Event]:
    require_admin(actor)
    title, text = clean_template(title, text)
    return [new_event("template.created", f"template-{template_id}",
                      {"template_id": template_id, "title": title, "text": text}, project_id=actor.project_id)]


def decide_update_template(actor: Actor, template: Template | None, title: Any, text: Any) -> list[Event]:
    require_admin(actor)
    if template is None or template.deleted or template.project_id != actor.project_id:
        raise not_found("Template")
    title, text = clean_template(title, text)
    return [new_event("template.updated", f"template-{template.id}", {"title": title, "text": text},
                      project_id=template.project_id)]


def decide_delete_template(actor: Actor, template: Template | None) -> list[Event]:
    require_admin(actor)
    if template is None or template.deleted or template.project_id != actor.project_id:
        raise not_found("Template")
    return [new_event("template.deleted", f"template-{template.id}", {}, project_id=template.project_id)]
