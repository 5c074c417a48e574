"""Command guard: per user group, the commands the gateway shell refuses.

A rule's pattern is a Python regular expression. A command line is refused
when at least one rule of the user's group matches one of its simple
commands (:func:`ezpyr.guard.lines.simple_commands`: ``echo x; rm -rf /`` is
two commands, ``r''m`` reads ``rm``), where "matches" means
``re.search(pattern, simple_command)`` (so ``rm -rf`` matches anywhere in a
command; anchor with ``^`` to match only a command's start).
:meth:`GuardService.check` is the one place this is decided; the gateway
service and the panel's test box both call it.

The gateway runs every rule on every line a user types, so no pattern may
take long: patterns are matched with the ``regex`` module (the same syntax
as Python's ``re``) under a time limit per simple command, and a line a rule
cannot decide within it is refused (the guard fails closed). A pattern that
backtracks catastrophically on a probe line is refused when it is saved.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.orm import Session, selectinload

from ezpyr.activity.services import NoActivity
from ezpyr.guard.lines import simple_commands
from ezpyr.paging import cap_search
from ezpyr.guard.models import CommandRule
from ezpyr.users.models import User, UserGroup
from ezpyr.validation import Invalid

MAX_PATTERN = 500
MAX_DESCRIPTION = 2000
# Seconds one rule may take on one command line before the line is refused.
MATCH_SECONDS = 0.05
# A pattern is tried on these when saved; it must decide each within
# MATCH_SECONDS (runs of one character, with and without an end that fails).
PROBE_LENGTH = 40


def probes(pattern: str) -> list[str]:
    """Lines that make a backtracking pattern show it: long runs of each
    character the pattern names, then a character that breaks the match."""
    characters = {c for c in pattern if c.isprintable() and not c.isspace()} | {"a", " ", "0"}
    lines = []
    for c in sorted(characters):
        lines += [c * PROBE_LENGTH, c * PROBE_LENGTH + "\x00", (c + " ") * (PROBE_LENGTH // 2) + "\x00"]
    return lines


def check_pattern(pattern: str | None) -> str:
    """The pattern as given, if it is one the guard can use; else Invalid."""
    pattern = pattern or ""
    if not pattern.strip():
        raise Invalid("A pattern is required.", "pattern")
    if len(pattern) > MAX_PATTERN:
        raise Invalid(
            f"A pattern must be at most {MAX_PATTERN} characters; this one has {len(pattern)}.",
            "pattern",
        )
    if "\n" in pattern or "\r" in pattern:
        raise Invalid("A pattern must be on one line.", "pattern")
    if any(ord(c) < 32 or ord(c) == 127 for c in pattern):
        raise Invalid("A pattern must not hold control characters (write \\t, \\x00 … instead).",
                      "pattern")
    try:
        re.compile(pattern)
        compiled = regex.compile(pattern)
    except (re.error, regex.error) as error:
        raise Invalid(f"This is not a valid regular expression: {error}.", "pattern") from None
    for line in probes(pattern):
        try:
            compiled.search(line, timeout=MATCH_SECONDS * 4)
        except TimeoutError:
            raise Invalid(
                "This pattern can take exponential time on some lines (nested repetition such as "
                "(a+)+ or (a|aa)+): the gateway would stall on them. Write it without a "
                "repetition inside a repetition.", "pattern") from None
    return pattern


def matches(rule: CommandRule, command: str) -> bool:
    """Whether ``rule`` refuses the command line ``command`` (one of its
    simple commands matches). A stored pattern this Python cannot compile,
    or one that cannot decide within MATCH_SECONDS, refuses: the guard fails
    closed, and the test box shows which rule to fix."""
    try:
        return any(regex.search(rule.pattern, simple, timeout=MATCH_SECONDS) is not None
                   for simple in simple_commands(command))
    except (regex.error, TimeoutError):
        return True


def refusing_rules(rules, command: str) -> list:
    """The rules among ``rules`` (anything with a ``pattern``) that refuse
    ``command``. The gateway service calls this with the rules it loaded at
    the session's start."""
    return [rule for rule in rules if matches(rule, command)]


@dataclass
class GroupRules:
    group: UserGroup
    rules: list[CommandRule]


@dataclass
class Verdict:
    """What the guard says about one command for one group (or user)."""

    command: str
    group: UserGroup | None
    user: User | None
    refused_by: list[CommandRule]
    rule_count: int

    @property
    def allowed(self) -> bool:
        return not self.refused_by


def rule_label(rule: CommandRule) -> str:
    """How the activity log and the panel name a rule: "ops: ^rm\\s+-rf"."""
    return f"{rule.user_group.name}: {rule.pattern}"


class GuardService:
    """Command rules, and the decision on a command; each change is
    recorded in the activity log (``activity``: ``Services.activity``)."""

    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    # -- reading -------------------------------------------------------------
    def get(self, rule_id: str) -> CommandRule | None:
        return self.dbsession.get(CommandRule, rule_id)

    def search(self, text: str = "", after: tuple[str, str, str] | None = None) -> Select:
        """Every rule, by user group name, then pattern; ``text`` keeps rules
        whose pattern, description or group name contains it; ``after`` (a
        rule's :meth:`sort_key`) keeps the rules after that one (the next page)."""
        text = cap_search(text)
        keys = (UserGroup.name, CommandRule.pattern, CommandRule.id)
        stmt = (
            select(CommandRule)
            .join(CommandRule.user_group)
            .options(selectinload(CommandRule.user_group))
            .order_by(*keys)
        )
        if text:
            stmt = stmt.where(or_(
                CommandRule.pattern.contains(text, autoescape=True),
                CommandRule.description.contains(text, autoescape=True),
                UserGroup.name.contains(text, autoescape=True),
            ))
        if after is not None:
            stmt = stmt.where(tuple_(*keys) > tuple_(*after))
        return stmt

    @staticmethod
    def sort_key(rule: CommandRule) -> tuple[str, str, str]:
        """Where ``rule`` stands in :meth:`search`'s order."""
        return (rule.user_group.name, rule.pattern, rule.id)

    def group_named(self, name: str) -> UserGroup:
        """The user group named ``name`` (names are unique without regard to
        case); Invalid when there is none."""
        name = (name or "").strip()
        group = self.dbsession.scalars(
            select(UserGroup).where(func.lower(UserGroup.name) == name.lower())).first()
        if group is None:
            raise Invalid(f"There is no user group named {name!r}.", "user_group_id")
        return group

    def grouped(self, text: str = "") -> list[GroupRules]:
        """Every rule, grouped by user group (groups by name, rules by
        pattern); ``text`` keeps rules whose pattern, description or group
        name contains it."""
        groups: list[GroupRules] = []
        for rule in self.dbsession.scalars(self.search(text)):
            if not groups or groups[-1].group is not rule.user_group:
                groups.append(GroupRules(rule.user_group, []))
            groups[-1].rules.append(rule)
        return groups

    def rules_of(self, group: UserGroup | None) -> list[CommandRule]:
        if group is None:
            return []
        return list(self.dbsession.scalars(
            select(CommandRule)
            .where(CommandRule.user_group_id == group.id)
            .order_by(CommandRule.pattern, CommandRule.id)
        ))

    # -- the decision ----------------------------------------------------------
    def check(self, group: UserGroup | None, command: str) -> list[CommandRule]:
        """The rules of ``group`` that refuse ``command`` (empty: allowed).
        A user in no group has no rules."""
        return refusing_rules(self.rules_of(group), command)

    def check_user(self, user: User, command: str) -> list[CommandRule]:
        """The rules of ``user``'s group that refuse ``command``."""
        return self.check(user.group, command)

    def verdict(self, command: str, group: UserGroup | None, user: User | None = None) -> Verdict:
        """What the guard says about ``command`` for ``group`` (for ``user``:
        the user's group). Changes nothing."""
        if not (command or "").strip():
            raise Invalid("Type the command to test.", "command")
        if user is not None:
            group = user.group
        return Verdict(command=command, group=group, user=user,
                       refused_by=self.check(group, command), rule_count=len(self.rules_of(group)))

    def try_command(self, command: str, *, user_group_id: str | None = None,
                    username: str | None = None) -> Verdict:
        """The test box: check ``command`` for a user group (by id), or for
        a user (by username; then the user's group is used)."""
        user_group_id, username = (user_group_id or "").strip(), (username or "").strip()
        if user_group_id and username:
            raise Invalid("Choose a user group or type a username, not both.", "username")
        if username:
            user = self.dbsession.scalars(select(User).where(User.username == username)).first()
            if user is None:
                raise Invalid(f"No user is named {username!r}.", "username")
            return self.verdict(command, None, user)
        if user_group_id:
            group = self.dbsession.get(UserGroup, user_group_id)
            if group is None:
                raise Invalid("That user group no longer exists; choose another.", "user_group_id")
            return self.verdict(command, group)
        raise Invalid("Choose a user group, or type a username.", "user_group_id")

    # -- changing ---------------------------------------------------------------
    def _check(self, user_group_id: str | None, pattern: str, description: str,
               rule: CommandRule | None = None) -> tuple[UserGroup, str, str]:
        group = self.dbsession.get(UserGroup, user_group_id) if user_group_id else None
        if group is None:
            if user_group_id:
                raise Invalid("That user group no longer exists; choose another.", "user_group_id")
            raise Invalid("Choose the user group this rule applies to.", "user_group_id")
        pattern = check_pattern(pattern)
        description = (description or "").strip()
        if len(description) > MAX_DESCRIPTION:
            raise Invalid(
                f"The description must be at most {MAX_DESCRIPTION} characters.", "description"
            )
        # compared here, not in SQL: MariaDB's collation would call "^RM" and
        # "^rm " equal, and they are different patterns
        clash = [other for other in self.rules_of(group)
                 if other.pattern == pattern and other is not rule]
        if clash:
            raise Invalid(
                f"User group {group.name} already has a rule with this pattern.", "pattern"
            )
        return group, pattern, description

    def create(self, user_group_id: str | None, pattern: str, description: str = "") -> CommandRule:
        group, pattern, description = self._check(user_group_id, pattern, description)
        rule = CommandRule(user_group=group, pattern=pattern, description=description)
        self.dbsession.add(rule)
        self.dbsession.flush()
        self.activity.record("guard.create", rule_label(rule))
        return rule

    def update(self, rule: CommandRule, user_group_id: str | None, pattern: str,
               description: str = "") -> CommandRule:
        group, pattern, description = self._check(user_group_id, pattern, description, rule)
        old = rule_label(rule)
        rule.user_group = group
        rule.pattern = pattern
        rule.description = description
        self.dbsession.flush()
        label = rule_label(rule)
        self.activity.record("guard.update", label, f"was {old}" if old != label else "")
        return rule

    def delete(self, rule: CommandRule) -> None:
        label = rule_label(rule)
        self.dbsession.delete(rule)
        self.dbsession.flush()
        self.activity.record("guard.delete", label)
