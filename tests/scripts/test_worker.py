"""ezpyr-worker, run as a real process on a SQLite node."""
from __future__ import annotations

import queue
import signal
import subprocess
import threading

from tests.scripts.conftest import BIN, run, write_ini


def start_worker(ini) -> tuple[subprocess.Popen, queue.Queue]:
    process = subprocess.Popen([str(BIN / "ezpyr-worker"), str(ini)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    return process, lines


def wait_for(lines: queue.Queue, text: str, timeout: float = 30.0) -> list[str]:
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {text!r} within {timeout} s; got: {seen}") from None
        seen.append(line)
        if text in line:
            return seen


def test_help():
    result = run("ezpyr-worker", "--help")
    assert result.returncode == 0
    assert "usage: ezpyr-worker" in result.stdout and "config" in result.stdout


def test_it_runs_on_an_initialised_node_and_stops_on_sigterm(sqlite_node):
    assert run("ezpyr-init", sqlite_node.ini, "--quiet").returncode == 0
    process, lines = start_worker(sqlite_node.ini)
    try:
        wait_for(lines, "ezpyr-worker: running")
        wait_for(lines, "replication is not configured on this node yet")
        assert process.poll() is None  # keeps running, waiting for another node
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_it_refuses_a_database_without_the_schema(sqlite_node):
    sqlite_node.var.mkdir()
    result = run("ezpyr-worker", sqlite_node.ini)
    assert result.returncode == 1
    assert "the database is at schema revision none" in result.stderr
    assert f"run ezpyr-init {sqlite_node.ini}" in result.stderr


def test_it_says_when_the_database_is_unreachable(tmp_path):
    ini = write_ini(tmp_path / "node.ini", "mysql+pymysql://root:s3cret@127.0.0.1:1/ezpyr", tmp_path)
    result = run("ezpyr-worker", ini)
    assert result.returncode == 1
    assert "ezpyr-worker: cannot reach the database mysql+pymysql://root:***@127.0.0.1:1/ezpyr" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_a_missing_config_file(tmp_path):
    result = run("ezpyr-worker", tmp_path / "nope.ini")
    assert result.returncode == 2 and "no such config file" in result.stderr
