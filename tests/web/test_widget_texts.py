import re

import pytest

from operator_registry.widget_texts import (
    DEFAULT_TEXTS,
    LANGUAGES,
    TEXT_LIMITS,
    TextsRejected,
    effective_texts,
    validate_overrides,
)

ALL_DEFAULTS = [(lang, key) for lang in LANGUAGES for key in TEXT_LIMITS]
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def rejected(overrides) -> dict[str, str]:
    with pytest.raises(TextsRejected) as info:
        validate_overrides(overrides)
    return info.value.problems


# --- defaults ---------------------------------------------------------------

def test_russian_and_english_are_the_languages():
    assert {"ru", "en"} <= set(LANGUAGES)
    assert set(DEFAULT_TEXTS) == set(LANGUAGES)


def test_every_language_has_exactly_the_keys_of_text_limits():
    assert len(TEXT_LIMITS) >= 25
    for lang in LANGUAGES:
        assert set(DEFAULT_TEXTS[lang]) == set(TEXT_LIMITS), lang


@pytest.mark.parametrize("lang,key", ALL_DEFAULTS)
def test_default_is_non_empty_and_within_its_limit(lang, key):
    text = DEFAULT_TEXTS[lang][key]
    assert text.strip() == text != ""
    assert len(text) <= TEXT_LIMITS[key]


@pytest.mark.parametrize("key", list(TEXT_LIMITS))
def test_russian_default_is_in_russian(key):
    assert CYRILLIC.search(DEFAULT_TEXTS["ru"][key]), DEFAULT_TEXTS["ru"][key]


@pytest.mark.parametrize("key", list(TEXT_LIMITS))
def test_defaults_use_the_same_placeholders_in_every_language(key):
    used = {lang: set(PLACEHOLDER.findall(DEFAULT_TEXTS[lang][key])) for lang in LANGUAGES}
    assert all(names <= {"name"} for names in used.values()), used
    assert len({frozenset(names) for names in used.values()}) == 1, used


def test_typing_and_operator_joined_name_the_operator():
    for lang in LANGUAGES:
        assert "{name}" in DEFAULT_TEXTS[lang]["typing"]
        assert "{name}" in DEFAULT_TEXTS[lang]["operator_joined"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_defaults_pass_their_own_validation(lang):
    assert validate_overrides(DEFAULT_TEXTS[lang]) == DEFAULT_TEXTS[lang]


def test_limits_follow_the_kind_of_text():
    assert TEXT_LIMITS["launcher_label"] == 40
    assert TEXT_LIMITS["send_label"] == 40
    assert TEXT_LIMITS["window_title"] == 80
    assert TEXT_LIMITS["reconnecting"] == 300
    assert TEXT_LIMITS["greeting"] == 500
    assert TEXT_LIMITS["privacy_note"] == 500


# --- validate_overrides: accepted ---------------------------------------------

def test_good_override_is_accepted_and_stripped():
    assert validate_overrides({"window_title": "  Ask Parley  \n", "send_label": "Go"}) == {
        "window_title": "Ask Parley",
        "send_label": "Go",
    }


def test_empty_overrides_are_fine():
    assert validate_overrides({}) == {}


def test_text_exactly_at_the_limit_is_accepted():
    assert validate_overrides({"window_title": "x" * 80}) == {"window_title": "x" * 80}


def test_name_placeholder_is_optional_where_the_default_has_it():
    assert validate_overrides({"typing": "{name} пишет…"}) == {"typing": "{name} пишет…"}
    assert validate_overrides({"typing": "Operator is typing…"}) == {"typing": "Operator is typing…"}


def test_multi_line_keys_accept_newlines_and_crlf_becomes_lf():
    cleaned = validate_overrides({"greeting": "Hello!\r\nHow can we help?"})
    assert cleaned == {"greeting": "Hello!\nHow can we help?"}


# --- validate_overrides: rejected ---------------------------------------------

def test_unknown_key_is_rejected():
    problems = rejected({"titel": "Hello"})
    assert problems == {"titel": "unknown key 'titel'"}


def test_too_long_text_names_its_length_and_limit():
    problems = rejected({"window_title": "x" * 81})
    assert problems == {"window_title": "'window_title' is 81 characters, at most 80"}


def test_length_is_counted_after_stripping():
    assert validate_overrides({"send_label": " " * 10 + "x" * 40 + " " * 10}) == {"send_label": "x" * 40}


def test_length_is_counted_in_characters_not_bytes():
    assert validate_overrides({"send_label": "ж" * 40}) == {"send_label": "ж" * 40}
    assert "41 characters" in rejected({"send_label": "ж" * 41})["send_label"]


@pytest.mark.parametrize("value", ["", "   ", "\n\t "])
def test_empty_text_is_rejected(value):
    assert rejected({"greeting": value}) == {"greeting": "'greeting' is empty"}


@pytest.mark.parametrize("value", [None, 42, ["Hi"], {"text": "Hi"}])
def test_non_string_text_is_rejected(value):
    problems = rejected({"greeting": value})
    assert set(problems) == {"greeting"}
    assert "must be a string" in problems["greeting"]


def test_non_mapping_overrides_are_rejected():
    with pytest.raises(TextsRejected):
        validate_overrides([("greeting", "Hi")])


def test_unknown_placeholder_is_rejected():
    problems = rejected({"typing": "{foo} is typing…"})
    assert problems == {"typing": "'typing' uses unknown placeholder {foo}; allowed: {name}"}


def test_placeholder_in_a_text_without_placeholders_is_rejected():
    problems = rejected({"greeting": "Hi {name}!"})
    assert "unknown placeholder {name}" in problems["greeting"]


@pytest.mark.parametrize("value", ["Hi\x07there", "Hi\tthere", "Hi\rthere", "Hi\x00"])
def test_control_characters_are_rejected(value):
    problems = rejected({"greeting": value})
    assert "control character" in problems["greeting"]


def test_newline_is_rejected_in_single_line_keys():
    problems = rejected({"window_title": "Support\nchat"})
    assert problems == {"window_title": "'window_title' must be a single line"}


def test_every_problem_is_reported_at_once():
    with pytest.raises(TextsRejected) as info:
        validate_overrides({
            "x": "?",
            "window_title": "t" * 81,
            "send_label": "   ",
            "attach_label": 7,
            "operator_joined": "{who} joined",
            "greeting": "Fine greeting",
        })
    problems = info.value.problems
    assert set(problems) == {"x", "window_title", "send_label", "attach_label", "operator_joined"}
    message = str(info.value)
    assert "unknown key 'x'" in message
    assert "'window_title' is 81 characters, at most 80" in message
    assert "'send_label' is empty" in message
    assert "'attach_label' must be a string" in message
    assert "'operator_joined' uses unknown placeholder {who}; allowed: {name}" in message


def test_several_problems_of_one_key_are_all_named():
    problems = rejected({"typing": "{foo}" + "x" * 80})
    assert "85 characters, at most 80" in problems["typing"]
    assert "unknown placeholder {foo}" in problems["typing"]


def test_texts_rejected_is_a_value_error():
    assert issubclass(TextsRejected, ValueError)


# --- effective_texts ----------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_effective_texts_without_overrides_are_the_defaults(lang):
    assert effective_texts(lang, {}) == DEFAULT_TEXTS[lang]


def test_effective_texts_apply_overrides_without_touching_defaults():
    before = dict(DEFAULT_TEXTS["ru"])
    texts = effective_texts("ru", {"launcher_label": "Есть вопрос?"})
    assert texts["launcher_label"] == "Есть вопрос?"
    assert texts["send_label"] == DEFAULT_TEXTS["ru"]["send_label"]
    assert set(texts) == set(TEXT_LIMITS)
    assert DEFAULT_TEXTS["ru"] == before
    texts["send_label"] = "changed"
    assert DEFAULT_TEXTS["ru"]["send_label"] == before["send_label"]


def test_effective_texts_ignore_overrides_of_retired_keys():
    texts = effective_texts("en", {"retired_key": "Old text"})
    assert set(texts) == set(TEXT_LIMITS)


@pytest.mark.parametrize("lang", ["de", "RU", "", None])
def test_effective_texts_reject_an_unknown_language(lang):
    with pytest.raises(ValueError, match="unknown language"):
        effective_texts(lang, {})
