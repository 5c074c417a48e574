"""The one exception services raise for bad input, and the characters no
text that ezpyr stores may hold."""
from __future__ import annotations

import re

# NUL and the other control characters: no field of the panel, no argument
# of a command takes them. Text that may run over several lines (a
# description) takes line breaks and tabs.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_TEXT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control(value: str, *, multi_line: bool = False) -> bool:
    """Whether ``value`` holds a control character (``multi_line``: other
    than a line break or a tab)."""
    return bool((CONTROL_IN_TEXT_RE if multi_line else CONTROL_RE).search(value))


class Invalid(ValueError):
    """Input a service refuses. ``field`` names the form field it belongs to
    (None: the form as a whole). Nothing has been changed when it is raised."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
