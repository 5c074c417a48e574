"""ezpyr-account-agent: the only thing the provisioning key may run on a
node. sshd starts it as the forced command of that key
(``restrict,command="…/ezpyr-account-agent …"`` in ``authorized_keys``);
whatever command the client asked for is ignored.

It reads one request at a time, a JSON object per line on stdin, checks
every field (:mod:`ezpyr.accounts.requests`) before it runs anything, runs
the system tools itself (``useradd``, ``usermod``, ``userdel``,
``groupadd``; argv lists, never a shell) and answers one JSON object per
line on stdout. It only ever touches accounts it manages: those in the
group ``ezpyr-users`` whose comment is ``ezpyr managed account``.

``--root DIR`` works on the accounts under DIR (``useradd --prefix``) instead
of ``/``: two nodes on one machine keep their own passwd files (tests).
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

from ezpyr.accounts.requests import Refused, check_request

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
    def __init__(self, root: str = "/", shell: str = "", log: str | None = None):
        self.root = Path(root)
        self.shell = shell or str(Path(sys.executable).parent / "ezsh")
        self.log = log
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
    def run(self, tool: str, *args: str) -> None:
        executable = shutil.which(tool, path=TOOLS_PATH)
        if executable is None:
            raise RuntimeError(f"{tool} is not installed on this node")
        argv = [executable]
        if self.root != Path("/"):
            argv += ["--prefix", str(self.root)]
        argv += list(args)
        line = shlex.join(argv)
        self.ran.append(line)
        if self.log:
            with open(self.log, "a") as log:
                log.write(json.dumps({"at": dt.datetime.now(dt.timezone.utc).isoformat(),
                                      "argv": line}) + "\n")
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
            if self.members() is None:
                self.run("groupadd", "--system", GROUP)
            self.run("useradd", "--create-home", "--home-dir", f"{HOME_BASE}/{username}",
                     "--shell", self.shell, "--comment", MARKER, "--groups", GROUP,
                     "--password", "!*" if locked else "*",
                     *(["--expiredate", "1"] if locked else []), username)
            account = self.accounts()[username]
            changed = True
        else:
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

    def read_keys(self, account: Account) -> list[str] | None:
        path = self.home(account) / ".ssh" / "authorized_keys"
        try:
            text = path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return sorted(line.strip() for line in text.splitlines() if line.strip())

    def write_keys(self, account: Account, keys: list[str]) -> bool:
        """``~/.ssh/authorized_keys`` holding exactly ``keys``: written to a
        new file and renamed over the old one, mode 0600, owned by the user."""
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
            op = request["op"]
            if op == "list":
                return {"ok": True, "op": op, "accounts": self.list()}
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ezpyr-account-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/", help="the accounts' root directory (default /)")
    parser.add_argument("--shell", default="", help="the login shell (default: ezsh beside this Python)")
    parser.add_argument("--log", default=None, help="append every command run to this file")
    args = parser.parse_args(argv)
    os.umask(0o077)
    Agent(args.root, args.shell, args.log).serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
