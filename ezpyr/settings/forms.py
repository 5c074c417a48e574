from wtforms import BooleanField, IntegerField
from wtforms.validators import InputRequired, NumberRange

from ezpyr.forms import Form
from ezpyr.settings.services import LABELS, LIMITS


class WholeNumberField(IntegerField):
    """An IntegerField that leaves "abc" to its range check, so the one
    message beside the field says what to type."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None


def number(name: str) -> WholeNumberField:
    low, high = LIMITS[name]
    message = f"Type a whole number from {low} to {high}."
    return WholeNumberField(LABELS[name], [InputRequired(message), NumberRange(low, high, message)])


class SettingsForm(Form):
    session_timeout_minutes = number("session_timeout_minutes")
    password_min_length = number("password_min_length")
    password_require_mixed = BooleanField(LABELS["password_require_mixed"])
    totp_required = BooleanField(LABELS["totp_required"])
    lockout_threshold = number("lockout_threshold")
    lockout_minutes = number("lockout_minutes")
