"""The account agent behind a real sshd: what it does to a node's files,
and what it refuses before running anything."""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import threading
import time

import pytest

from ezpyr.accounts import requests
from ezpyr.accounts.client import BATCH, AgentLink, FingerprintChanged
from ezpyr.accounts.provisioning import ensure_key, public_key
from ezpyr.accounts.requests import Refused
from support.sshd import SHELL, NodeSshd, make_root

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


# -- batches: many requests in one exchange, new accounts written in one go --------------

def useradd_into(root, name, locked):
    """What the agent used to run for a new account (the yardstick of the batch's entries)."""
    subprocess.run(["useradd", "--prefix", str(root), "--create-home", "--home-dir", f"/home/{name}",
                    "--shell", SHELL, "--comment", "ezpyr managed account", "--groups", "ezpyr-users",
                    "--password", "!*" if locked else "*", *(["--expiredate", "1"] if locked else []), name],
                   check=True, capture_output=True)


@pytest.mark.parametrize("login_defs", [False, True], ids=["bare-root", "debian-login-defs"])
def test_a_batch_writes_the_entries_useradd_writes_in_one_go(node, link, tmp_path, login_defs):
    yardstick = tmp_path / "yardstick"
    make_root(yardstick)
    if login_defs:  # private groups, password ageing: as on a Debian node
        for root in (yardstick, node.root):
            shutil.copy("/etc/login.defs", root / "etc/login.defs")
    subprocess.run(["groupadd", "--prefix", str(yardstick), "--system", "ezpyr-users"], check=True)
    wanted = [("amy", [KEY_A], False), ("ben", [], True), ("cy", [KEY_A, KEY_B], False)]
    for name, _keys, locked in wanted:
        useradd_into(yardstick, name, locked)
    before = (node.root / "etc/passwd").read_text()

    batches = list(link.batches([requests.ensure(n, k, lk) for n, k, lk in wanted]))
    assert len(batches) == 1  # one exchange
    assert [a["ok"] for _r, a in batches[0]] == [True, True, True], batches

    for name in ("passwd", "shadow", "group", "gshadow"):
        assert (node.root / "etc" / name).read_text() == (yardstick / "etc" / name).read_text(), name
    # one write: the backup is the file as it was before the batch (useradd, once per
    # account, would leave the next-to-last account in it)
    assert (node.root / "etc/passwd-").read_text() == before
    # the locks are given back (lckpwdf()'s .pwd.lock stays, as it does for glibc)
    assert [p.name for p in (node.root / "etc").glob("*.lock")] == [".pwd.lock"]
    assert not list((node.root / "etc").glob("*+"))
    log = [json.loads(line)["argv"] for line in node.agent_log.read_text().splitlines()]
    made = [line for line in log if line.startswith("create-accounts ")]
    assert len(made) == 1 and shlex.split(made[0])[-3:] == ["amy", "ben", "cy"], log
    for name, keys, locked in wanted:
        entry = node.passwd()[name]
        home = node.root / "home" / name
        info = os.stat(home)
        assert (info.st_uid, info.st_gid) == (int(entry[2]), int(entry[3]))
        assert oct(info.st_mode & 0o777) == oct(os.stat(yardstick / "home" / name).st_mode & 0o777)
        assert sorted(node.authorized_keys(name).read_text().splitlines()) == sorted(keys)
        assert oct(os.stat(node.authorized_keys(name)).st_mode & 0o777) == "0o600"
    listing = {a["username"]: a for a in link.call({"op": "list"})["accounts"]}
    assert sorted(listing) == ["amy", "ben", "cy"] and listing["ben"]["locked"] is True


def test_a_batch_keeps_its_order(node, link):
    batch = [requests.ensure("dan", [], False), requests.remove("dan"), requests.ensure("dan", [KEY_A], False),
             requests.ensure("eve", [], False), requests.rename("eve", "eva"), requests.ensure("eva", [KEY_B], True)]
    answers = [a for _r, a in link.requests(batch)]
    assert all(a["ok"] for a in answers), answers
    assert sorted(node.passwd()) == ["dan", "eva"]
    assert node.authorized_keys("dan").read_text() == KEY_A + "\n"
    assert node.authorized_keys("eva").read_text() == KEY_B + "\n" and node.shadow()["eva"][7] == "1"
    assert any(p.name.startswith("dan.deleted-") for p in (node.root / "home").iterdir())


def test_hostile_requests_in_a_batch_are_refused_and_the_others_run(node, link):
    nested = {"op": "batch", "requests": [requests.ensure("mal", [], False)]}
    batch = [requests.ensure("gus", [], False), *HOSTILE, nested, {"op": "list"}, "id",
             requests.ensure("hal", [KEY_A], False)]
    link.channel.sendall(json.dumps({"op": "batch", "requests": batch}).encode() + b"\n")
    answer = link._read()
    assert answer["ok"] and len(answer["answers"]) == len(batch), answer
    first, *hostile, last = answer["answers"]
    assert first["ok"] and last["ok"], answer
    for request, refused in zip(batch[1:-1], hostile):
        assert refused["ok"] is False and refused["refused"] is True, (request, refused)
        assert "refused, nothing was run" in refused["error"] and refused["ran"] == [], refused
    assert sorted(node.passwd()) == ["gus", "hal"]
    log = [json.loads(line)["argv"] for line in node.agent_log.read_text().splitlines()]
    assert not any("mal" in shlex.split(line) or "bob" in line or "pwned" in line for line in log), log
    assert not os.path.exists("/tmp/pwned")


def test_a_batch_the_agent_cannot_read_is_refused_whole(node, link):
    for envelope in ({"op": "batch", "requests": "ensure gus"},
                     {"op": "batch", "requests": [requests.ensure("gus", [], False)] * 1001},
                     {"op": "batch", "requests": [], "run": "id"}):
        link.channel.sendall(json.dumps(envelope).encode() + b"\n")
        answer = link._read()
        assert answer["ok"] is False and "refused, nothing was run" in answer["error"], answer
    assert node.commands_run() == 0 and node.passwd() == {}


def test_a_partial_failure_leaves_each_account_in_a_clear_state(node, link):
    subprocess.run(["useradd", "--prefix", str(node.root), "-m", "carol"], check=True)  # not ezpyr's
    (node.root / "home/ivy").write_text("not a directory\n")  # ivy's home cannot be made
    batch = [requests.ensure("jay", [KEY_A], False), requests.ensure("carol", [KEY_A], False),
             requests.ensure("ivy", [KEY_B], False), requests.ensure("kim", [], False)]
    answers = {r.get("username"): a for r, a in link.requests(batch)}
    assert answers["jay"]["ok"] and answers["kim"]["ok"], answers
    assert not answers["carol"]["ok"] and "not managed by ezpyr" in answers["carol"]["error"]
    assert answers["carol"]["refused"] is True
    ivy = answers["ivy"]
    assert not ivy["ok"] and not ivy["refused"] and "ivy was made but its home or keys were not" in ivy["error"]
    assert "the next attempt finishes it" in ivy["error"]
    passwd = node.passwd()
    assert {"jay", "ivy", "kim", "carol"} <= set(passwd) and passwd["carol"][4] != "ezpyr managed account"
    assert node.authorized_keys("jay").read_text() == KEY_A + "\n"
    # the retry finishes ivy's account once its home can be made
    (node.root / "home/ivy").unlink()
    again = link.call(requests.ensure("ivy", [KEY_B], False))
    assert again["ok"] and again["changed"], again
    assert node.authorized_keys("ivy").read_text() == KEY_B + "\n"
    assert os.stat(node.root / "home/ivy").st_uid == int(node.passwd()["ivy"][2])


def test_a_batch_waits_for_shadow_utils_locks_and_breaks_stale_ones(node, link):
    etc = node.root / "etc"
    # a stale passwd.lock (its process is gone) is broken, as shadow-utils does
    dead = subprocess.Popen(["true"])
    dead.wait()
    (etc / "passwd.lock").write_bytes(f"{dead.pid}\0".encode())
    assert link.call(requests.ensure("lee", [], False))["ok"]
    assert "lee" in node.passwd() and not (etc / "passwd.lock").exists()

    # lckpwdf()'s lock and a live group.lock: the batch waits for both, then goes on
    holder = subprocess.Popen(["sleep", "30"])
    pwd_lock = os.open(etc / ".pwd.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.lockf(pwd_lock, fcntl.LOCK_EX)
    (etc / "group.lock").write_bytes(f"{holder.pid}\0".encode())
    try:
        releases = threading.Timer(1.0, lambda: (fcntl.lockf(pwd_lock, fcntl.LOCK_UN), holder.kill(), holder.wait()))
        releases.start()
        started = time.monotonic()
        answer = link.call(requests.ensure("max", [], False))
        waited = time.monotonic() - started
        releases.join()
    finally:
        holder.kill()
        holder.wait()
        os.close(pwd_lock)
    assert answer["ok"], answer
    assert waited >= 0.9, "the batch did not wait for the locks"
    assert "max" in node.passwd()


def test_a_batch_that_cannot_lock_the_files_makes_nothing(node):
    # the agent waits 2 s here, not the 15 s shadow-utils waits (--lock-wait)
    node.authorize(public_key(str(node.key_file)), lock_wait=2)
    link = AgentLink("this", node.address, "root", str(node.key_file), None)
    holder = subprocess.Popen(["sleep", "60"])  # a live useradd, say, holding shadow.lock
    (node.root / "etc/shadow.lock").write_bytes(f"{holder.pid}\0".encode())
    passwd = (node.root / "etc/passwd").read_text()
    try:
        started = time.monotonic()
        answers = [a for _r, a in link.requests([requests.ensure("ned", [], False),
                                                  requests.ensure("ora", [KEY_A], False)])]
        waited = time.monotonic() - started
    finally:
        link.close()
        holder.kill()
        holder.wait()
    assert waited >= 1.9, "the batch gave up before its lock wait"
    for answer in answers:
        assert not answer["ok"] and "is held by another process" in answer["error"], answer
        assert "accounts not made" in answer["error"]
    assert (node.root / "etc/passwd").read_text() == passwd
    assert not (node.root / "home/ned").exists() and not (node.root / "home/ora").exists()
    assert (node.root / "etc/shadow.lock").exists()  # not ours to remove
    assert not (node.root / "etc/passwd.lock").exists()  # ours, given back


def test_many_requests_go_in_batches_of_at_most_batch(node, link):
    names = [f"u{i:04d}" for i in range(BATCH + 100)]
    sizes = [len(answers) for answers in link.batches([requests.ensure(n, [], False) for n in names])]
    assert sizes == [BATCH, 100]
    assert sorted(node.passwd()) == names
    made = [line for line in node.agent_log.read_text().splitlines() if "create-accounts" in line]
    assert len(made) == 2  # one write of the account files per batch


@pytest.mark.parametrize("value", ["x", "-1", "601", "nan", ""])
def test_a_bad_lock_wait_is_refused_with_a_clear_message(value, capsys):
    from ezpyr.accounts.agent import main
    with pytest.raises(SystemExit) as exited:
        main(["--lock-wait", value])
    assert exited.value.code == 2
    assert "is not a number of seconds from 0 to 600" in capsys.readouterr().err
