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
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ezpyr.access import cli as access_cli
from ezpyr.activity import cli as activity_cli
from ezpyr.api import cli as tokens_cli
from ezpyr.cli import Admin, Areas, JobFailed, Refused, check_arguments
from ezpyr.gateway import cli as sessions_cli
from ezpyr.guard import cli as guard_cli
from ezpyr.replication.capture import NodeIsReadOnly
from ezpyr.scripts.failures import explain, one_line_errors
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.secretbox import SecretKeyMissing
from ezpyr.servers import cli as servers_cli
from ezpyr.settings import cli as settings_cli
from ezpyr.users import cli as users_cli
from ezpyr.validation import Invalid

PROG = "ezpyr-admin"
# each area's module adds its subcommands, in the order --help lists them
AREAS = (users_cli, servers_cli, access_cli, guard_cli, sessions_cli, settings_cli, tokens_cli, activity_cli)


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

    cli = Areas(areas, common)
    for module in AREAS:
        module.register(cli)
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
