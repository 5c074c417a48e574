"""The base form: WTForms fed from a Pyramid request.

CSRF is checked by Pyramid itself for every unsafe request (see
``ezpyr.security``); templates add the token with the ``csrf`` macro.
"""
from __future__ import annotations

import wtforms

from ezpyr.validation import Invalid, has_control

# NUL and the other control characters: no field of the panel takes them
# (a multi-line field takes line breaks and tabs).
NO_CONTROL = "This field must not hold control characters (such as NUL)."


class _FormData:
    """Gives WebOb's MultiDict the ``getlist`` WTForms expects."""

    def __init__(self, multidict):
        self._md = multidict

    def __iter__(self):
        return iter(self._md)

    def __len__(self):
        return len(self._md)

    def __contains__(self, name):
        return name in self._md

    def getlist(self, name):
        return self._md.getall(name)


class Form(wtforms.Form):
    form_errors: list[str]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.form_errors = []

    def validate(self, extra_validators=None) -> bool:
        """The fields' own checks, and no control characters in any text."""
        valid = super().validate(extra_validators)
        for field in self:
            multi_line = isinstance(field, wtforms.TextAreaField)
            for value in field.raw_data or []:
                if isinstance(value, str) and has_control(value, multi_line=multi_line):
                    if isinstance(field.errors, tuple):
                        field.errors = list(field.errors)
                    field.errors.append(NO_CONTROL)
                    valid = False
                    break
        return valid

    @classmethod
    def from_request(cls, request, **kwargs):
        formdata = _FormData(request.POST) if request.method == "POST" else None
        return cls(formdata, **kwargs)

    def add_error(self, error: Invalid) -> None:
        """Show a service's refusal beside its field (or above the form)."""
        field = getattr(self, error.field, None) if error.field else None
        if field is not None:
            if isinstance(field.errors, tuple):
                field.errors = list(field.errors)
            field.errors.append(error.message)
        else:
            self.form_errors.append(error.message)


def strip(value):
    return value.strip() if isinstance(value, str) else value
