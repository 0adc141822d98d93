import io
import random

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from gateway.avatars import (
    MAX_AVATAR_BYTES,
    WIDGET_SIZE,
    AvatarRejected,
    validate_avatar,
)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def plain(width: int, height: int | None = None, fmt: str = "PNG") -> bytes:
    return encode(Image.new("RGB", (width, height or width), (200, 80, 40)), fmt)


def noise(side: int, fmt: str) -> bytes:
    # Random pixels do not compress, so cutting the file in half cuts the pixel data.
    pixels = random.Random(side).randbytes(side * side * 3)
    return encode(Image.frombytes("RGB", (side, side), pixels), fmt)


def rejection(data: bytes) -> AvatarRejected:
    with pytest.raises(AvatarRejected) as caught:
        validate_avatar(data)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == caught.value.message
    return caught.value


@pytest.mark.parametrize("data, fmt, side", [
    (plain(200), "png", 200),
    (plain(1500, fmt="JPEG"), "jpeg", 1500),
])
def test_square_png_or_jpeg_within_limits_is_accepted(data, fmt, side):
    avatar = validate_avatar(data)

    assert (avatar.format, avatar.side) == (fmt, side)
    widget = Image.open(io.BytesIO(avatar.widget))
    widget.load()
    assert (widget.format, widget.size) == ("PNG", (WIDGET_SIZE, WIDGET_SIZE))
    original = Image.open(io.BytesIO(avatar.original))
    original.load()
    assert (original.format, original.size) == (fmt.upper(), (side, side))


@pytest.mark.parametrize("data, code, message", [
    (plain(640, 480), "avatar_not_square", "The avatar must be square; this image is 640x480."),
    (plain(199), "avatar_too_small", "Each side must be at least 200 px; this image is 199x199."),
    (plain(1501), "avatar_too_large", "Each side must be at most 1500 px; this image is 1501x1501."),
    (plain(3000), "avatar_too_large", "Each side must be at most 1500 px; this image is 3000x3000."),
])
def test_dimension_rules_name_the_size(data, code, message):
    rejected = rejection(data)
    assert (rejected.code, rejected.message) == (code, message)


@pytest.mark.parametrize("data, what", [
    (encode(Image.new("RGB", (200, 200)), "GIF"), "GIF"),
    (encode(Image.new("RGB", (200, 200)), "WEBP"), "WebP"),
    (b"hello, I am not a picture\n" * 10, "not an image"),
])
def test_content_other_than_png_or_jpeg_is_refused(data, what):
    rejected = rejection(data)
    assert rejected.code == "avatar_not_png_or_jpeg"
    assert rejected.message == f"The avatar must be a PNG or JPEG image; this file is {what}."


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_unreadable(fmt):
    whole = noise(300, fmt)
    assert validate_avatar(whole).side == 300  # so the failure below is the cut alone

    assert rejection(whole[: len(whole) // 2]).code == "avatar_unreadable"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_png_signature_without_a_header_is_unreadable():
    assert rejection(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).code == "avatar_unreadable"


@pytest.mark.parametrize("side", [
    20000,  # beyond Pillow's own limit too
    8001,  # just over our limit of 64 megapixels; 8000 is plain too_large
])
def test_declared_size_far_beyond_the_limits_is_a_bomb(side):
    limit = Image.MAX_IMAGE_PIXELS
    data = encode(Image.new("1", (side, side)), "PNG")

    rejected = rejection(data)

    assert rejected.code == "avatar_decompression_bomb"
    assert Image.MAX_IMAGE_PIXELS == limit


def test_empty_file_is_refused():
    assert rejection(b"").code == "avatar_empty"


def test_input_over_the_byte_limit_is_refused_before_parsing():
    padded = plain(200)
    padded += b"\x00" * (MAX_AVATAR_BYTES + 1 - len(padded))
    assert validate_avatar(padded[:MAX_AVATAR_BYTES]).side == 200

    assert rejection(padded).code == "avatar_file_too_large"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_original_is_reencoded_without_hidden_metadata(fmt):
    exif = Image.Exif()
    exif[0x010E] = "secret-exif"  # ImageDescription
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "secret-text")
    extra = {"pnginfo": text} if fmt == "PNG" else {"comment": b"secret-comment"}
    # Pillow stores the ICC profile compressed in PNG, so it is checked on the decoded side.
    picture = Image.new("RGB", (200, 200), "white")
    data = encode(picture, fmt, exif=exif, icc_profile=b"secret-icc", **extra)
    assert b"secret" in data

    original = validate_avatar(data).original

    assert b"secret" not in original
    assert "icc_profile" not in Image.open(io.BytesIO(original)).info


def test_widget_of_16_bit_grey_png_keeps_its_tone():
    data = encode(Image.new("I;16", (200, 200), 0x8000), "PNG")

    widget = Image.open(io.BytesIO(validate_avatar(data).widget))

    red, green, blue, alpha = widget.getpixel((48, 48))
    assert 120 <= red <= 136 and red == green == blue and alpha == 255


def test_an_ordinary_camera_photo_is_refused_as_not_square_not_as_a_bomb():
    rejected = rejection(encode(Image.new("RGB", (4000, 3000)), "JPEG"))
    assert rejected.code == "avatar_not_square"
    assert "4000x3000" in rejected.message
