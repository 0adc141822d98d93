"""Avatars through the gateway, and quick-reply template search, on the real stack."""
import io

import pytest
from PIL import Image

from tests.stack import OWNER_EMAIL, OWNER_PASSWORD
from tests.registry import images


@pytest.mark.parametrize("name, data", [("200x200 PNG", lambda: images.png(200)),
                                        ("1500x1500 JPEG", lambda: images.jpeg(1500))])
async def test_a_valid_avatar_is_stored_and_served_resized(stack, tmp_path, name, data):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, _, _ = await stack.add_operator(owner, "Ann")
    r = await stack.call("PUT", f"/api/operators/{operator_id}/avatar", owner, data=data(),
                         headers={"Content-Type": "image/jpeg"})
    assert r.status == 200, await r.text()
    url = (await r.json())["avatar_url"]
    served = await stack.call("GET", url)
    assert served.status == 200 and served.headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(await served.read())).size == (96, 96)
    listed = await (await stack.call("GET", "/api/operators", owner)).json()
    assert {o["id"]: o["avatar_url"] for o in listed["operators"]}[operator_id] == url
    assert not any(name in url for name in ("jpg", "jpeg", "Ann"))  # a generated name


@pytest.mark.parametrize("data, code, words", [
    (lambda: images.png(199), "avatar_too_small", "199x199"),
    (lambda: images.png(1501), "avatar_too_large", "1501x1501"),
    (lambda: images.png(640, 480), "avatar_not_square", "640x480"),
    (lambda: images.gif(300), "avatar_not_png_or_jpeg", "GIF"),
    (lambda: b"I am a text file pretending to be avatar.jpg\n" * 20, "avatar_not_png_or_jpeg", "not an image"),
    (lambda: images.noise_png(300)[:20000], "avatar_unreadable", ""),
    (lambda: images.bomb_png(), "avatar_decompression_bomb", ""),
])
async def test_a_refused_avatar_says_which_rule_failed_and_stores_nothing(stack, tmp_path, data, code, words):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    operator_id, _, _ = await stack.add_operator(owner, "Ben")
    r = await stack.call("PUT", f"/api/operators/{operator_id}/avatar", owner, data=data(),
                         headers={"Content-Type": "image/jpeg"})
    body = await r.json()
    assert r.status == 422 and body["error"]["code"] == code, body
    assert words in body["error"]["message"]
    stored = list((tmp_path / "files" / "avatars").glob("*")) if (tmp_path / "files" / "avatars").exists() else []
    assert stored == []
    me = await (await stack.call("GET", f"/api/operators/{operator_id}", owner)).json()
    assert me["avatar_url"] is None


async def test_an_operator_may_not_set_another_operators_avatar_and_nothing_is_stored(stack, tmp_path):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    victim, _, _ = await stack.add_operator(owner, "Vic")
    _, operator, _ = await stack.add_operator(owner, "Eve")
    r = await stack.call("PUT", f"/api/operators/{victim}/avatar", operator, data=images.png(300))
    assert r.status == 403
    assert not (tmp_path / "files" / "avatars").exists() or not any((tmp_path / "files" / "avatars").iterdir())


TEMPLATES = [
    ("Доставка", "Доставляем по Москве за один день, по России — от трёх дней."),
    ("Оплата", "Можно оплатить картой или наличными курьеру."),
    ("Delivery times", "We ship within 24 hours; international orders take 5-7 days."),
    ("Refunds", "Full refund within 30 days, no questions asked. Courier pickup is free."),
    ("Гарантия", "Гарантия 2 года. Доставка в сервисный центр за наш счёт."),
]


async def search(stack, token, q):
    r = await stack.call("GET", f"/api/templates?q={q}", token)
    assert r.status == 200
    return [t["title"] for t in (await r.json())["templates"]]


async def test_template_search_by_title_text_and_prefix_in_both_languages(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    for title, text in TEMPLATES:
        assert (await stack.call("POST", "/api/templates", owner, json={"title": title, "text": text})).status == 201
    _, operator, _ = await stack.add_operator(owner, "Searcher")

    assert await search(stack, operator, "Оплата") == ["Оплата"]               # a title word
    assert await search(stack, operator, "наличными") == ["Оплата"]            # a text word
    assert set(await search(stack, operator, "дост")) == {"Доставка", "Гарантия"}  # prefix: доставка, доставляем
    assert (await search(stack, operator, "дост"))[0] == "Доставка"            # the title match ranks first
    assert (await search(stack, operator, "ДОСТАВКА"))[0:1] == ["Доставка"]    # case-insensitive
    assert await search(stack, operator, "refund") == ["Refunds"]              # English prefix
    assert await search(stack, operator, "international") == ["Delivery times"]
    assert set(await search(stack, operator, "courier")) == {"Refunds"}
    assert set(await search(stack, operator, "курьер")) == {"Оплата"}
    assert await search(stack, operator, "deliv 24") == ["Delivery times"]    # every word must match
    assert await search(stack, operator, "nothing-like-this") == []
    assert len(await search(stack, operator, "")) == len(TEMPLATES)


async def test_edited_and_deleted_templates_are_searched_as_they_are_now(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("POST", "/api/templates", owner, json={"title": "Greeting", "text": "Hello there"})
    template = await r.json()
    await stack.call("PATCH", f"/api/templates/{template['id']}", owner, json={"title": "Welcome", "text": "Hi"})
    assert await search(stack, owner, "greet") == []
    assert await search(stack, owner, "welc") == ["Welcome"]
    await stack.call("DELETE", f"/api/templates/{template['id']}", owner)
    assert await search(stack, owner, "welc") == []


async def test_template_input_is_bounded_with_clear_errors(stack):
    owner = await stack.login(OWNER_EMAIL, OWNER_PASSWORD)
    r = await stack.call("POST", "/api/templates", owner, json={"title": "x" * 101, "text": "ok"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "title_too_long"
    r = await stack.call("POST", "/api/templates", owner, json={"title": "ok", "text": ""})
    assert r.status == 422 and (await r.json())["error"]["code"] == "text_required"
    r = await stack.call("POST", "/api/templates", owner, json={"title": "ok", "text": "Dear {{visitor.email}}"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "template_variable_unknown"
    assert "{{visitor.email}}" in (await r.json())["error"]["message"]
