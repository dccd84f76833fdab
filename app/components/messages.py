"""Messages for the user as plain text: no terminal escape codes, no control characters.

Errors raised by libraries (torch's unpickler, OpenCV) may carry ANSI colour codes meant
for a terminal; in a status bar or a dialog they show as garbage (``\\x1b[1m``).
"""

from __future__ import annotations

import re

#: ANSI CSI sequences (colours, cursor moves) and OSC sequences (titles, links)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(message: object, max_len: int = 2000) -> str:
    """``message`` as plain text: escape sequences and control characters removed
    (newlines and tabs kept), at most ``max_len`` characters."""
    text = _CONTROL.sub("", _ANSI.sub("", str(message)))
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


__all__ = ["plain_text"]
