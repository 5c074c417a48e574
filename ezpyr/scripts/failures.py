"""How every console script fails: one line that says what went wrong and
what to check, never a traceback; with ``--json``, that line as a JSON
object on stdout and nothing on stderr.

``EZPYR_TRACEBACK=1`` shows the traceback as well, for whoever debugs ezpyr
itself.
"""
from __future__ import annotations

import configparser
import functools
import json
import os
import sys
import traceback

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ezpyr.replication.capture import NodeIsReadOnly
from ezpyr.secretbox import SecretKeyMissing


def first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def explain(error: BaseException) -> tuple[str, int]:
    """The line to print for ``error``, and the exit code."""
    from ezpyr.errors import database_unreachable  # the panel's error pages: only when asked

    if isinstance(error, DBAPIError) and database_unreachable(error):
        return (f"cannot reach this node's database: {first_line(error)}. Check sqlalchemy.url in "
                "the config (or EZPYR_DATABASE_URL) and that the database server is running.", 1)
    if isinstance(error, SQLAlchemyError):
        return (f"database error: {first_line(error)}. Check that ezpyr-init CONFIG has set the "
                "database up.", 1)
    if isinstance(error, SecretKeyMissing):
        return (f"{first_line(error)}. Check ezpyr.secret_key_file in the config (ezpyr-init CONFIG "
                "creates it) or set EZPYR_SECRET_KEY.", 1)
    if isinstance(error, NodeIsReadOnly):
        return first_line(error), 2
    if isinstance(error, (FileNotFoundError, configparser.Error, LookupError)):
        return f"cannot read the config: {first_line(error)}", 2
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    return (f"failed: {type(error).__name__}: {first_line(error)} "
            "(EZPYR_TRACEBACK=1 shows where)", 1)


def report(prog: str, message: str, as_json: bool, **extra) -> None:
    """Print a failure: JSON on stdout with ``--json``, one line on stderr
    otherwise."""
    if as_json:
        print(json.dumps({"error": message, **extra}))
    else:
        print(f"{prog}: {message}", file=sys.stderr)


def one_line_errors(prog: str):
    """Decorates a console script's ``main(argv=None)``: whatever escapes it
    is reported as one line (see the module's docstring)."""

    def decorate(main):
        @functools.wraps(main)
        def wrapper(argv=None):
            args = sys.argv[1:] if argv is None else argv
            try:
                return main(argv)
            except SystemExit:
                raise
            except BrokenPipeError:
                # whoever read the output stopped reading (``| head``,
                # ``| grep -q``): nothing is left to say, and nowhere to say it
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 1
            except BaseException as error:  # noqa: BLE001 - every failure gets its one line
                if os.environ.get("EZPYR_TRACEBACK"):
                    traceback.print_exc()
                message, code = explain(error)
                report(prog, message, "--json" in args)
                return code

        return wrapper

    return decorate
