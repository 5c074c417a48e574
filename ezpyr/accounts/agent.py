"""ezpyr-account-agent: the only thing the provisioning key may run on a
node. sshd starts it as the forced command of that key
(``restrict,command="…/ezpyr-account-agent …"`` in ``authorized_keys``);
whatever command the client asked for is ignored.

It reads one request at a time, a JSON object per line on stdin, checks
every field (:mod:`ezpyr.accounts.requests`) before it runs anything, runs
the system tools itself (``usermod``, ``userdel``, ``groupadd``; argv
lists, never a shell) and answers one JSON object per line on stdout. New
accounts are written by :mod:`ezpyr.accounts.shadowfiles` under
shadow-utils' locks, all the new accounts of a batch request in one write
(``useradd`` would rewrite and sync four files per account). It only ever
touches accounts it manages: those in the group ``ezpyr-users`` whose
comment is ``ezpyr managed account``.

``--root DIR`` works on the accounts under DIR (the files under DIR/etc,
``usermod --prefix DIR``) instead of ``/``: two nodes on one machine keep
their own passwd files (tests). The code path is the same for ``/``.
``--log FILE`` appends every command it runs to FILE.
"""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ezpyr.accounts.requests import Refused, check_in_batch, check_request
from ezpyr.accounts.shadowfiles import LOCK_WAIT, BatchFailed, NewAccount, create_accounts, make_home

GROUP = "ezpyr-users"
MARKER = "ezpyr managed account"
HOME_BASE = "/home"
TOOLS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MAX_LINE = 1 << 20


@dataclass
class Account:
    username: str
    uid: int
    gid: int
    comment: str
    home: str
    shell: str


class Agent:
    def __init__(self, root: str = "/", shell: str = "", log: str | None = None,
                 lock_wait: float = LOCK_WAIT):
        self.root = Path(root)
        self.shell = shell or str(Path(sys.executable).parent / "ezsh")
        self.log = log
        self.lock_wait = lock_wait
        self.ran: list[str] = []

    # -- the system's files, read under the root --------------------------
    def _etc(self, name: str) -> list[list[str]]:
        path = self.root / "etc" / name
        return [line.split(":") for line in path.read_text().splitlines() if line and ":" in line]

    def accounts(self) -> dict[str, Account]:
        return {f[0]: Account(f[0], int(f[2]), int(f[3]), f[4], f[5], f[6])
                for f in self._etc("passwd") if len(f) >= 7}

    def members(self) -> set[str] | None:
        for fields in self._etc("group"):
            if fields[0] == GROUP:
                return {name for name in fields[3].split(",") if name} if len(fields) > 3 else set()
        return None

    def shadow(self) -> dict[str, list[str]]:
        return {f[0]: f for f in self._etc("shadow")}

    def managed(self) -> dict[str, Account]:
        members = self.members() or set()
        return {name: account for name, account in self.accounts().items()
                if name in members and account.comment == MARKER}

    def is_locked(self, username: str) -> bool:
        fields = self.shadow().get(username, [])
        return len(fields) > 7 and fields[1].startswith("!") and fields[7] == "1"

    def home(self, account: Account) -> Path:
        return self.root / account.home.lstrip("/")

    # -- running the tools ------------------------------------------------
    def note(self, line: str, answer: bool = True) -> None:
        """What was run (or written), in the answer and the --log file."""
        if answer:
            self.ran.append(line)
        if self.log:
            with open(self.log, "a") as log:
                log.write(json.dumps({"at": dt.datetime.now(dt.timezone.utc).isoformat(),
                                      "argv": line}) + "\n")

    def run(self, tool: str, *args: str) -> None:
        executable = shutil.which(tool, path=TOOLS_PATH)
        if executable is None:
            raise RuntimeError(f"{tool} is not installed on this node")
        argv = [executable]
        if self.root != Path("/"):
            argv += ["--prefix", str(self.root)]
        argv += list(args)
        line = shlex.join(argv)
        self.note(line)
        result = subprocess.run(argv, capture_output=True, text=True, env={"PATH": TOOLS_PATH},
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{line} failed (exit {result.returncode}): "
                               f"{result.stderr.strip()[:300]}")

    # -- the operations ---------------------------------------------------
    def _managed_or_refuse(self, username: str) -> Account | None:
        account = self.accounts().get(username)
        if account is not None and username not in self.managed():
            raise Refused(f"account {username} exists on this node and is not managed by ezpyr: "
                          "left alone")
        return account

    def ensure(self, username: str, keys: list[str], locked: bool) -> bool:
        account = self._managed_or_refuse(username)
        changed = False
        if account is None:
            error = self.create([(username, keys, locked)])[username]
            self.ran.append(self.made(username))
            if error:
                raise RuntimeError(error)
            return True
        else:
            if not os.path.lexists(self.home(account)):  # not made with the account, or lost since
                changed = make_home(self.root, account.home, account.uid, account.gid)
            if account.shell != self.shell:
                self.run("usermod", "--shell", self.shell, username)
                changed = True
            if locked and not self.is_locked(username):
                self.run("usermod", "--lock", "--expiredate", "1", username)
                changed = True
            elif not locked and self.is_locked(username):
                self.run("usermod", "--unlock", "--expiredate", "", username)
                changed = True
        return self.write_keys(account, keys) or changed

    def create(self, wanted: list[tuple[str, list[str], bool]]) -> dict[str, str]:
        """Makes the missing accounts ``wanted`` ((username, keys, locked),
        checked) in one write of the account files, then their homes and
        keys. username -> '' when made, else why not: an account whose home
        or keys failed exists (the next ensure finishes it); when the files
        cannot be written, none of them exists."""
        if self.members() is None:
            self.run("groupadd", "--system", GROUP)
        accounts = [NewAccount(username, locked) for username, _keys, locked in wanted]
        # one line in the log for the write; each account's answer names its own
        self.note(self.made(*(a.username for a in accounts)), answer=False)
        try:
            made = create_accounts(self.root, accounts, shell=self.shell, comment=MARKER, group=GROUP,
                                   home_base=HOME_BASE, lock_wait=self.lock_wait)
        except (BatchFailed, OSError) as error:
            return {a.username: f"accounts not made: {error}" for a in accounts}
        result = {a.username: a.error for a in accounts}
        keys_of = {username: keys for username, keys, _locked in wanted}
        for new in made:
            account = Account(new.username, new.uid, new.gid, MARKER, f"{HOME_BASE}/{new.username}", self.shell)
            try:
                make_home(self.root, account.home, account.uid, account.gid)
                self.write_keys(account, keys_of[new.username])
            except (OSError, Refused) as error:
                result[new.username] = (f"account {new.username} was made but its home or keys were not: "
                                        f"{error}; the next attempt finishes it")
        return result

    def made(self, *usernames: str) -> str:
        """The line that says accounts were written (by create)."""
        return shlex.join(["create-accounts", "--root", str(self.root), "--shell", self.shell,
                           "--groups", GROUP, *usernames])

    def read_keys(self, account: Account) -> list[str] | None:
        path = self.home(account) / ".ssh" / "authorized_keys"
        try:
            text = path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return sorted(line.strip() for line in text.splitlines() if line.strip())

    def write_keys(self, account: Account, keys: list[str]) -> bool:
        """``~/.ssh/authorized_keys`` holding exactly ``keys``: written to a
        new file and renamed over the old one, mode 0600, owned by the user.
        The new file is synced before the rename unless it is empty (an
        empty file cannot be half written: a crash leaves no file or an
        empty one, both "no keys")."""
        content = "".join(f"{key}\n" for key in sorted(keys))
        ssh_dir = self.home(account) / ".ssh"
        target = ssh_dir / "authorized_keys"
        try:
            info = os.lstat(ssh_dir)
        except FileNotFoundError:
            os.mkdir(ssh_dir, 0o700)
            os.chown(ssh_dir, account.uid, account.gid)
        else:
            if not stat.S_ISDIR(info.st_mode):
                raise Refused(f"{ssh_dir} is not a directory (a link?): left alone")
        try:
            info = os.lstat(target)
            current = target.read_text() if stat.S_ISREG(info.st_mode) else None
            if (current == content and info.st_uid == account.uid
                    and stat.S_IMODE(info.st_mode) == 0o600):
                return False
        except FileNotFoundError:
            pass
        temporary = ssh_dir / f".authorized_keys.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, content.encode("ascii"))
            os.fchmod(fd, 0o600)
            os.fchown(fd, account.uid, account.gid)
            if content:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
        return True

    def rename(self, old: str, new: str) -> bool:
        account = self._managed_or_refuse(old)
        clash = self._managed_or_refuse(new)
        if account is None:
            if clash is not None:
                return False  # already renamed
            raise Refused(f"there is no account {old} to rename")
        if clash is not None:
            raise Refused(f"account {new} exists already: {old} is not renamed")
        self.run("usermod", "--login", new, "--home", f"{HOME_BASE}/{new}", "--move-home", old)
        return True

    def remove(self, username: str) -> bool:
        """Removes the account; its home is kept, renamed
        ``<home>.deleted-<UTC time>``."""
        account = self._managed_or_refuse(username)
        if account is None:
            return False
        home = self.home(account)
        if home.is_dir() and not home.is_symlink():
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            os.rename(home, home.with_name(f"{home.name}.deleted-{stamp}"))
        self.run("userdel", username)
        return True

    def list(self) -> list[dict]:
        return [{"username": name, "locked": self.is_locked(name), "shell_ok": account.shell == self.shell,
                 "keys": self.read_keys(account)}
                for name, account in sorted(self.managed().items())]

    # -- one request --------------------------------------------------------
    def handle(self, raw: bytes) -> dict:
        self.ran = []
        try:
            if b"\0" in raw:
                raise Refused("the request holds a NUL byte: refused, nothing was run")
            try:
                request = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise Refused("the request is not one line of JSON: refused, nothing was run") from None
            request = check_request(request)
        except Refused as error:
            return {"ok": False, "refused": True, "error": str(error), "ran": self.ran}
        if request["op"] == "list":
            return {"ok": True, "op": "list", "accounts": self.list()}
        if request["op"] == "batch":
            return {"ok": True, "op": "batch", "answers": self.batch(request["requests"])}
        return self.apply(request)

    def apply(self, request: dict) -> dict:
        """One checked ensure, rename or remove; its answer."""
        self.ran = []
        op = request["op"]
        try:
            if op == "ensure":
                changed = self.ensure(request["username"], request["keys"], request["locked"])
            elif op == "rename":
                changed = self.rename(request["from"], request["to"])
            else:
                changed = self.remove(request["username"])
            return {"ok": True, "op": op, "changed": changed, "ran": self.ran}
        except Refused as error:
            return {"ok": False, "refused": True, "error": str(error), "ran": self.ran}
        except (OSError, RuntimeError) as error:
            return {"ok": False, "refused": False, "error": str(error), "ran": self.ran}

    def batch(self, items: list) -> list[dict]:
        """A batch's requests in order, one answer each. Each is checked on
        its own (one refused is not run; the others are). The ensures of
        accounts that do not exist yet are gathered and made in one write,
        up to the next request that is not one of them (so the order of
        the batch is the order applied)."""
        answers: list[dict | None] = [None] * len(items)
        pending: dict[str, tuple[int, dict]] = {}  # username -> (index, ensure): to make together
        existing: set[str] | None = None

        def make_pending():
            if not pending:
                return
            self.ran = []
            errors = self.create([(r["username"], r["keys"], r["locked"]) for _i, r in pending.values()])
            for username, (index, _request) in pending.items():
                ran = self.ran + [self.made(username)]
                answers[index] = ({"ok": True, "op": "ensure", "changed": True, "ran": ran}
                                  if not errors[username] else
                                  {"ok": False, "refused": False, "error": errors[username], "ran": ran})
            pending.clear()

        for index, item in enumerate(items):
            try:
                request = check_in_batch(item)
            except Refused as error:
                answers[index] = {"ok": False, "refused": True, "error": str(error), "ran": []}
                continue
            if request["op"] == "ensure" and request["username"] not in pending:
                if existing is None:
                    existing = set(self.accounts())
                if request["username"] not in existing:
                    pending[request["username"]] = (index, request)
                    continue
            make_pending()
            answers[index] = self.apply(request)
            existing = None  # the files changed: read them again
        make_pending()
        return answers

    def handle_alone(self, raw: bytes) -> dict:
        """One request while no other agent on this node runs one (two
        sessions, e.g. the worker and a reconcile, may be open at once)."""
        lock_dir = self.root / "run"
        lock_dir.mkdir(mode=0o755, exist_ok=True)
        with open(lock_dir / "ezpyr-account-agent.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self.handle(raw)

    def serve(self, stdin, stdout) -> None:
        while True:
            raw = stdin.readline(MAX_LINE)
            if not raw:
                return
            if not raw.endswith(b"\n") and len(raw) >= MAX_LINE:
                answer = {"ok": False, "refused": True, "error": "request too long: refused", "ran": []}
                stdout.write(json.dumps(answer).encode() + b"\n")
                stdout.flush()
                return
            if not raw.strip():
                continue
            stdout.write(json.dumps(self.handle_alone(raw.rstrip(b"\n"))).encode() + b"\n")
            stdout.flush()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 600")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ezpyr-account-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/", help="the accounts' root directory (default /)")
    parser.add_argument("--shell", default="", help="the login shell (default: ezsh beside this Python)")
    parser.add_argument("--log", default=None, help="append every command run to this file")
    parser.add_argument("--lock-wait", type=_seconds, default=LOCK_WAIT, metavar="SECONDS",
                        help=f"how long to wait for the account files' locks that another program "
                             f"(useradd, passwd) holds before giving up on a batch (default {LOCK_WAIT:g})")
    args = parser.parse_args(argv)
    os.umask(0o077)
    Agent(args.root, args.shell, args.log, args.lock_wait).serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
