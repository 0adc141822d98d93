"""Operator avatar validation.

An avatar is accepted only if the file's content (never its name or declared content
type) is PNG or JPEG, the image is square, and each side is from 200 to 1500 px
inclusive. Everything else is refused with an `AvatarRejected` carrying a
machine-readable `code` and a human `message` saying which rule failed.

Checks run in this order; the first failure wins:

1. `avatar_empty`              - zero bytes.
2. `avatar_file_too_large`     - more than MAX_AVATAR_BYTES of input; nothing is parsed.
3. `avatar_not_png_or_jpeg`    - the leading magic bytes are not PNG or JPEG.
4. `avatar_unreadable`         - the PNG/JPEG header cannot be parsed.
5. `avatar_decompression_bomb` - the header declares more than MAX_DECLARED_PIXELS
                                 (or Pillow's own bomb limit trips).
6. `avatar_not_square`         - width != height.
7. `avatar_too_small`          - a side below MIN_SIDE.
8. `avatar_too_large`          - a side above MAX_SIDE.
9. `avatar_unreadable`         - the pixels cannot be fully decoded (truncated/corrupt).

Rules 5-8 use only the declared header size, so pixels are decoded only for images
that could be accepted: a bomb or an oversized image is never decompressed. The bomb
check comes before the size rules so a hostile header gets its own code; not-square
comes before the side limits because cropping is the fix the user needs first.
The bomb limit (64 megapixels declared) is far above any camera photo, which gets the
size rule it breaks, and far below what would exhaust memory when decoded.

Dimensions are judged as stored in the file: the EXIF orientation tag is ignored
(a rotation by 90 degrees keeps a square square, so it cannot change the outcome).

Accepted images are re-encoded through Pillow with only pixel data (and PNG
transparency) kept, so text chunks, EXIF, XMP, comments and ICC profiles in the
upload are never served. Animated PNGs keep their first frame only.
`ImageFile.LOAD_TRUNCATED_IMAGES` is left at False so truncated files fail to decode.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

MAX_AVATAR_BYTES = 10 * 1024 * 1024
WIDGET_SIZE = 96  # px, the size served to the widget
MIN_SIDE = 200
MAX_SIDE = 1500
# Far beyond any camera photo (a 12 MP photo is just "not square"), far below what
# would exhaust memory when decoded.
MAX_DECLARED_PIXELS = 64_000_000
JPEG_QUALITY = 90

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PILLOW_FORMAT = {"png": "PNG", "jpeg": "JPEG"}

# Only used to name a refused format in the message; the decision itself is "PNG or
# JPEG magic, or refuse".
_OTHER_FORMATS = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WebP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"ftypavif", 4, "AVIF"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"),
)


class AvatarRejected(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Avatar:
    format: str  # "png" or "jpeg"
    side: int  # width == height
    original: bytes  # re-encoded clean copy in the uploaded format
    widget: bytes  # WIDGET_SIZE x WIDGET_SIZE PNG


def validate_avatar(data: bytes) -> Avatar:
    if not data:
        raise AvatarRejected("avatar_empty", "The avatar file is empty.")
    if len(data) > MAX_AVATAR_BYTES:
        raise AvatarRejected(
            "avatar_file_too_large",
            f"The avatar file must be at most 10 MiB ({MAX_AVATAR_BYTES} bytes); "
            f"this file is {len(data)} bytes.",
        )
    fmt = _sniff_format(data)

    with warnings.catch_warnings():
        # Local to this block: Pillow's global MAX_IMAGE_PIXELS is left alone.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[fmt]]) as img:
                _check_dimensions(*img.size)
                img.load()
                clean = _without_metadata(img)
        except AvatarRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise AvatarRejected(
                "avatar_decompression_bomb",
                f"The avatar declares far more pixels than the {MAX_SIDE}x{MAX_SIDE} "
                "maximum; it was not decoded.",
            ) from None
        except Exception as exc:
            # Pillow signals corrupt input with many exception types (OSError,
            # SyntaxError, ValueError, EOFError, struct.error, ...); all mean the same.
            raise AvatarRejected(
                "avatar_unreadable",
                f"The avatar looks like a {fmt.upper()} file but cannot be read; "
                "it is truncated or corrupt.",
            ) from exc

    return Avatar(
        format=fmt,
        side=clean.width,
        original=_encode_original(clean, fmt),
        widget=_encode_widget(clean),
    )


def _sniff_format(data: bytes) -> str:
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    name = next((n for magic, at, n in _OTHER_FORMATS if data[at:at + len(magic)] == magic), None)
    what = name if name else "not an image"
    raise AvatarRejected(
        "avatar_not_png_or_jpeg", f"The avatar must be a PNG or JPEG image; this file is {what}."
    )


def _check_dimensions(width: int, height: int) -> None:
    size = f"{width}x{height}"
    if width * height > MAX_DECLARED_PIXELS:
        raise AvatarRejected(
            "avatar_decompression_bomb",
            f"The avatar declares {size} pixels, far beyond the {MAX_SIDE}x{MAX_SIDE} "
            "maximum; it was not decoded.",
        )
    if width != height:
        raise AvatarRejected(
            "avatar_not_square", f"The avatar must be square; this image is {size}."
        )
    if width < MIN_SIDE:
        raise AvatarRejected(
            "avatar_too_small", f"Each side must be at least {MIN_SIDE} px; this image is {size}."
        )
    if width > MAX_SIDE:
        raise AvatarRejected(
            "avatar_too_large", f"Each side must be at most {MAX_SIDE} px; this image is {size}."
        )


def _without_metadata(img: Image.Image) -> Image.Image:
    clean = img.copy()
    # Pillow's encoders copy some keys from `info` (JPEG comment, PNG ICC profile);
    # transparency is the only one that is part of the picture.
    clean.info = {k: v for k, v in img.info.items() if k == "transparency"}
    return clean


def _encode_original(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        img.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        img.save(out, "PNG")
    return out.getvalue()


def _encode_widget(img: Image.Image) -> bytes:
    if img.mode.startswith("I"):
        # 16-bit grey: convert() would clip every value above 255 to white.
        img = img.point(lambda v: v * (1 / 256)).convert("L")
    thumb = img.convert("RGBA").resize((WIDGET_SIZE, WIDGET_SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "PNG")
    return out.getvalue()
