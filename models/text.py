"""Text that can be stored: no control characters.

PostgreSQL refuses NUL in text, and no person means a control character in a name, an email
or a note. Every entry point (slash commands, modal fields, the registry file) checks text
with `control_character_problem` before anything reaches the database.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and lone surrogates (which cannot be stored as UTF-8). Tab and line
# breaks are ordinary whitespace wherever text may span lines (command text, multi-line fields).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_OR_LINE_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character_problem(
    text: str, what: str = "The text", *, multiline: bool = True
) -> str | None:
    """What is wrong when `text` holds a control character (None when it holds none).

    `what` names the text in the message; with `multiline`, tab and line breaks are allowed."""
    found = (CONTROL if multiline else CONTROL_OR_LINE_BREAK).search(text)
    if found is None:
        return None
    return (
        f"{what} has a control character (U+{ord(found.group()):04X}) at character "
        f"{found.start() + 1}: remove it and try again."
    )


__all__ = ["CONTROL", "CONTROL_OR_LINE_BREAK", "control_character_problem"]
