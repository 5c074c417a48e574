"""The account agent behind a real sshd: what it does to a node's files,
and what it refuses before running anything."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from ezpyr.accounts import requests
from ezpyr.accounts.client import AgentLink, FingerprintChanged
from ezpyr.accounts.provisioning import ensure_key, public_key
from ezpyr.accounts.requests import Refused
from support.sshd import SHELL, NodeSshd

KEY_A = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHV0K1M6Ryr/hvA0Sl5vK2V2P6KMmt7tBA2fpW0yXbTB")
KEY_B = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5r8FQHsSs3Vw8ZP6DNT1m6mB9ggHzoYEYQKRU1Hq/m")


@pytest.fixture
def node(tmp_path):
    key_file = tmp_path / "provisioning_ed25519"
    ensure_key(str(key_file))
    sshd = NodeSshd(tmp_path / "node")
    sshd.authorize(public_key(str(key_file)))
    sshd.key_file = key_file
    sshd.start()
    yield sshd
    sshd.stop()


@pytest.fixture
def link(node):
    link = AgentLink("this", node.address, "root", str(node.key_file), None)
    yield link
    link.close()


def test_ensure_lock_rename_remove_change_the_nodes_files(node, link):
    answer = link.call(requests.ensure("alice", [KEY_A], False))
    assert answer["ok"], answer
    entry = node.passwd()["alice"]
    assert entry[4] == "ezpyr managed account" and entry[6] == SHELL and entry[5] == "/home/alice"
    keys = node.authorized_keys("alice")
    assert keys.read_text() == KEY_A + "\n"
    info = os.stat(keys)
    assert oct(info.st_mode & 0o777) == "0o600" and info.st_uid == int(entry[2])
    assert not node.shadow()["alice"][1].startswith("!")

    assert link.call(requests.ensure("alice", [KEY_A, KEY_B], True))["ok"]
    assert sorted(keys.read_text().split("\n")[:-1]) == sorted([KEY_A, KEY_B])
    shadow = node.shadow()["alice"]
    assert shadow[1].startswith("!") and shadow[7] == "1"
    again = link.call(requests.ensure("alice", [KEY_A, KEY_B], True))
    assert again["ok"] and again["changed"] is False and again["ran"] == []

    assert link.call(requests.ensure("alice", [], False))["ok"]
    assert keys.read_text() == "" and not node.shadow()["alice"][1].startswith("!")

    assert link.call(requests.rename("alice", "alicia"))["ok"]
    assert "alice" not in node.passwd() and node.passwd()["alicia"][5] == "/home/alicia"

    assert link.call(requests.remove("alicia"))["ok"]
    assert "alicia" not in node.passwd() and "alicia" not in node.shadow()
    kept = [p.name for p in (node.root / "home").iterdir()]
    assert len(kept) == 1 and kept[0].startswith("alicia.deleted-")
    listing = link.call({"op": "list"})
    assert listing == {"ok": True, "op": "list", "accounts": []}


def test_unmanaged_accounts_are_left_alone(node, link):
    subprocess.run(["useradd", "--prefix", str(node.root), "-m", "carol"], check=True)
    before = node.commands_run()
    for request in (requests.ensure("carol", [KEY_A], False), requests.remove("carol"),
                    requests.rename("carol", "carl")):
        answer = link.call(request)
        assert not answer["ok"] and "not managed by ezpyr" in answer["error"], answer
    assert node.commands_run() == before
    assert link.call({"op": "list"})["accounts"] == []
    assert "carol" in node.passwd()


HOSTILE = [
    {"op": "ensure", "username": "bob;touch /tmp/pwned", "keys": [], "locked": False},
    {"op": "ensure", "username": "bob$(id)", "keys": [], "locked": False},
    {"op": "ensure", "username": "bob`id`", "keys": [], "locked": False},
    {"op": "ensure", "username": "bob\nroot", "keys": [], "locked": False},
    {"op": "ensure", "username": "bob\n", "keys": [], "locked": False},
    {"op": "ensure", "username": "bob\u0000root", "keys": [], "locked": False},
    {"op": "ensure", "username": "-obob", "keys": [], "locked": False},
    {"op": "ensure", "username": "Bob", "keys": [], "locked": False},
    {"op": "ensure", "username": "bob", "keys": [KEY_A + " me@host; rm -rf /"], "locked": False},
    {"op": "ensure", "username": "bob", "keys": [KEY_A + "\n" + KEY_B], "locked": False},
    {"op": "ensure", "username": "bob", "keys": [KEY_A + "\u0000"], "locked": False},
    {"op": "ensure", "username": "bob", "keys": ['command="sh" ' + KEY_A], "locked": False},
    {"op": "ensure", "username": "bob", "keys": ["ssh-ed25519 $(id)AAAAAAAAAAAAAAAAAAAAAAAA"],
     "locked": False},
    {"op": "ensure", "username": "bob", "keys": [], "locked": "yes"},
    {"op": "ensure", "username": "bob", "keys": [], "locked": False, "shell": "/bin/bash"},
    {"op": "rename", "from": "bob", "to": "root;id"},
    {"op": "remove", "username": "../etc"},
    {"op": "shell", "command": "id"},
]


def test_hostile_requests_are_refused_and_nothing_runs(node, link):
    for request in HOSTILE:
        with pytest.raises(Refused):  # the master never sends them…
            requests.check_request(request)
        answer = link.call(request)  # …and the agent refuses them itself
        assert answer["ok"] is False and answer["refused"] is True, (request, answer)
        assert "refused, nothing was run" in answer["error"], answer
        assert answer["ran"] == []
    # raw lines that are not one JSON object: a NUL byte, a shell command
    for raw in (b'{"op": "list"\x00}\n', b"id; touch /tmp/pwned\n", b'{"op": "list"} x\n'):
        link.channel.sendall(raw)
        answer = link._read()
        assert answer["ok"] is False and "nothing was run" in answer["error"], answer
    assert node.commands_run() == 0, node.agent_log.read_text()
    assert node.passwd() == {}
    assert not os.path.exists("/tmp/pwned")
    log = (node.dir / "sshd.log").read_text()
    assert "Accepted publickey for root" in log


def test_the_key_runs_the_agent_whatever_command_is_asked(node):
    link = AgentLink("this", node.address, "root", str(node.key_file), None)
    try:
        channel = link.transport.open_session()
        channel.exec_command("touch /tmp/pwned-by-exec")
        channel.sendall(b'{"op": "list"}\n')
        channel.shutdown_write()
        answer = json.loads(channel.makefile("rb").readline())
        assert answer == {"ok": True, "op": "list", "accounts": []}
        assert not os.path.exists("/tmp/pwned-by-exec")
        with pytest.raises(Exception):
            link.transport.open_session().get_pty()
    finally:
        link.close()


def test_a_different_host_key_is_refused_with_both_fingerprints(node):
    with pytest.raises(FingerprintChanged) as refused:
        AgentLink("other", node.address, "root", str(node.key_file), "SHA256:pinnedpinnedpinned")
    message = str(refused.value)
    assert "the other node" in message and node.address in message
    assert "SHA256:pinnedpinnedpinned" in message and node.fingerprint() in message
    assert node.commands_run() == 0
