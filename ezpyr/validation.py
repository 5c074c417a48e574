"""The one exception services raise for bad input."""
from __future__ import annotations


class Invalid(ValueError):
    """Input a service refuses. ``field`` names the form field it belongs to
    (None: the form as a whole). Nothing has been changed when it is raised."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
