"""What every area's command-line module (``ezpyr/<area>/cli.py``) stands on:
the services of one transaction (:class:`Admin`), what a command did
(:class:`Done`), tables for people, and :class:`Areas`, through which each
module adds its subcommands to ``ezpyr-admin``'s parser."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ezpyr.faces import CLI, offer
from ezpyr.validation import Invalid, has_control

if TYPE_CHECKING:
    from ezpyr.passwords import Passwords
    from ezpyr.services import Services
    from ezpyr.scripts.node_env import NodeEnv
    from ezpyr.servers.services import ServerService
    from ezpyr.users.services import UserService


class Refused(Invalid):
    """Invalid with several reasons (every error of a server or a CSV file;
    ``count``: how many there are, when ``errors`` holds only the first)."""

    def __init__(self, message: str, errors: list[str], count: int | None = None):
        super().__init__(message)
        self.errors = errors
        self.count = len(errors) if count is None else count


class Done:
    """What a command did: text for people, data for ``--json``, the exit code.
    Printed only after the transaction committed. ``follow(env, args)``,
    when given, runs once it has, and its Done is the command's (a job
    that the transaction started)."""

    def __init__(self, text: str | list[str] = "", data: dict | None = None, code: int = 0,
                 *, raw: bool = False, follow=None):
        self.text = text if isinstance(text, str) else "\n".join(text)
        self.data = data if data is not None else {}
        self.code = code
        self.raw = raw  # text is written exactly as it is (a CSV file)
        self.follow = follow


# arguments that are text of several lines (as the panel's text areas): they may hold line
# breaks and tabs, no other control character
MULTI_LINE_ARGUMENTS = {"description"}


def check_arguments(args) -> None:
    """Refuse an argument holding a control character (NUL, ESC, …), with
    nothing done: no field of the panel takes one, so no command does."""
    for name, value in vars(args).items():
        if name == "config":
            continue
        for each in value if isinstance(value, list) else [value]:
            if isinstance(each, str) and has_control(each, multi_line=name in MULTI_LINE_ARGUMENTS):
                raise Invalid(f"The {name.replace('_', ' ')} must not hold control characters (such as NUL "
                              "or ESC). Nothing was changed.")


def table(headers: list[str], rows: list[list], empty: str) -> str:
    if not rows:
        return empty
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [[h.upper() for h in headers], *cells])


def when(value) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


class Admin:
    """One command's services (``services``: the same as the panel's, acting
    as "cli") and the lookups by name that the command line needs."""

    def __init__(self, env: NodeEnv, dbsession):
        self.env = env
        self.dbsession = dbsession
        self.services: Services = env.services(dbsession)

    @property
    def passwords(self) -> Passwords:
        return self.services.passwords

    @property
    def users(self) -> UserService:
        return self.services.users

    @property
    def servers(self) -> ServerService:
        return self.services.servers

    # -- finding things by name -------------------------------------------------------
    def user(self, username: str):
        user = self.users.by_username((username or "").strip())
        if user is None:
            raise Invalid(f"There is no user named {username!r}.")
        return user

    def user_group(self, name: str):
        name = (name or "").strip()
        for group in self.dbsession.scalars(self.services.user_groups.search(name)):
            if group.name == name:
                return group
        raise Invalid(f"There is no user group named {name!r}; "
                      f"ezpyr-admin CONFIG user-groups list shows them.")

    def server(self, name: str):
        name = (name or "").strip()
        server = self.servers.by_name(name)
        if server is None:
            owner = self.services.server_lookup.name_owner(name)  # other case
            server = self.servers.get(owner) if owner else None
        if server is None:
            raise Invalid(f"There is no server named {name!r}.")
        return server

    def server_group(self, name: str):
        group = self.services.server_lookup.group_by_name((name or "").strip())
        if group is None:
            raise Invalid(f"There is no server group named {name.strip()!r}; "
                          f"ezpyr-admin CONFIG server-groups list shows them.")
        return group

    def access_rule(self, rule_id: str):
        rule = self.services.access.get((rule_id or "").strip())
        if rule is None:
            raise Invalid(f"There is no access rule with id {rule_id!r}; "
                          "ezpyr-admin CONFIG access list shows their ids.")
        return rule

    def guard_rule(self, rule_id: str):
        rule = self.services.guard.get((rule_id or "").strip())
        if rule is None:
            raise Invalid(f"There is no command rule with id {rule_id!r}; "
                          "ezpyr-admin CONFIG guard list shows their ids.")
        return rule


def read_password(what: str) -> str:
    """One line from standard input (a pipe or a prompt-less terminal)."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise Invalid(f"--password-stdin: no {what} on standard input; "
                      "pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | ezpyr-admin ...")
    if has_control(line):
        raise Invalid(f"--password-stdin: the {what} must not hold control characters (such as NUL). "
                      "Nothing was changed.")
    return line


class Areas:
    """The parser's areas (``users``, ``servers`` …) as the modules see them."""

    def __init__(self, areas, common: argparse.ArgumentParser):
        self.areas = areas
        self.common = common

    def area(self, name: str, help_text: str):
        sub = self.areas.add_parser(name, parents=[self.common], help=help_text, description=help_text)
        return sub.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(self, actions, name: str, func, help_text: str, *, does=None) -> argparse.ArgumentParser:
        """``does``: the activity action(s) the command offers (ezpyr.faces)."""
        offer(CLI, does)
        sub = actions.add_parser(name, parents=[self.common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    @staticmethod
    def one_of(sub, *options, required: bool = True) -> None:
        group = sub.add_mutually_exclusive_group(required=required)
        for flags, kwargs in options:
            group.add_argument(*flags, **kwargs)


class JobFailed(Exception):
    """A job that failed for another reason than a refusal (exit 1)."""


def terminal_progress(stream=sys.stderr):
    """A job's progress as a bar on the terminal: what it counts, how far,
    the time left."""
    def show(job):
        width = 30
        filled = int(width * job.percent / 100)
        left = f" ({job.time_left})" if job.time_left else ""
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {job.percent:3d}%  {job.message}{left}\033[K")
        stream.flush()
    return show
