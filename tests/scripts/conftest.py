"""A node's ini file in a temporary directory, and running console scripts
as real processes on it."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.backends import drop_database, mariadb_or_skip
from tests.conftest import CHEAP_ARGON2, ROOT

BIN = Path(sys.executable).parent

INI = """[app:main]
use = egg:ezpyr
sqlalchemy.url = {db_url}
ezpyr.node_name = node-init
ezpyr.node_address = 127.0.0.1:6599
ezpyr.secret_key_file = {var}/secret.key
ezpyr.session_secret_file = {var}/session.key
ezpyr.session.secure = false
ezpyr.broker_url = sqla+sqlite:///{var}/broker.sqlite
{argon2}

[alembic]
script_location = {root}/alembic

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:6599

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)s [%(name)s] %(message)s
"""


@dataclass
class Node:
    ini: Path
    var: Path
    db_url: str
    backend: str

    @property
    def sqlite_file(self) -> Path | None:
        return Path(make_url(self.db_url).database) if self.backend == "sqlite" else None


def database_exists(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database).exists()
    engine = create_engine(parsed.set(database=""))
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                (parsed.database,)).first() is not None
    finally:
        engine.dispose()


def write_ini(path: Path, db_url: str, var: Path) -> Path:
    path.write_text(INI.format(
        db_url=db_url.replace("%", "%%"), var=var, root=ROOT,
        argon2="\n".join(f"{k} = {v}" for k, v in CHEAP_ARGON2.items()),
    ))
    return path


@pytest.fixture
def node(backend, tmp_path):
    """An ini file for a node that does not exist yet: no key files, no
    var directory, no database (MariaDB: a fresh name ezpyr-init must create)."""
    var = tmp_path / "var"
    if backend == "sqlite":
        db_url = f"sqlite:///{var}/ezpyr.sqlite"
    else:
        server = make_url(mariadb_or_skip())
        name = f"ezpyr_init_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        db_url = server.set(database=name).render_as_string(hide_password=False) + "?charset=utf8mb4"
    yield Node(write_ini(tmp_path / "node.ini", db_url, var), var, db_url, backend)
    drop_database(db_url)


# what a console script must find in its own files, never in the environment
PRIVATE_ENV = ("EZPYR_SECRET_KEY", "EZPYR_SESSION_SECRET")


def run(script: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """A console script of this virtual environment, as a real process."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
    return subprocess.run([str(BIN / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def sqlite_node(tmp_path):
    var = tmp_path / "var"
    db_url = f"sqlite:///{var}/ezpyr.sqlite"
    return Node(write_ini(tmp_path / "node.ini", db_url, var), var, db_url, "sqlite")


def run_in_process(main, *args, stdin: str = "") -> subprocess.CompletedProcess:
    """A console script's ``main(argv)`` called in this process, as its
    process would run it: ``stdin`` on its standard input, its output and
    its log lines (the ini's handlers write to the stderr they find) caught,
    argparse's exits turned into return codes. The environment and the
    logging set-up are put back afterwards, so tests that follow see
    neither. A process costs ~1 s of start-up; this costs none, and the
    installed script itself is run as a process where that is the point."""
    argv = [str(a) for a in args]
    saved_env = dict(os.environ)
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    saved_loggers = {name: (lg.level, lg.handlers[:], lg.propagate, lg.disabled)
                     for name, lg in logging.Logger.manager.loggerDict.items()
                     if isinstance(lg, logging.Logger)}
    out, err = io.StringIO(), io.StringIO()
    for name in PRIVATE_ENV:
        os.environ.pop(name, None)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                _stdin(io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")):
            try:
                code = main(argv)
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
                if not isinstance(done.code, (int, type(None))):
                    print(done.code, file=sys.stderr)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in root.handlers:
            if handler not in saved_root[1]:
                handler.close()
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for name, (level, handlers, propagate, disabled) in saved_loggers.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
    return subprocess.CompletedProcess(argv, code or 0, _as_read(out), _as_read(err))


def _as_read(stream: io.StringIO) -> str:
    """The text as subprocess's text mode reads it (universal newlines)."""
    return stream.getvalue().replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _stdin(stream):
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved
