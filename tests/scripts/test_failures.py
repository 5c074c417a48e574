"""Every console script fails with one clear line, never a traceback; with
``--json`` that line is a JSON object on stdout and stderr stays empty."""
import json
import secrets

import pytest

from ezpyr.secretbox import generate_key, write_key_file
from tests.scripts.conftest import run, write_ini

JSON_COMMANDS = [
    ("ezpyr-cluster", "status"),
    ("ezpyr-cluster", "verify"),
    ("ezpyr-cluster", "disconnect"),
    ("ezpyr-cluster", "make-master"),
    ("ezpyr-admin", "users", "list"),
    ("ezpyr-admin", "servers", "add", "web1", "--host", "10.0.0.5"),
]
TEXT_COMMANDS = JSON_COMMANDS + [
    ("ezpyr-grant-host", "10.0.0.2"),
    ("ezpyr-init",),
    ("ezpyr-worker",),
]


@pytest.fixture(params=["mariadb", "sqlite"])
def down_node(request, tmp_path):
    """A node with its key files whose database cannot be reached: nothing
    listens on MariaDB's URL (port 1); the SQLite file's path is a directory."""
    var = tmp_path / "var"
    write_key_file(var / "secret.key", generate_key())
    write_key_file(var / "session.key", secrets.token_urlsafe(32))
    if request.param == "mariadb":
        url = "mysql+pymysql://root@127.0.0.1:1/ezpyr?connect_timeout=2"
    else:
        (var / "ezpyr.sqlite").mkdir()
        url = f"sqlite:///{var}/ezpyr.sqlite"
    return write_ini(tmp_path / "node.ini", url, var)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize("command", TEXT_COMMANDS, ids=" ".join)
def test_with_the_database_down_each_command_says_so_in_one_line(down_node, command):
    script, *args = command
    done = run(script, down_node, *args)
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert line.startswith(f"{script}: ") and "database" in line, line


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=" ".join)
def test_with_the_database_down_json_output_is_json_only(down_node, command):
    script, *args = command
    done = run(script, down_node, *args, "--json")
    assert done.returncode != 0
    assert done.stderr == ""
    answer = json.loads(done.stdout)
    assert "database" in answer["error"]


@pytest.mark.parametrize("script", ["ezpyr-cluster", "ezpyr-admin", "ezpyr-grant-host",
                                    "ezpyr-init", "ezpyr-worker"])
def test_a_missing_config_file_is_one_line(tmp_path, script):
    extra = {"ezpyr-cluster": ["status"], "ezpyr-admin": ["users", "list"],
             "ezpyr-grant-host": ["10.0.0.2"]}.get(script, [])
    done = run(script, tmp_path / "nowhere.ini", *extra)
    assert done.returncode != 0
    assert "nowhere.ini" in one_line(done.stderr)


def test_a_refusal_with_json_goes_to_stdout_only(down_node):
    done = run("ezpyr-cluster", down_node, "add", "not an address", "--setup-key", "k", "--json")
    assert done.returncode == 2 and done.stderr == ""
    assert "That is not an address" in json.loads(done.stdout)["error"]
