"""The README's commands, as written and in the order written, on a fresh
checkout (a copy of this one without .venv's install, var/ or keys). The
first, bin/run, is also checked as a new user meets it: it installs, starts
two nodes and prints only what a user needs (the full logs are under var/)."""
import re
import shlex
import stat
import subprocess
import time
import urllib.error
import urllib.request

from tests.bin.checkout import free_port, fresh_checkout, stop

COMMENT = re.compile(r"\s+#\s.*$")
MOST_LINES = 30  # bin/run's output up to the login


def read_until(process, marker: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout} s:\n" + "\n".join(lines))


def readme_commands(readme: str) -> list[str]:
    """Every command line of the README's code blocks (indented lines that
    start with bin/ or .venv/bin/), without its comment."""
    lines = [COMMENT.sub("", line).strip() for line in readme.splitlines()
             if line.startswith("    ") and line.strip().startswith(("bin/", ".venv/bin/"))]
    return [line for line in lines if not line.split()[0].endswith("/")]  # the layout's folders


def wait_for_page(url: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as page:
                return page.status
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def start(command: str, top):
    return subprocess.Popen(shlex.split(command), cwd=top, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def check_bin_run(lines: list[str], top, ports) -> None:
    """bin/run's first run: it installed, both nodes serve, and the terminal
    shows under 30 lines, without a traceback or a warning."""
    output = "\n".join(lines)
    assert len(lines) < MOST_LINES, output
    assert "Traceback" not in output and "Warning" not in output, output
    assert "Installing ezpyr and its dependencies into .venv" in output
    install_log = (top / "var" / "install.log").read_text()
    assert "Successfully installed" in install_log
    # the packaging is complete: no "Package 'ezpyr.static' is absent from
    # the `packages` configuration" per template directory
    assert "absent from" not in install_log
    assert f"node1 (master): http://127.0.0.1:{ports[0]}/" in output
    assert f"node2 (slave):  http://127.0.0.1:{ports[1]}/" in output
    assert "admin login:    admin / " in output
    for port in ports:
        assert wait_for_page(f"http://127.0.0.1:{port}/login") == 200
    logs = {p.name for p in (top / "var").iterdir()}
    assert {"install.log", "setup.log", "node1-panel.log", "node1-worker.log", "node2-panel.log",
            "node2-worker.log"} <= logs
    assert "created admin admin" in (top / "var" / "setup.log").read_text()


def test_every_command_of_the_readme_works_as_written_in_order(tmp_path):
    ports = free_port(), free_port()
    top = fresh_checkout(tmp_path / "ezpyr", ports, own_venv=True)  # bin/run, first, installs
    commands = readme_commands((top / "README.md").read_text())
    assert "bin/run" in commands and ".venv/bin/pserve development.ini" in commands
    ran = []
    for command in commands:
        if command.startswith(".venv/bin/python bench/"):
            continue  # benchmarks: minutes each on MariaDB and RabbitMQ, run by hand
        if command == "bin/run":
            process = start(command, top)
            try:
                check_bin_run(read_until(process, "Ctrl-C stops everything.", timeout=180), top, ports)
            finally:
                stop(process)
        elif command.startswith(".venv/bin/pserve "):
            process = start(command, top)
            try:
                assert wait_for_page(f"http://127.0.0.1:{ports[0]}/login") == 200
            finally:
                stop(process)
        else:
            if command == "bin/test":
                # the whole suite cannot run inside one of its tests: it must start and collect
                command += " --collect-only -q tests/test_routes.py"
            done = subprocess.run(shlex.split(command), cwd=top, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr, (command, done.stderr)
        ran.append(command)
    assert len(ran) >= 8, ran


def test_alembic_and_pserve_on_a_fresh_checkout(tmp_path):
    """Before ezpyr-init: alembic creates the database it upgrades (owner-only),
    pserve says in one line what it lacks; after ezpyr-init the panel serves."""
    port = free_port()
    top = fresh_checkout(tmp_path / "ezpyr", (port, free_port()))
    done = subprocess.run(shlex.split(".venv/bin/alembic -c development.ini upgrade head"), cwd=top,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    database = top / "var" / "node1" / "ezpyr.sqlite"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert database.stat().st_size > 0

    done = subprocess.run(shlex.split(".venv/bin/pserve development.ini"), cwd=top,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and "no secret key" in said[0] and "ezpyr-init" in said[0], done.stderr

    done = subprocess.run(shlex.split(".venv/bin/ezpyr-init development.ini"), cwd=top,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    process = start(".venv/bin/pserve development.ini", top)
    try:
        assert wait_for_page(f"http://127.0.0.1:{port}/login") == 200
    finally:
        stop(process)
