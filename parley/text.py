"""Text as a person could have typed it: the one rule every service applies to what
people and pages send (messages, names, titles, triggers)."""
from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and UTF-16 surrogates (never valid on their own).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def strip_controls(value: str) -> str:
    """Line breaks become \\n, other controls go."""
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
