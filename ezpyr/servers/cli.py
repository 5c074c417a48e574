"""``ezpyr-admin CONFIG servers|server-groups …``: servers and server groups on the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ezpyr.cli import Admin, Done, JobFailed, Refused, read_password, table, terminal_progress
from ezpyr.jobs.models import JobState
from ezpyr.jobs.services import wait_for
from ezpyr.servers import csvio
from ezpyr.servers.imports import servers as counted_servers
from ezpyr.servers.schemas import ServerGroupOut, ServerOut
from ezpyr.servers.services import NO_GROUP, InvalidServer, ServerInput, plural
from ezpyr.validation import Invalid


# -- servers ----------------------------------------------------------------------------

# --json writes the API's shapes
server_data = ServerOut.of


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
    message = f"deleted server {name}: {details}"
    return Done(message, {"message": message, "deleted": name, "removed": {"access rules": rules}})


def servers_export(a: Admin, args) -> Done:
    text = a.servers.export_csv()
    count = max(0, len(text.splitlines()) - 1)  # every server is one line after the header
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
    before = a.servers.reset_host_key(server)
    if before is None:
        message = f"server {server.name} has no pinned host key; nothing was changed"
        return Done(message, {"message": message, "server": server.name, "was_pinned": None})
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
    launch = a.services.server_imports.start(data, "standard input" if args.file == "-" else args.file)
    launch.start_after_commit(a.dbsession)
    return Done(follow=lambda env, args: follow_import(env, args, launch.job.id))


def follow_import(env, args, job_id: str) -> Done:
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

server_group_data = ServerGroupOut.of


def server_groups_list(a: Admin, args) -> Done:
    service = a.services.server_groups
    groups = service.all()
    counts = service.server_counts(groups)
    rows = [server_group_data(g, counts.get(g.id, 0)) for g in groups]
    text = table(["name", "servers", "description"],
                 [[g["name"], g["servers"], g["description"]] for g in rows], "no server groups")
    return Done(text, {"server_groups": rows})


def server_groups_add(a: Admin, args) -> Done:
    group = a.services.server_groups.create(args.name, args.description or "")
    message = f"created server group {group.name}"
    return Done(message, {"message": message, "server_group": server_group_data(group, 0)})


def server_groups_edit(a: Admin, args) -> Done:
    service = a.services.server_groups
    group = a.server_group(args.name)
    if args.rename is None and args.description is None:
        raise Invalid("Nothing to change: give --rename or --description.")
    old = group.name
    service.update(group, args.rename if args.rename is not None else group.name,
                   args.description if args.description is not None else group.description)
    message = f"saved server group {group.name}" + (f" (was {old})" if old != group.name else "")
    count = service.server_counts([group]).get(group.id, 0)
    return Done(message, {"message": message, "server_group": server_group_data(group, count)})


def server_groups_delete(a: Admin, args) -> Done:
    group = a.server_group(args.name)
    name = group.name
    done = a.services.server_groups.delete(group)
    details = (f"{plural(done['servers'], 'server')} left without a group, "
               f"{plural(done['access rules'], 'access rule')} removed")
    message = f"deleted server group {name}: {details}"
    return Done(message, {"message": message, "deleted": name, "removed": done})


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    servers = cli.area("servers", "servers the gateway connects to")
    p = cli.action(servers, "list", servers_list, "every server (filtered with --search, --group)")
    p.add_argument("--search", help="text in the name, host or description")
    p.add_argument("--group", help="only the servers of this server group")
    p.add_argument("--no-group", action="store_true", help="only the servers without a group")
    p = cli.action(servers, "add", servers_add, "create a server",
                   does="server.create")
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
    p = cli.action(servers, "edit", servers_edit, "change a server (what is not given stays; the "
                   "stored password stays unless --password-stdin or --auth key)",
                   does="server.update")
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
    p = cli.action(servers, "delete", servers_delete, "delete a server and the access rules naming it",
                   does="server.delete")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p = cli.action(servers, "export", servers_export, "every server as CSV (never a password)",
                   does="server.export")
    p.add_argument("--output", metavar="FILE", help="write to FILE (default: standard output)")
    p = cli.action(servers, "import", servers_import, "add the servers of a CSV file, as the panel's "
                   "import job (a progress bar on a terminal): every row is checked first; all are added "
                   "or none; one import at a time",
                   does="server.import")
    p.add_argument("file", help=f"the CSV file ('-': standard input); header: "
                   f"{','.join(csvio.COLUMNS)}[,password]")


    p = cli.action(servers, "reset-host-key", servers_reset_host_key,
                   "forget a server's pinned host key (after a reinstall): the gateway pins the key "
                   "the server presents at its next connection",
                   does="servers.host_key_reset")
    p.add_argument("name")

    sgroups = cli.area("server-groups", "server groups")
    cli.action(sgroups, "list", server_groups_list, "every server group and its server count")
    p = cli.action(sgroups, "add", server_groups_add, "create a server group",
                   does="server_group.create")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p = cli.action(sgroups, "edit", server_groups_edit,
                   "rename a server group or change its description",
                   does="server_group.update")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW_NAME")
    p.add_argument("--description")
    p = cli.action(sgroups, "delete", server_groups_delete, "delete a server group: its servers stay "
                   "(without a group), the access rules naming it go",
                   does="server_group.delete")
    p.add_argument("name")
