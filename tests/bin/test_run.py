"""bin/run, as a new user runs it: two nodes up, and only what a user needs
on the terminal (the full logs are under var/)."""
import subprocess
import time
import urllib.request

from tests.bin.checkout import free_port, fresh_checkout, stop

MOST_LINES = 30


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


def test_bin_run_starts_two_nodes_and_prints_only_what_a_user_needs(tmp_path):
    ports = free_port(), free_port()
    top = fresh_checkout(tmp_path / "ezpyr", ports, own_venv=True)  # the first run installs
    process = subprocess.Popen(["bash", "bin/run"], cwd=top, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = read_until(process, "Ctrl-C stops everything.", timeout=180)
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
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
                assert page.status == 200
        logs = {p.name for p in (top / "var").iterdir()}
        assert {"install.log", "setup.log", "node1-panel.log", "node1-worker.log", "node2-panel.log",
                "node2-worker.log"} <= logs
        assert "created admin admin" in (top / "var" / "setup.log").read_text()
    finally:
        stop(process)
