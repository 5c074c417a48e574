"""``ezpyr-admin CONFIG users|keys|user-groups …``: users, their SSH keys and user groups on the command line."""
from __future__ import annotations

import sys
from pathlib import Path

from ezpyr.cli import Admin, Done, read_password, table
from ezpyr.users.schemas import KeyOut, LockoutOut, UserGroupOut, UserOut
from ezpyr.users.services import plural
from ezpyr.validation import Invalid, has_control

key_data = KeyOut.of


# -- users ----------------------------------------------------------------------------

def user_data(a: Admin, user, *, key_count: int | None = None, locked: bool | None = None) -> dict:
    """``user`` as the API shows it (:class:`UserOut`)."""
    if key_count is None:
        key_count = a.services.user_keys.counts([user]).get(user.id, 0)
    if locked is None:
        locked = a.services.auth.is_locked(user.username)
    return UserOut.of(user, locked=locked, keys=key_count)


def user_status(data: dict) -> str:
    words = ["suspended" if data["suspended"] else "active"]
    if data["locked"]:
        words.append("locked")
    return ",".join(words)


def users_list(a: Admin, args) -> Done:
    users = list(a.dbsession.scalars(a.users.search((args.search or "").strip())))
    counts = a.services.user_keys.counts(users)
    locked = {hold["username"] for hold in a.services.auth.throttled() if hold["username"]}
    rows = [user_data(a, u, key_count=counts.get(u.id, 0), locked=u.username in locked) for u in users]
    text = table(["username", "role", "group", "status", "2fa", "keys", "full name"],
                 [[d["username"], d["role"], d["group"] or "-", user_status(d),
                   "on" if d["totp_enabled"] else "off", d["keys"], d["full_name"]] for d in rows],
                 "no users" + (f" match {args.search!r}" if args.search else ""))
    return Done(text, {"users": rows})


def users_locked(a: Admin, args) -> Done:
    """Who is held back from signing in on this node (the page Users → Sign-in lockouts)."""
    rows = [LockoutOut.of(h) for h in a.services.auth.throttled()]
    text = table(["held back", "account", "address", "failures", "until (UTC)"],
                 [[h["kind"], h["username"] or "-", h["address"] or "-", h["failures"],
                   h["until"][:16].replace("T", " ")] for h in rows],
                 "nobody is locked out on this node")
    return Done(text, {"locked": rows})


def users_release_address(a: Admin, args) -> Done:
    address = a.services.auth.release_address(args.address)
    return Done(f"released {address}: it may sign in again on this node", {"released": address})


def users_show(a: Admin, args) -> Done:
    user = a.user(args.username)
    d = user_data(a, user)
    keys = [key_data(k) for k in a.services.user_keys.keys_of(user)]
    lines = [f"username:   {d['username']}", f"full name:  {d['full_name']}",
             f"e-mail:     {d['email']}", f"role:       {d['role']}",
             f"group:      {d['group'] or '-'}", f"status:     {user_status(d)}",
             f"2fa:        {'on' if d['totp_enabled'] else 'off'}",
             f"created:    {d['created_at'][:19]}", f"ssh keys:   {len(keys)}"]
    lines += [f"  {k['fingerprint']}  {k['type']}  {k['name']}" for k in keys]
    return Done(lines, {"user": d, "keys": keys})


def users_add(a: Admin, args) -> Done:
    password = read_password("password") if args.password_stdin else None
    group = a.user_group(args.group) if args.group else None
    generated = None if password is not None else a.users.new_password()
    user = a.users.create(args.username, password or generated, role=(args.role or "").strip(),
                          full_name=args.full_name or "", email=args.email or "",
                          group_id=group.id if group else None)
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
    message = f"saved user {user.username}" + (f" (was {old})" if old != user.username else "")
    return Done(message, {"message": message, "user": user_data(a, user)})


def user_action(done: str, act):
    def command(a: Admin, args) -> Done:
        user = a.user(args.username)
        act(a, user)
        message = done.format(name=user.username)
        return Done(message, {"message": message, "user": user_data(a, user)})
    return command


users_suspend = user_action(
    "suspended {name}: they cannot sign in, and their sessions have ended",
    lambda a, user: a.users.suspend(user))
users_reinstate = user_action(
    "reinstated {name}: they may sign in again",
    lambda a, user: a.users.reinstate(user))
users_reset_2fa = user_action(
    "two-factor sign-in is off for {name}; they may set it up again",
    lambda a, user: a.users.reset_totp(user))
users_unlock = user_action("unlocked {name} on this node",
                           lambda a, user: a.services.auth.unlock_user(user))


def users_reset_password(a: Admin, args) -> Done:
    user = a.user(args.username)
    typed = read_password("password") if args.password_stdin else None
    generated = a.users.reset_password(user, typed)
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
    message = f"deleted user {name}, with {what}"
    return Done(message, {"message": message, "deleted": name, "removed": goes})

# -- users' SSH keys --------------------------------------------------------------------

def keys_list(a: Admin, args) -> Done:
    user = a.user(args.username)
    keys = [key_data(k) for k in a.services.user_keys.keys_of(user)]
    text = table(["fingerprint", "type", "name", "added"],
                 [[k["fingerprint"], k["type"], k["name"], k["created_at"][:19]] for k in keys],
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
    key = a.services.user_keys.add(user, text, args.name or "")
    message = f"added key {key.fingerprint} for {user.username}"
    return Done(message, {"message": message, "user": user.username, "key": key_data(key)})


def keys_delete(a: Admin, args) -> Done:
    user = a.user(args.username)
    wanted = args.fingerprint.strip()
    if not wanted.startswith("SHA256:"):
        wanted = "SHA256:" + wanted
    service = a.services.user_keys
    key = next((k for k in service.keys_of(user) if k.fingerprint == wanted), None)
    if key is None:
        raise Invalid(f"{user.username} has no key with fingerprint {args.fingerprint.strip()!r}; "
                      f"ezpyr-admin CONFIG keys list {user.username} shows them.")
    service.delete(key)
    message = f"deleted key {key.fingerprint} of {user.username}"
    return Done(message, {"message": message, "user": user.username, "deleted": key.fingerprint})

# -- user groups ----------------------------------------------------------------------

def user_group_data(a: Admin, group, members: int | None = None) -> dict:
    """``group`` as the API shows it (:class:`UserGroupOut`)."""
    if members is None:
        members = a.services.user_groups.member_count(group)
    return UserGroupOut.of(group, members)


def user_groups_list(a: Admin, args) -> Done:
    service = a.services.user_groups
    everyone = service.all()
    counts = service.member_counts(everyone)
    groups = [user_group_data(a, g, counts[g.id]) for g in everyone]
    text = table(["name", "members", "description"],
                 [[g["name"], g["members"], g["description"]] for g in groups], "no user groups")
    return Done(text, {"user_groups": groups})


def user_groups_add(a: Admin, args) -> Done:
    group = a.services.user_groups.create(args.name, (args.description or "").strip())
    message = f"created user group {group.name}"
    return Done(message, {"message": message, "user_group": user_group_data(a, group)})


def user_groups_edit(a: Admin, args) -> Done:
    group = a.user_group(args.name)
    if args.rename is None and args.description is None:
        raise Invalid("Nothing to change: give --rename or --description.")
    old = group.name
    a.services.user_groups.update(
        group, args.rename if args.rename is not None else group.name,
        args.description.strip() if args.description is not None else group.description)
    message = f"saved user group {group.name}" + (f" (was {old})" if old != group.name else "")
    return Done(message, {"message": message, "user_group": user_group_data(a, group)})


def user_groups_delete(a: Admin, args) -> Done:
    service = a.services.user_groups
    group = a.user_group(args.name)
    name = group.name
    goes = service.delete(group)
    message = (f"deleted user group {name}, with {plural(goes['access rules'], 'access rule')} "
               f"and {plural(goes['command rules'], 'command rule')}")
    return Done(message, {"message": message, "deleted": name, "removed": goes})


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    users = cli.area("users", "users of the panel and the gateway")
    p = cli.action(users, "list", users_list, "every user (with --search: whose username, "
                   "name or e-mail contains the text)")
    p.add_argument("--search", help="text to look for")
    cli.action(users, "locked", users_locked, "who is locked out of signing in on this node, and why")
    p = cli.action(users, "release-address", users_release_address,
                   "let an address that is locked out sign in again (on this node)", does="auth.release_address")
    p.add_argument("address")
    p = cli.action(users, "show", users_show, "one user's details and SSH keys")
    p.add_argument("username")
    p = cli.action(users, "add", users_add, "create a user; the password is generated and "
                   "printed once, unless --password-stdin", does="user.create")
    p.add_argument("username")
    p.add_argument("--role", default="user", help="admin or user (default: user)")
    p.add_argument("--group", help="the user group's name")
    p.add_argument("--full-name", default="")
    p.add_argument("--email", default="")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p = cli.action(users, "edit", users_edit, "change a user's details (what is not given stays)",
                   does="user.update")
    p.add_argument("username")
    p.add_argument("--rename", metavar="NEW_USERNAME")
    p.add_argument("--full-name")
    p.add_argument("--email")
    p.add_argument("--role", help="admin or user")
    p.add_argument("--group", help="the user group's name")
    p.add_argument("--no-group", action="store_true", help="take the user out of their group")
    for name, func, text, action in (
            ("suspend", users_suspend, "the user can no longer sign in; their sessions end", "user.suspend"),
            ("reinstate", users_reinstate, "undo suspend", "user.reinstate"),
            ("reset-2fa", users_reset_2fa, "turn the user's two-factor sign-in off", "user.reset_2fa"),
            ("unlock", users_unlock, "end a lockout after failed sign-ins (on this node)", "user.unlock")):
        cli.action(users, name, func, text, does=action).add_argument("username")
    p = cli.action(users, "reset-password", users_reset_password,
                   "set a new password (generated and printed once, unless --password-stdin); "
                   "the user's sessions end", does="user.password_reset")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p = cli.action(users, "delete", users_delete,
                   "delete a user with their SSH keys and the access rules naming them", does="user.delete")
    p.add_argument("username")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")

    keys = cli.area("keys", "users' SSH public keys")
    p = cli.action(keys, "list", keys_list, "a user's SSH keys")
    p.add_argument("username")
    p = cli.action(keys, "add", keys_add, "add an SSH public key to a user", does="user.key_add")
    p.add_argument("username")
    cli.one_of(p, (["--key"], {"help": "the public key line, e.g. \"ssh-ed25519 AAAA... me@laptop\""}),
               (["--key-file"], {"help": "a *.pub file holding the key ('-': standard input)"}))
    p.add_argument("--name", help="a name for the key (default: the key's comment)")
    p = cli.action(keys, "delete", keys_delete, "delete one of a user's SSH keys", does="user.key_delete")
    p.add_argument("username")
    p.add_argument("fingerprint", help="SHA256:... as keys list shows it")

    ugroups = cli.area("user-groups", "user groups")
    cli.action(ugroups, "list", user_groups_list, "every user group and its member count")
    p = cli.action(ugroups, "add", user_groups_add, "create a user group", does="user_group.create")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p = cli.action(ugroups, "edit", user_groups_edit, "rename a user group or change its description",
                   does="user_group.update")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW_NAME")
    p.add_argument("--description")
    p = cli.action(ugroups, "delete", user_groups_delete,
                   "delete an empty user group with its access and command rules", does="user_group.delete")
    p.add_argument("name")
