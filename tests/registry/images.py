"""Images made in memory for the avatar tests."""
import io

from PIL import Image


def png(width: int, height: int | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height or width), (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int, height: int | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height or width), (40, 80, 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


def gif(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("P", (side, side)).save(out, "GIF")
    return out.getvalue()


def noise_png(side: int) -> bytes:
    import os
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def bomb_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()
