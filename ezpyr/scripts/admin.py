"""ezpyr-admin CONFIG AREA ACTION: the panel's admin actions, for scripts.

Every change goes through the same service as the panel's page, in one
transaction: it is checked first and then done whole, or refused with a
message and exit code 2, with nothing changed. ``servers import`` runs the
panel's import job in this process and waits for it (a progress bar on a
terminal). No argument may hold a control character (NUL, ESC …), as no
field of the panel may. Each change is written to the activity log as the
panel writes it (who: "cli"). ``--json`` prints machine-readable output (on
an error: ``{"error": ...}``).

Things are named by name (username, group name, server name); only access
and command rules, which have no name, by their id.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import asdict, fields
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ezpyr.access.services import AccessService
from ezpyr.activity.services import ActivityLog
from ezpyr.auth.services import AuthService
from ezpyr.gateway.services import reset_host_key
from ezpyr.gateway.sessions import SessionLog, log_dir
from ezpyr.guard.services import GuardService
from ezpyr.jobs.models import JobState
from ezpyr.jobs.services import wait_for
from ezpyr.passwords import Passwords
from ezpyr.replication.capture import NodeIsReadOnly
from ezpyr.scripts.cluster import JobFailed, terminal_progress
from ezpyr.scripts.failures import explain, one_line_errors
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.secretbox import SecretKeyMissing
from ezpyr.servers import csvio
from ezpyr.servers.imports import Importer, ServerImports, servers as counted_servers
from ezpyr.servers.services import (NO_GROUP, InvalidServer, ServerGroupService, ServerInput,
                                    ServerLookup, ServerService, plural)
from ezpyr.settings.services import LABELS, LIMITS, PanelSettings, SettingsService
from ezpyr.users.groups import UserGroupService
from ezpyr.users.keys import UserKeyService
from ezpyr.users.services import UserService, generate_password
from ezpyr.validation import Invalid, has_control

PROG = "ezpyr-admin"
# arguments that are text of several lines (as the panel's text areas): they may hold line
# breaks and tabs, no other control character
MULTI_LINE_ARGUMENTS = {"description"}


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
    """The services of one transaction, the lookups by name, the activity log."""

    def __init__(self, env: NodeEnv, dbsession):
        self.env = env
        self.dbsession = dbsession
        self._passwords = None
        self.log = ActivityLog(dbsession, env.settings.get("ezpyr.node_name", ""))

    @property
    def passwords(self) -> Passwords:
        if self._passwords is None:
            self._passwords = Passwords.from_settings(self.env.settings)
        return self._passwords

    def record(self, action: str, target: str = "", details: str = "") -> None:
        self.log.record(action, target, details, username="cli", remote_addr="cli")

    # -- services -------------------------------------------------------------------
    @property
    def users(self) -> UserService:
        return UserService(self.dbsession, self.passwords)

    @property
    def servers(self) -> ServerService:
        return ServerService(self.dbsession, self.env.secret_box)

    # -- finding things by name -------------------------------------------------------
    def user(self, username: str):
        user = self.users.by_username((username or "").strip())
        if user is None:
            raise Invalid(f"There is no user named {username!r}.")
        return user

    def user_group(self, name: str):
        name = (name or "").strip()
        service = UserGroupService(self.dbsession)
        for group in self.dbsession.scalars(service.search(name)):
            if group.name == name:
                return group
        raise Invalid(f"There is no user group named {name!r}; "
                      f"ezpyr-admin CONFIG user-groups list shows them.")

    def server(self, name: str):
        name = (name or "").strip()
        server = self.servers.by_name(name)
        if server is None:
            owner = ServerLookup(self.dbsession).name_owner(name)  # other case
            server = self.servers.get(owner) if owner else None
        if server is None:
            raise Invalid(f"There is no server named {name!r}.")
        return server

    def server_group(self, name: str):
        group = ServerLookup(self.dbsession).group_by_name((name or "").strip())
        if group is None:
            raise Invalid(f"There is no server group named {name.strip()!r}; "
                          f"ezpyr-admin CONFIG server-groups list shows them.")
        return group

    def access_rule(self, rule_id: str):
        rule = AccessService(self.dbsession).get((rule_id or "").strip())
        if rule is None:
            raise Invalid(f"There is no access rule with id {rule_id!r}; "
                          "ezpyr-admin CONFIG access list shows their ids.")
        return rule

    def guard_rule(self, rule_id: str):
        rule = GuardService(self.dbsession).get((rule_id or "").strip())
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


# -- users ----------------------------------------------------------------------------

def user_data(a: Admin, user, *, with_keys: bool = False, key_count: int | None = None) -> dict:
    data = {
        "id": user.id, "username": user.username, "full_name": user.full_name,
        "email": user.email, "role": user.role,
        "group": user.group.name if user.group else None,
        "suspended": bool(user.suspended), "totp_enabled": bool(user.totp_enabled),
        "locked": AuthService(a.dbsession, a.passwords).is_locked(user.username),
        "created_at": when(user.created_at),
    }
    if key_count is not None:
        data["keys"] = key_count
    else:
        keys = UserKeyService(a.dbsession).keys_of(user)
        data["keys"] = [key_data(k) for k in keys] if with_keys else len(keys)
    return data


def user_status(data: dict) -> str:
    words = ["suspended" if data["suspended"] else "active"]
    if data["locked"]:
        words.append("locked")
    return ",".join(words)


def users_list(a: Admin, args) -> Done:
    users = list(a.dbsession.scalars(a.users.search((args.search or "").strip())))
    counts = UserKeyService(a.dbsession).counts(users)
    rows = [user_data(a, u, key_count=counts.get(u.id, 0)) for u in users]
    text = table(["username", "role", "group", "status", "2fa", "keys", "full name"],
                 [[d["username"], d["role"], d["group"] or "-", user_status(d),
                   "on" if d["totp_enabled"] else "off", d["keys"], d["full_name"]] for d in rows],
                 "no users" + (f" match {args.search!r}" if args.search else ""))
    return Done(text, {"users": rows})


def users_locked(a: Admin, args) -> Done:
    """Who is held back from signing in on this node (the page Users → Sign-in lockouts)."""
    holds = AuthService(a.dbsession, a.passwords).throttled()
    rows = [{**h, "until": h["until"].isoformat() + "Z"} for h in holds]
    text = table(["held back", "account", "address", "failures", "until (UTC)"],
                 [[h["kind"], h["username"] or "-", h["address"] or "-", h["failures"],
                   h["until"][:16].replace("T", " ")] for h in rows],
                 "nobody is locked out on this node")
    return Done(text, {"locked": rows})


def users_release_address(a: Admin, args) -> Done:
    address = args.address.strip()
    if not AuthService(a.dbsession, a.passwords).throttle().unlock_address(a.dbsession, address):
        raise Invalid(f"{address} is not locked out on this node.")
    a.record("auth.release_address", address)
    return Done(f"released {address}: it may sign in again on this node", {"released": address})


def users_show(a: Admin, args) -> Done:
    d = user_data(a, a.user(args.username), with_keys=True)
    lines = [f"username:   {d['username']}", f"full name:  {d['full_name']}",
             f"e-mail:     {d['email']}", f"role:       {d['role']}",
             f"group:      {d['group'] or '-'}", f"status:     {user_status(d)}",
             f"2fa:        {'on' if d['totp_enabled'] else 'off'}",
             f"created:    {d['created_at']}", f"ssh keys:   {len(d['keys'])}"]
    lines += [f"  {k['fingerprint']}  {k['type']}  {k['name']}" for k in d["keys"]]
    return Done(lines, {"user": d})


def users_add(a: Admin, args) -> Done:
    password = read_password("password") if args.password_stdin else None
    group = a.user_group(args.group) if args.group else None
    generated = None
    if password is None:
        generated = password = generate_password(
            SettingsService(a.dbsession).current().password_min_length)
    user = a.users.create(args.username, password, role=(args.role or "").strip(),
                          full_name=args.full_name or "", email=args.email or "",
                          group_id=group.id if group else None)
    a.record("user.create", user.username)
    lines = [f"created user {user.username} ({user.role})"]
    data = {"message": lines[0], "user": user_data(a, user)}
    if generated:
        lines.append(f"password for {user.username}: {generated}  (shown once)")
        data["password"] = generated
    return Done(lines, data)


def users_edit(a: Admin, args) -> Done:
    user = a.user(args.username)
    if args.group is not None and args.no_group:
        raise Invalid("Give --group NAME or --no-group, not both.")
    if all(v is None for v in (args.full_name, args.email, args.role, args.group,
                               args.rename)) and not args.no_group:
        raise Invalid("Nothing to change: give --rename, --full-name, --email, --role, "
                      "--group or --no-group.")
    group_id = user.group_id
    if args.group is not None:
        group_id = a.user_group(args.group).id
    elif args.no_group:
        group_id = None
    old = user.username
    a.users.update(
        user, args.rename if args.rename is not None else user.username,
        role=(args.role.strip() if args.role is not None else user.role),
        full_name=args.full_name if args.full_name is not None else user.full_name,
        email=args.email if args.email is not None else user.email,
        group_id=group_id,
    )
    a.record("user.update", user.username, f"renamed from {old}" if old != user.username else "")
    message = f"saved user {user.username}" + (f" (was {old})" if old != user.username else "")
    return Done(message, {"message": message, "user": user_data(a, user)})


def user_action(activity: str, done: str, act):
    def command(a: Admin, args) -> Done:
        user = a.user(args.username)
        act(a, user)
        a.record(activity, user.username)
        message = done.format(name=user.username)
        return Done(message, {"message": message, "user": user_data(a, user)})
    return command


def unlock(a: Admin, user) -> None:
    if not AuthService(a.dbsession, a.passwords).unlock(user.username):
        raise Invalid(f"{user.username} is not locked on this node.")


users_suspend = user_action(
    "user.suspend", "suspended {name}: they cannot sign in, and their sessions have ended",
    lambda a, user: a.users.suspend(user))
users_reinstate = user_action(
    "user.reinstate", "reinstated {name}: they may sign in again",
    lambda a, user: a.users.reinstate(user))
users_reset_2fa = user_action(
    "user.reset_2fa", "two-factor sign-in is off for {name}; they may set it up again",
    lambda a, user: a.users.reset_totp(user))
users_unlock = user_action("user.unlock", "unlocked {name} on this node", unlock)


def users_reset_password(a: Admin, args) -> Done:
    user = a.user(args.username)
    typed = read_password("password") if args.password_stdin else None
    generated = a.users.reset_password(user, typed)
    a.record("user.password_reset", user.username,
             "generated" if generated else "typed by an admin")
    lines = [f"changed the password of {user.username}; their sessions have ended"]
    data = {"message": lines[0], "user": user_data(a, user)}
    if generated:
        lines.append(f"password for {user.username}: {generated}  (shown once)")
        data["password"] = generated
    return Done(lines, data)


def users_delete(a: Admin, args) -> Done:
    user = a.user(args.username)
    a.users.check_delete(user)
    goes = a.users.dependants(user)
    what = (f"{plural(goes['SSH keys'], 'SSH key')} and "
            f"{plural(goes['access rules'], 'access rule')}")
    if not args.yes:
        also = f" also deletes their {what}" if any(goes.values()) else " cannot be undone"
        raise Invalid(f"Deleting user {user.username}{also}; add --yes to delete. "
                      "Nothing was changed.")
    name = user.username
    a.users.delete(user)
    a.record("user.delete", name)
    message = f"deleted user {name}, with {what}"
    return Done(message, {"message": message, "deleted": name, "removed": goes})


# -- users' SSH keys --------------------------------------------------------------------

def key_data(key) -> dict:
    return {"id": key.id, "name": key.name, "type": key.key_type,
            "fingerprint": key.fingerprint, "public_key": key.public_key,
            "created_at": when(key.created_at)}


def keys_list(a: Admin, args) -> Done:
    user = a.user(args.username)
    keys = [key_data(k) for k in UserKeyService(a.dbsession).keys_of(user)]
    text = table(["fingerprint", "type", "name", "added"],
                 [[k["fingerprint"], k["type"], k["name"], k["created_at"]] for k in keys],
                 f"{user.username} has no SSH keys")
    return Done(text, {"user": user.username, "keys": keys})


def keys_add(a: Admin, args) -> Done:
    user = a.user(args.username)
    text = args.key
    if args.key_file is not None:
        try:
            text = (sys.stdin.read() if args.key_file == "-"
                    else Path(args.key_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise Invalid(f"--key-file: cannot read {args.key_file}: {error}") from None
        if has_control(text, multi_line=True):
            raise Invalid(f"--key-file: {args.key_file} holds control characters (such as NUL); a public "
                          "key is one line of text. Nothing was changed.")
    key = UserKeyService(a.dbsession).add(user, text, args.name or "")
    a.record("user.key_add", user.username, key.fingerprint)
    message = f"added key {key.fingerprint} for {user.username}"
    return Done(message, {"message": message, "user": user.username, "key": key_data(key)})


def keys_delete(a: Admin, args) -> Done:
    user = a.user(args.username)
    wanted = args.fingerprint.strip()
    if not wanted.startswith("SHA256:"):
        wanted = "SHA256:" + wanted
    service = UserKeyService(a.dbsession)
    key = next((k for k in service.keys_of(user) if k.fingerprint == wanted), None)
    if key is None:
        raise Invalid(f"{user.username} has no key with fingerprint {args.fingerprint.strip()!r}; "
                      f"ezpyr-admin CONFIG keys list {user.username} shows them.")
    service.delete(key)
    a.record("user.key_delete", user.username, key.fingerprint)
    message = f"deleted key {key.fingerprint} of {user.username}"
    return Done(message, {"message": message, "user": user.username, "deleted": key.fingerprint})


# -- user groups ----------------------------------------------------------------------

def user_group_data(a: Admin, group, members: int | None = None) -> dict:
    if members is None:
        members = UserGroupService(a.dbsession).member_count(group)
    return {"id": group.id, "name": group.name, "description": group.description, "members": members}


def user_groups_list(a: Admin, args) -> Done:
    service = UserGroupService(a.dbsession)
    everyone = service.all()
    counts = service.member_counts(everyone)
    groups = [user_group_data(a, g, counts[g.id]) for g in everyone]
    text = table(["name", "members", "description"],
                 [[g["name"], g["members"], g["description"]] for g in groups], "no user groups")
    return Done(text, {"user_groups": groups})


def user_groups_add(a: Admin, args) -> Done:
    group = UserGroupService(a.dbsession).create(args.name, (args.description or "").strip())
    a.record("user_group.create", group.name)
    message = f"created user group {group.name}"
    return Done(message, {"message": message, "user_group": user_group_data(a, group)})


def user_groups_edit(a: Admin, args) -> Done:
    group = a.user_group(args.name)
    if args.rename is None and args.description is None:
        raise Invalid("Nothing to change: give --rename or --description.")
    old = group.name
    UserGroupService(a.dbsession).update(
        group, args.rename if args.rename is not None else group.name,
        args.description.strip() if args.description is not None else group.description)
    a.record("user_group.update", group.name)
    message = f"saved user group {group.name}" + (f" (was {old})" if old != group.name else "")
    return Done(message, {"message": message, "user_group": user_group_data(a, group)})


def user_groups_delete(a: Admin, args) -> Done:
    service = UserGroupService(a.dbsession)
    group = a.user_group(args.name)
    goes = service.dependants(group)
    name = group.name
    service.delete(group)
    a.record("user_group.delete", name)
    message = (f"deleted user group {name}, with {plural(goes['access rules'], 'access rule')} "
               f"and {plural(goes['command rules'], 'command rule')}")
    return Done(message, {"message": message, "deleted": name, "removed": goes})


# -- servers ----------------------------------------------------------------------------

def server_data(server) -> dict:
    return {"id": server.id, "name": server.name, "host": server.host, "port": server.port,
            "remote_user": server.remote_user, "auth_method": server.auth_method,
            "has_password": bool(server.password_encrypted),
            "group": server.group.name if server.group else None,
            "description": server.description}


def server_errors(error: InvalidServer) -> Refused:
    return Refused(error.message, [e.message for e in error.errors])


def servers_list(a: Admin, args) -> Done:
    if args.group is not None and args.no_group:
        raise Invalid("Give --group NAME or --no-group, not both.")
    group = NO_GROUP if args.no_group else (a.server_group(args.group).id if args.group else None)
    servers = [server_data(s) for s in
               a.dbsession.scalars(a.servers.search((args.search or "").strip(), group))]
    text = table(["name", "host", "port", "remote user", "auth", "group"],
                 [[s["name"], s["host"], s["port"], s["remote_user"], s["auth_method"],
                   s["group"] or "-"] for s in servers], "no servers")
    return Done(text, {"servers": servers})


def servers_add(a: Admin, args) -> Done:
    password = read_password("server password") if args.password_stdin else ""
    data = ServerInput(name=args.name, host=args.host or "", port=args.port,
                       remote_user=args.remote_user, auth_method=args.auth,
                       password=password, group_name=args.group or None,
                       description=args.description or "")
    try:
        server = a.servers.create(data)
    except InvalidServer as error:
        raise server_errors(error) from None
    a.record("server.create", server.name)
    message = f"created server {server.name} ({server.remote_user}@{server.host}:{server.port})"
    return Done(message, {"message": message, "server": server_data(server)})


def servers_edit(a: Admin, args) -> Done:
    server = a.server(args.name)
    if args.group is not None and args.no_group:
        raise Invalid("Give --group NAME or --no-group, not both.")
    if all(v is None for v in (args.rename, args.host, args.port, args.remote_user, args.auth,
                               args.group, args.description)) \
            and not (args.no_group or args.password_stdin):
        raise Invalid("Nothing to change: give --rename, --host, --port, --remote-user, --auth, "
                      "--password-stdin, --group, --no-group or --description.")
    password = read_password("server password") if args.password_stdin else ""
    data = ServerInput(
        name=args.rename if args.rename is not None else server.name,
        host=args.host if args.host is not None else server.host,
        port=args.port if args.port is not None else server.port,
        remote_user=args.remote_user if args.remote_user is not None else server.remote_user,
        auth_method=args.auth if args.auth is not None else server.auth_method,
        password=password,
        group_id=None if args.no_group else server.group_id,
        group_name=args.group,
        description=args.description if args.description is not None else server.description,
    )
    old = server.name
    try:
        a.servers.update(server, data)
    except InvalidServer as error:
        raise server_errors(error) from None
    a.record("server.update", server.name)
    message = f"saved server {server.name}" + (f" (was {old})" if old != server.name else "")
    return Done(message, {"message": message, "server": server_data(server)})


def servers_delete(a: Admin, args) -> Done:
    server = a.server(args.name)
    rules = a.servers.dependants(server)["access rules"]
    details = f"{plural(rules, 'access rule')} removed"
    if not args.yes:
        also = (f" also removes the {plural(rules, 'access rule')} naming it" if rules
                else " cannot be undone")
        raise Invalid(f"Deleting server {server.name}{also}; add --yes to delete. "
                      "Nothing was changed.")
    name = server.name
    a.servers.delete(server)
    a.record("server.delete", name, details)
    message = f"deleted server {name}: {details}"
    return Done(message, {"message": message, "deleted": name, "removed": {"access rules": rules}})


def servers_export(a: Admin, args) -> Done:
    text = csvio.export_csv(a.dbsession)
    count = max(0, len(text.splitlines()) - 1)  # every server is one line after the header
    a.record("server.export")
    if args.output is None:
        return Done(text, {"csv": text}, raw=True)
    try:
        Path(args.output).write_text(text, encoding="utf-8", newline="")
    except OSError as error:
        raise Invalid(f"--output: cannot write {args.output}: {error.strerror}.") from None
    message = f"exported {plural(count, 'server')} to {args.output}"
    return Done(message, {"message": message, "output": args.output, "servers": count})


def servers_reset_host_key(a: Admin, args) -> Done:
    server = a.server(args.name)
    before = reset_host_key(server)
    if before is None:
        message = f"server {server.name} has no pinned host key; nothing was changed"
        return Done(message, {"message": message, "server": server.name, "was_pinned": None})
    a.record("servers.host_key_reset", server.name, f"pinned host key {before} forgotten")
    message = (f"forgot the pinned host key of {server.name} ({before}); the gateway pins the "
               "key the server presents at its next connection")
    return Done(message, {"message": message, "server": server.name, "was_pinned": before})


def servers_import(a: Admin, args) -> Done:
    """The panel's import job, started here once this transaction commits
    and then waited for."""
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read(csvio.MAX_BYTES + 1)
        else:
            with open(args.file, "rb") as f:
                data = f.read(csvio.MAX_BYTES + 1)
    except OSError as error:
        raise Invalid(f"cannot read {args.file}: {error.strerror}. Nothing was imported.") from None
    importer = Importer(username="cli", remote_addr="cli", actor=f"cli:{os_user()}")
    imports = ServerImports(a.dbsession, a.env.secret_box, a.env.settings.get("ezpyr.node_name", ""),
                            importer)
    launch = imports.start(data, "standard input" if args.file == "-" else args.file)
    launch.start_after_commit(a.dbsession)
    return Done(follow=lambda env, args: follow_import(env, args, launch.job.id))


def follow_import(env: NodeEnv, args, job_id: str) -> Done:
    """Wait for the import job (a progress bar when standard error is a
    terminal and the output is not JSON); its outcome is the command's."""
    show = terminal_progress() if not args.json and sys.stderr.isatty() else None
    job = wait_for(env.engine, job_id, show)
    if show is not None:
        sys.stderr.write("\n")
    result = json.loads(job.result or "{}")
    if job.state == JobState.FAILED:
        if job.refused:
            raise Refused(job.error, result.get("errors") or [], result.get("error_count"))
        raise JobFailed(f"the import failed: {job.error}. Nothing was imported.")
    message = f"imported {counted_servers(result['added'])}"
    return Done(message, {"message": message, "imported": result["added"], "job": job.id})


# -- server groups ----------------------------------------------------------------------

def server_group_data(group, count: int) -> dict:
    return {"id": group.id, "name": group.name, "description": group.description,
            "servers": count}


def server_groups_list(a: Admin, args) -> Done:
    service = ServerGroupService(a.dbsession)
    groups = service.all()
    counts = service.server_counts(groups)
    rows = [server_group_data(g, counts.get(g.id, 0)) for g in groups]
    text = table(["name", "servers", "description"],
                 [[g["name"], g["servers"], g["description"]] for g in rows], "no server groups")
    return Done(text, {"server_groups": rows})


def server_groups_add(a: Admin, args) -> Done:
    group = ServerGroupService(a.dbsession).create(args.name, args.description or "")
    a.record("server_group.create", group.name)
    message = f"created server group {group.name}"
    return Done(message, {"message": message, "server_group": server_group_data(group, 0)})


def server_groups_edit(a: Admin, args) -> Done:
    service = ServerGroupService(a.dbsession)
    group = a.server_group(args.name)
    if args.rename is None and args.description is None:
        raise Invalid("Nothing to change: give --rename or --description.")
    old = group.name
    service.update(group, args.rename if args.rename is not None else group.name,
                   args.description if args.description is not None else group.description)
    a.record("server_group.update", group.name)
    message = f"saved server group {group.name}" + (f" (was {old})" if old != group.name else "")
    count = service.server_counts([group]).get(group.id, 0)
    return Done(message, {"message": message, "server_group": server_group_data(group, count)})


def server_groups_delete(a: Admin, args) -> Done:
    group = a.server_group(args.name)
    name = group.name
    done = ServerGroupService(a.dbsession).delete(group)
    details = (f"{plural(done['servers'], 'server')} left without a group, "
               f"{plural(done['access rules'], 'access rule')} removed")
    a.record("server_group.delete", name, details)
    message = f"deleted server group {name}: {details}"
    return Done(message, {"message": message, "deleted": name, "removed": done})


# -- access rules -------------------------------------------------------------------------

def rule_label(rule) -> str:
    return f"{rule.subject_label} → {rule.target_label}"


def access_rule_data(rule) -> dict:
    if rule.user_group is not None:
        subject = {"kind": "user_group", "name": rule.user_group.name}
    else:
        subject = {"kind": "user", "name": rule.user.username}
    if rule.server_group is not None:
        target = {"kind": "server_group", "name": rule.server_group.name}
    else:
        target = {"kind": "server", "name": rule.server.name}
    return {"id": rule.id, "subject": subject, "target": target, "label": rule_label(rule)}


def access_list(a: Admin, args) -> Done:
    rules = [access_rule_data(r) for r in
             a.dbsession.scalars(AccessService(a.dbsession).search((args.search or "").strip()))]
    text = table(["id", "who", "may reach"],
                 [[r["id"], r["label"].split(" → ")[0], r["label"].split(" → ")[1]]
                  for r in rules], "no access rules")
    return Done(text, {"access_rules": rules})


def access_add(a: Admin, args) -> Done:
    subject = (f"ug:{a.user_group(args.user_group).id}" if args.user_group is not None
               else f"u:{a.user(args.user).id}")
    target = (f"sg:{a.server_group(args.server_group).id}" if args.server_group is not None
              else f"s:{a.server(args.server).id}")
    rule = AccessService(a.dbsession).create(subject, target)
    label = rule_label(rule)
    a.record("access.create", label)
    message = f"added access rule {rule.id}: {label}"
    return Done(message, {"message": message, "access_rule": access_rule_data(rule)})


def access_delete(a: Admin, args) -> Done:
    rule = a.access_rule(args.rule_id)
    label, rule_id = rule_label(rule), rule.id
    AccessService(a.dbsession).delete(rule)
    a.record("access.delete", label)
    message = f"removed access rule {rule_id}: {label}"
    return Done(message, {"message": message, "deleted": rule_id})


def access_effective(a: Admin, args) -> Done:
    user = a.user(args.username)
    reaches = AccessService(a.dbsession).effective_access(user)
    servers = [{**server_data(r.server), "via": r.via, "rules": [rule.id for rule in r.rules]}
               for r in reaches]
    data = {"user": user.username, "suspended": bool(user.suspended), "servers": servers}
    if user.suspended:
        return Done(f"{user.username} is suspended and reaches no server", data)
    if not servers:
        return Done(f"{user.username} may reach no server", data)
    lines = [f"{user.username} may reach {plural(len(servers), 'server')}:"]
    lines.append(table(["server", "address", "via"],
                       [[s["name"], f"{s['remote_user']}@{s['host']}:{s['port']}",
                         "; ".join(s["via"])] for s in servers], ""))
    return Done(lines, data)


# -- command guard ----------------------------------------------------------------------

def guard_rule_data(rule) -> dict:
    return {"id": rule.id, "group": rule.user_group.name, "pattern": rule.pattern,
            "description": rule.description}


def guard_list(a: Admin, args) -> Done:
    rules = [guard_rule_data(r) for g in GuardService(a.dbsession).grouped(
        (args.search or "").strip()) for r in g.rules]
    text = table(["id", "user group", "pattern", "description"],
                 [[r["id"], r["group"], r["pattern"], r["description"]] for r in rules],
                 "no command rules")
    return Done(text, {"command_rules": rules})


def guard_add(a: Admin, args) -> Done:
    group = a.user_group(args.group)
    rule = GuardService(a.dbsession).create(group.id, args.pattern, args.description or "")
    label = f"{rule.user_group.name}: {rule.pattern}"
    a.record("guard.create", label)
    message = f"added command rule {rule.id} to user group {group.name}: {rule.pattern}"
    return Done(message, {"message": message, "command_rule": guard_rule_data(rule)})


def guard_delete(a: Admin, args) -> Done:
    rule = a.guard_rule(args.rule_id)
    label, rule_id = f"{rule.user_group.name}: {rule.pattern}", rule.id
    GuardService(a.dbsession).delete(rule)
    a.record("guard.delete", label)
    message = f"removed command rule {rule_id} ({label})"
    return Done(message, {"message": message, "deleted": rule_id})


def guard_test(a: Admin, args) -> Done:
    service = GuardService(a.dbsession)
    group_id = a.user_group(args.group).id if args.group is not None else None
    verdict = service.try_command(args.command, user_group_id=group_id, username=args.user)
    data = {"command": verdict.command, "allowed": verdict.allowed,
            "group": verdict.group.name if verdict.group else None,
            "user": verdict.user.username if verdict.user else None,
            "rules_checked": verdict.rule_count,
            "refused_by": [guard_rule_data(r) for r in verdict.refused_by]}
    group = f"user group {verdict.group.name}" if verdict.group else "no user group, so no rules"
    who = f"user {verdict.user.username} ({group})" if verdict.user else group
    if verdict.allowed:
        return Done(f"allowed for {who}: {plural(verdict.rule_count, 'rule')} checked, "
                    "none matches", data)
    lines = [f"refused for {who} by:"]
    lines += [f"  {r['id']}  {r['pattern']}" + (f"  ({r['description']})" if r["description"]
                                                else "") for r in data["refused_by"]]
    return Done(lines, data, code=1)


# -- gateway sessions (node-local) ---------------------------------------------------------

def session_data(row) -> dict:
    return {"id": row.id, "username": row.username, "from": row.client_address,
            "server": row.server_name, "address": row.server_address, "command": row.command,
            "state": "live" if row.live else "ended", "started_at": when(row.started_at),
            "ended_at": when(row.ended_at), "exit_status": row.exit_status,
            "bytes_in": row.bytes_in, "bytes_out": row.bytes_out,
            "guard_refusals": row.guard_refusals, "end_reason": row.end_reason,
            "recording": row.recording}


def a_session(a: Admin, session_id: str):
    row = SessionLog(a.dbsession).get(session_id)
    if row is None:
        raise Invalid(f"No session {session_id!r} on this node (sessions stay on the node they "
                      "ran on; see sessions list).")
    return row


def sessions_list(a: Admin, args) -> Done:
    stmt = SessionLog(a.dbsession).search(username=(args.user or "").strip(),
                                          server=(args.server or "").strip(),
                                          state=args.state or "")
    rows = [session_data(r) for r in a.dbsession.scalars(stmt.limit(args.limit))]
    text = table(["id", "started (utc)", "user", "server", "state", "exit", "refusals", "command"],
                 [[r["id"], r["started_at"], r["username"], r["server"], r["state"],
                   r["exit_status"], r["guard_refusals"], r["command"] or "(interactive)"]
                  for r in rows], "no sessions on this node")
    return Done(text, {"sessions": rows, "node": a.env.settings.get("ezpyr.node_name", "")})


def sessions_show(a: Admin, args) -> Done:
    data = session_data(a_session(a, args.session_id))
    return Done([f"{k}: {'' if v is None else v}" for k, v in data.items()], {"session": data})


def sessions_terminate(a: Admin, args) -> Done:
    row = a_session(a, args.session_id)
    SessionLog(a.dbsession).terminate(row)
    a.record("gateway.session_terminate", row.id, f"{row.username} on {row.server_name}")
    message = (f"session {row.id} of {row.username} on {row.server_name} is being terminated "
               "(the gateway service ends it within a second)")
    return Done(message, {"message": message, "session": row.id})


def sessions_export(a: Admin, args) -> Done:
    row = a_session(a, args.session_id)
    path = log_dir(a.env.settings) / row.recording
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise Invalid(f"cannot read the recording {path}: {error.strerror}.") from None
    if args.output is None:
        return Done(text, {"cast": text}, raw=True)
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise Invalid(f"--output: cannot write {args.output}: {error.strerror}.") from None
    message = f"wrote the recording of session {row.id} to {args.output}"
    return Done(message, {"message": message, "output": args.output})


# -- settings -----------------------------------------------------------------------------

TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0")


def parse_setting(item: str, defaults: dict) -> tuple[str, object]:
    name, sep, raw = item.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if not sep or not name:
        raise Invalid(f"{item!r}: write NAME=VALUE, e.g. lockout_threshold=5.")
    if name not in defaults:
        raise Invalid(f"There is no setting named {name!r}; the settings are: "
                      f"{', '.join(defaults)}.")
    if isinstance(defaults[name], bool):
        if raw.lower() in TRUE_WORDS:
            return name, True
        if raw.lower() in FALSE_WORDS:
            return name, False
        raise Invalid(f"{name}: {LABELS[name]} must be on or off (true or false), not {raw!r}.")
    low, high = LIMITS[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        raise Invalid(f"{name}: {LABELS[name]} must be a whole number from {low} to {high}, "
                      f"not {raw!r}.")
    return name, int(raw)


def settings_rows(current: PanelSettings) -> list[list]:
    return [[name, str(value).lower() if isinstance(value, bool) else value, LABELS[name]]
            for name, value in asdict(current).items()]


def settings_show(a: Admin, args) -> Done:
    current = SettingsService(a.dbsession).current()
    return Done(table(["name", "value", "meaning"], settings_rows(current), ""),
                {"settings": asdict(current)})


def settings_set(a: Admin, args) -> Done:
    service = SettingsService(a.dbsession)
    defaults = {f.name: f.default for f in fields(PanelSettings)}
    values = dict(parse_setting(item, defaults) for item in args.assignments)
    try:
        changed = service.change(**values)
    except Invalid as error:
        raise Invalid(f"{error.field}: {error.message}" if error.field else error.message) from None
    if changed:
        a.record("settings.update", "settings",
                 ", ".join(f"{name}={value}" for name, value in sorted(changed.items())))
        message = "saved: " + ", ".join(f"{n}={str(v).lower() if isinstance(v, bool) else v}"
                                        for n, v in sorted(changed.items()))
    else:
        message = "nothing changed: the settings already had these values"
    return Done(message, {"message": message, "changed": changed,
                          "settings": asdict(service.current())})


# -- the command line -------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.splitlines()[0],
        epilog="Exit codes: 0 done, 2 refused (bad input, or this node takes no changes: "
               "nothing was changed), 1 a command the guard refuses (guard test) or a database "
               "error.")
    parser.add_argument("config", help="the node's ini file, e.g. development.ini")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    areas = parser.add_subparsers(dest="area", metavar="AREA", required=True)

    def area(name, help_text):
        sub = areas.add_parser(name, parents=[common], help=help_text,
                               description=help_text)
        return sub.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(actions, name, func, help_text):
        sub = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    def one_of(sub, *options, required=True):
        group = sub.add_mutually_exclusive_group(required=required)
        for flags, kwargs in options:
            group.add_argument(*flags, **kwargs)

    # users
    users = area("users", "users of the panel and the gateway")
    p = action(users, "list", users_list, "every user (with --search: whose username, "
               "name or e-mail contains the text)")
    p.add_argument("--search", help="text to look for")
    action(users, "locked", users_locked, "who is locked out of signing in on this node, and why")
    p = action(users, "release-address", users_release_address,
               "let an address that is locked out sign in again (on this node)")
    p.add_argument("address")
    p = action(users, "show", users_show, "one user's details and SSH keys")
    p.add_argument("username")
    p = action(users, "add", users_add, "create a user; the password is generated and "
               "printed once, unless --password-stdin")
    p.add_argument("username")
    p.add_argument("--role", default="user", help="admin or user (default: user)")
    p.add_argument("--group", help="the user group's name")
    p.add_argument("--full-name", default="")
    p.add_argument("--email", default="")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p = action(users, "edit", users_edit, "change a user's details (what is not given stays)")
    p.add_argument("username")
    p.add_argument("--rename", metavar="NEW_USERNAME")
    p.add_argument("--full-name")
    p.add_argument("--email")
    p.add_argument("--role", help="admin or user")
    p.add_argument("--group", help="the user group's name")
    p.add_argument("--no-group", action="store_true", help="take the user out of their group")
    for name, func, text in (
            ("suspend", users_suspend, "the user can no longer sign in; their sessions end"),
            ("reinstate", users_reinstate, "undo suspend"),
            ("reset-2fa", users_reset_2fa, "turn the user's two-factor sign-in off"),
            ("unlock", users_unlock, "end a lockout after failed sign-ins (on this node)")):
        action(users, name, func, text).add_argument("username")
    p = action(users, "reset-password", users_reset_password,
               "set a new password (generated and printed once, unless --password-stdin); "
               "the user's sessions end")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p = action(users, "delete", users_delete,
               "delete a user with their SSH keys and the access rules naming them")
    p.add_argument("username")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")

    # keys
    keys = area("keys", "users' SSH public keys")
    p = action(keys, "list", keys_list, "a user's SSH keys")
    p.add_argument("username")
    p = action(keys, "add", keys_add, "add an SSH public key to a user")
    p.add_argument("username")
    one_of(p, (["--key"], {"help": "the public key line, e.g. \"ssh-ed25519 AAAA... me@laptop\""}),
           (["--key-file"], {"help": "a *.pub file holding the key ('-': standard input)"}))
    p.add_argument("--name", help="a name for the key (default: the key's comment)")
    p = action(keys, "delete", keys_delete, "delete one of a user's SSH keys")
    p.add_argument("username")
    p.add_argument("fingerprint", help="SHA256:... as keys list shows it")

    # user groups
    ugroups = area("user-groups", "user groups")
    action(ugroups, "list", user_groups_list, "every user group and its member count")
    p = action(ugroups, "add", user_groups_add, "create a user group")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p = action(ugroups, "edit", user_groups_edit, "rename a user group or change its description")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW_NAME")
    p.add_argument("--description")
    p = action(ugroups, "delete", user_groups_delete,
               "delete an empty user group with its access and command rules")
    p.add_argument("name")

    # servers
    servers = area("servers", "servers the gateway connects to")
    p = action(servers, "list", servers_list, "every server (filtered with --search, --group)")
    p.add_argument("--search", help="text in the name, host or description")
    p.add_argument("--group", help="only the servers of this server group")
    p.add_argument("--no-group", action="store_true", help="only the servers without a group")
    p = action(servers, "add", servers_add, "create a server")
    p.add_argument("name")
    p.add_argument("--host", required=True, help="host name or IP address")
    p.add_argument("--port", default="22", help="SSH port (default: 22)")
    p.add_argument("--remote-user", default="root", help="login on the server (default: root)")
    p.add_argument("--auth", default="key",
                   help="key (the gateway key, default) or password (with --password-stdin)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the server's password from the first line of standard input")
    p.add_argument("--group", help="the server group's name")
    p.add_argument("--description", default="")
    p = action(servers, "edit", servers_edit, "change a server (what is not given stays; the "
               "stored password stays unless --password-stdin or --auth key)")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW_NAME")
    p.add_argument("--host")
    p.add_argument("--port")
    p.add_argument("--remote-user")
    p.add_argument("--auth", help="key or password")
    p.add_argument("--password-stdin", action="store_true",
                   help="read a new password from the first line of standard input")
    p.add_argument("--group", help="the server group's name")
    p.add_argument("--no-group", action="store_true", help="take the server out of its group")
    p.add_argument("--description")
    p = action(servers, "delete", servers_delete, "delete a server and the access rules naming it")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p = action(servers, "export", servers_export, "every server as CSV (never a password)")
    p.add_argument("--output", metavar="FILE", help="write to FILE (default: standard output)")
    p = action(servers, "import", servers_import, "add the servers of a CSV file, as the panel's "
               "import job (a progress bar on a terminal): every row is checked first; all are added "
               "or none; one import at a time")
    p.add_argument("file", help=f"the CSV file ('-': standard input); header: "
                   f"{','.join(csvio.COLUMNS)}[,password]")

    # server groups
    sgroups = area("server-groups", "server groups")
    action(sgroups, "list", server_groups_list, "every server group and its server count")
    p = action(sgroups, "add", server_groups_add, "create a server group")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p = action(sgroups, "edit", server_groups_edit,
               "rename a server group or change its description")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW_NAME")
    p.add_argument("--description")
    p = action(sgroups, "delete", server_groups_delete, "delete a server group: its servers stay "
               "(without a group), the access rules naming it go")
    p.add_argument("name")

    # access
    access = area("access", "access rules: who may reach which servers")
    p = action(access, "list", access_list, "every access rule, with its id")
    p.add_argument("--search", help="text in the user group, username or full name")
    p = action(access, "add", access_add, "let a user group or a user reach a server group "
               "or a server")
    one_of(p, (["--user-group"], {"metavar": "NAME"}), (["--user"], {"metavar": "USERNAME"}))
    one_of(p, (["--server-group"], {"metavar": "NAME"}), (["--server"], {"metavar": "NAME"}))
    p = action(access, "delete", access_delete, "remove an access rule")
    p.add_argument("rule_id", help="the rule's id, as access list shows it")
    p = action(access, "effective", access_effective,
               "every server a user may reach, and through which rules")
    p.add_argument("username")

    # guard
    guard = area("guard", "command guard rules: commands the gateway shell refuses")
    p = action(guard, "list", guard_list, "every command rule, with its id")
    p.add_argument("--search", help="text in the pattern, description or group name")
    p = action(guard, "add", guard_add, "refuse the commands that match a regular expression, "
               "for one user group")
    p.add_argument("--group", required=True, help="the user group's name")
    p.add_argument("--pattern", required=True,
                   help="a Python regular expression, searched anywhere in the command line")
    p.add_argument("--description", default="")
    p = action(guard, "delete", guard_delete, "remove a command rule")
    p.add_argument("rule_id", help="the rule's id, as guard list shows it")
    p = action(guard, "test", guard_test, "whether the guard lets a command through "
               "(exit 0: allowed, 1: refused)")
    one_of(p, (["--group"], {"metavar": "NAME", "help": "a user group's rules"}),
           (["--user"], {"metavar": "USERNAME", "help": "the rules of the user's group"}))
    p.add_argument("command", help="the command line to test (quote it)")

    p = action(servers, "reset-host-key", servers_reset_host_key,
               "forget a server's pinned host key (after a reinstall): the gateway pins the key "
               "the server presents at its next connection")
    p.add_argument("name")

    # gateway sessions
    sessions = area("sessions", "the gateway's sessions on this node (logs stay on the node "
                    "where the session ran)")
    p = action(sessions, "list", sessions_list, "sessions, newest first")
    p.add_argument("--user", help="username contains")
    p.add_argument("--server", help="server name contains")
    p.add_argument("--state", choices=("live", "ended"))
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p = action(sessions, "show", sessions_show, "one session's details")
    p.add_argument("session_id")
    p = action(sessions, "terminate", sessions_terminate, "end a live session")
    p.add_argument("session_id")
    p = action(sessions, "export", sessions_export, "a session's recording (asciicast v2)")
    p.add_argument("session_id")
    p.add_argument("--output", metavar="FILE", help="write to FILE (default: standard output)")

    # settings
    settings = area("settings", "panel-wide settings")
    action(settings, "show", settings_show, "every setting and its value")
    p = action(settings, "set", settings_set, "change settings, checked as on the settings page")
    p.add_argument("assignments", nargs="+", metavar="NAME=VALUE",
                   help=f"one of: {', '.join(LABELS)}")

    # API tokens (their own module registers them)
    from ezpyr.api.cli import register as register_tokens
    register_tokens(area, action)
    return parser


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def fail(args, message: str, errors: list[str] | None = None, code: int = 2,
         count: int | None = None) -> int:
    """Say why the command failed; ``errors`` are its reasons (the first
    ones of ``count``)."""
    more = (count or 0) - len(errors or [])
    if args.json:
        print(json.dumps({"error": message, **({"errors": errors} if errors else {}),
                          **({"error_count": count} if more > 0 else {})}))
        return code
    for line in errors or []:
        print(f"{PROG}: {line}", file=sys.stderr)
    if more > 0:
        print(f"{PROG}: … and {more:,} more", file=sys.stderr)
    if not errors or message != errors[0]:
        print(f"{PROG}: {message}", file=sys.stderr)
    return code


def read_only_message(env: NodeEnv, error: NodeIsReadOnly) -> str:
    """The refusal, naming the master when this node knows it."""
    from ezpyr.cluster.readonly import master_address

    message = str(error)
    if not error.master_address:
        try:
            with env.session() as dbsession:
                address = master_address(dbsession)
        except SQLAlchemyError:
            address = ""
        if address:
            message = str(NodeIsReadOnly(error.role, address))
    return message + " Nothing was changed."


@one_line_errors(PROG)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.config.split("#")[0]).is_file():
        return fail(args, f"no such config file: {args.config}")
    try:
        check_arguments(args)
    except Invalid as error:
        return fail(args, error.message)
    env = NodeEnv(args.config)
    try:
        with env.session(actor=f"cli:{os_user()}") as dbsession:
            done = args.func(Admin(env, dbsession), args)
        if done.follow is not None:
            done = done.follow(env, args)
    except Refused as error:
        return fail(args, error.message, error.errors, count=error.count)
    except Invalid as error:
        return fail(args, error.message)
    except JobFailed as error:
        return fail(args, str(error), code=1)
    except NodeIsReadOnly as error:
        return fail(args, read_only_message(env, error))
    except SecretKeyMissing as error:
        return fail(args, f"{error}. Check ezpyr.secret_key_file in the config.", code=1)
    except SQLAlchemyError as error:
        return fail(args, explain(error)[0], code=1)
    finally:
        env.close()
    if args.json:
        print(json.dumps(done.data, indent=2, default=str))
    elif done.raw:
        sys.stdout.write(done.text)
    elif done.text:
        print(done.text)
    return done.code


if __name__ == "__main__":
    sys.exit(main())
