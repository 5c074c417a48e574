from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from ezpyr.access.services import Subject, Target
from ezpyr.forms import Form
from ezpyr.validation import Invalid

# The form's option values: "<prefix>:<id>" ("ug:…" a user group, "u:…" a user,
# "sg:…" a server group, "s:…" a server). Only this page speaks them; the
# service takes a Subject and a Target.
PREFIXES = {"user_group": "ug", "user": "u", "server_group": "sg", "server": "s"}
KINDS = {prefix: kind for kind, prefix in PREFIXES.items()}


def option_value(ref: Subject | Target) -> str:
    return f"{PREFIXES[ref.kind]}:{ref.id}"


def _parse(value: str | None, kinds: tuple[str, ...], field_name: str, what: str) -> tuple[str, str]:
    prefix, _, row_id = (value or "").strip().partition(":")
    kind = KINDS.get(prefix)
    if kind not in kinds or not row_id:
        raise Invalid(f"Choose {what} from the list.", field_name)
    return kind, row_id


def subject_of(value: str | None) -> Subject:
    """The subject an option value names; Invalid when it names none."""
    return Subject(*_parse(value, ("user_group", "user"), "subject", "who gets access"))


def target_of(value: str | None) -> Target:
    """The target an option value names; Invalid when it names none."""
    return Target(*_parse(value, ("server_group", "server"), "target", "what they may reach"))


def grouped_choices(blank: str, groups: dict[str, list[tuple[Subject | Target, str]]]) -> list[SelectChoice]:
    """A blank first option, then one <optgroup> per kind of row."""
    choices = [SelectChoice("", blank)]
    for label, options in groups.items():
        choices.extend(SelectChoice(option_value(ref), text, optgroup=label) for ref, text in options)
    return choices


class AccessRuleForm(Form):
    # The service checks the values (and says which row vanished), so a stale
    # choice gets its own message rather than WTForms' "Not a valid choice".
    subject = SelectField("Who", validate_choice=False)
    target = SelectField("May reach", validate_choice=False)
