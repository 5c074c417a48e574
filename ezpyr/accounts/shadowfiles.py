"""Making many accounts in one go: the account agent's batch creation.

``useradd`` makes one account per call, and each call locks, copies (the
``file-`` backup) and rewrites, with an fsync each, ``passwd``, ``shadow``,
``group`` and ``gshadow``: twelve syncs per account. :func:`create_accounts`
makes a whole batch under the same locks with one backup and one new copy
per file:

* the locks are shadow-utils' own, in ``useradd``'s order: ``lckpwdf()``'s
  (an fcntl write lock on ``etc/.pwd.lock``), then ``etc/passwd.lock``,
  ``shadow.lock``, ``group.lock``, ``gshadow.lock``, each taken the way
  ``commonio.c`` takes it (a ``file.PID`` holding the pid, hard-linked to
  ``file.lock``; a lock whose process is gone is stale and broken). While
  they are held no ``useradd``, ``usermod``, ``vipw``, ``passwd``… changes
  the files, and this waits for theirs;
* every file is written to ``file+``, synced, and renamed over the old one
  (after ``file-`` got the old contents, synced), as ``commonio_close``
  does: a crash leaves the old file or the new one, never a mix. All four
  new files are written and synced before the first rename: a batch that
  cannot be written (a full disk) changes nothing;
* the entries are the ones ``useradd --create-home --comment … --groups
  ezpyr-users --shell … --password '*'|'!*' [--expiredate 1]`` writes,
  read from the same settings under the root (``etc/login.defs``: UID_MIN,
  UID_MAX, GID_MIN, GID_MAX, USERGROUPS_ENAB, PASS_MIN_DAYS, PASS_MAX_DAYS,
  PASS_WARN_AGE, UMASK, HOME_MODE; ``etc/default/useradd``: GROUP,
  INACTIVE), and the new uid is the one ``useradd`` picks (one above the
  highest in UID_MIN..UID_MAX, else the lowest free). Unlike ``useradd`` it
  allocates no subordinate ids (``etc/subuid``): gateway accounts run
  ``ezsh`` and nothing else; nor does it reset the new uid's ``lastlog``
  and ``faillog`` records;
* homes are made after the files are written (as ``useradd`` does),
  ``etc/skel`` copied into them, owned by the account.

Nothing here takes a field that :mod:`ezpyr.accounts.requests` did not
check, and nothing runs a shell.
"""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import grp
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ezpyr.accounts.requests import check_username

FILES = ("passwd", "shadow", "group", "gshadow")  # useradd's locking (and renaming) order
LOCK_WAIT = 15.0  # seconds, as lckpwdf() and commonio_lock() wait
USERS_GROUP_FALLBACK = 100  # Debian's GROUP= when etc/default/useradd says nothing


class BatchFailed(RuntimeError):
    """The batch could not be written: no account of it was made."""


@dataclass
class NewAccount:
    username: str
    locked: bool
    uid: int = -1
    gid: int = -1
    error: str = ""  # why this one was not made (the others were)


@dataclass
class Defaults:
    """What ``useradd`` reads from under the root."""
    uid_min: int = 1000
    uid_max: int = 60000
    gid_min: int = 1000
    gid_max: int = 60000
    usergroups: bool = False
    pass_min: str = ""
    pass_max: str = ""
    pass_warn: str = ""
    home_mode: int = 0o755
    group: int = USERS_GROUP_FALLBACK
    inactive: str = ""

    @classmethod
    def read(cls, root: Path) -> "Defaults":
        defs = _key_values(root / "etc/login.defs", sep=None)
        useradd = _key_values(root / "etc/default/useradd", sep="=")
        d = cls()
        d.uid_min = _int(defs.get("UID_MIN"), d.uid_min)
        d.uid_max = _int(defs.get("UID_MAX"), d.uid_max)
        d.gid_min = _int(defs.get("GID_MIN"), d.gid_min)
        d.gid_max = _int(defs.get("GID_MAX"), d.gid_max)
        d.usergroups = defs.get("USERGROUPS_ENAB", "no").lower() == "yes"
        d.pass_min = _age(defs.get("PASS_MIN_DAYS"))
        d.pass_max = _age(defs.get("PASS_MAX_DAYS"))
        d.pass_warn = _age(defs.get("PASS_WARN_AGE"))
        umask = _int(defs.get("UMASK"), 0o022, base=8)
        d.home_mode = _int(defs.get("HOME_MODE"), 0o777 & ~umask, base=8)
        d.group = _int(useradd.get("GROUP"), d.group)
        d.inactive = _age(useradd.get("INACTIVE"))
        return d


def _key_values(path: Path, sep) -> dict[str, str]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(sep, 1)
        if len(parts) == 2:
            values[parts[0].strip()] = parts[1].strip().strip('"')
    return values


def _int(value, default: int, base: int = 10) -> int:
    try:
        return int(value, base) if value is not None else default
    except ValueError:
        return default


def _age(value) -> str:
    """A shadow ageing field: a number, or empty for -1 / unset."""
    number = _int(value, -1)
    return str(number) if number >= 0 else ""


# -- shadow-utils' locks ------------------------------------------------------------------

class ShadowLock:
    """The locks ``useradd`` holds while it changes the account files."""

    def __init__(self, root: Path, files=FILES, wait: float = LOCK_WAIT):
        self.etc = root / "etc"
        self.files = [f for f in files if (self.etc / f).exists()]
        self.wait = wait
        self.held: list[Path] = []
        self.pwd_lock: int | None = None

    def __enter__(self) -> "ShadowLock":
        deadline = time.monotonic() + self.wait
        fd = os.open(self.etc / ".pwd.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.pwd_lock = fd
        try:
            while True:  # lckpwdf(): F_SETLKW on the whole file, 15 s at most
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                        raise BatchFailed(f"cannot lock {self.etc / '.pwd.lock'}: "
                                          f"{error.strerror} (another tool changes the accounts)") from None
                    time.sleep(0.05)
            for name in self.files:
                self._lock_file(self.etc / name, deadline)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _lock_file(self, path: Path, deadline: float) -> None:
        """commonio_lock_nowait(), retried until ``deadline``."""
        lock = Path(f"{path}.lock")
        mine = Path(f"{path}.{os.getpid()}")
        while True:
            fd = os.open(mine, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            try:
                os.write(fd, f"{os.getpid()}\0".encode())
                os.fdatasync(fd)
            finally:
                os.close(fd)
            try:
                os.link(mine, lock)
                if os.stat(mine).st_nlink == 2:
                    self.held.append(lock)
                    return
            except FileExistsError:
                if self._stale(lock):
                    lock.unlink(missing_ok=True)
                    continue
            finally:
                mine.unlink(missing_ok=True)
            if time.monotonic() > deadline:
                raise BatchFailed(f"{lock} is held by another process: the accounts were not changed")
            time.sleep(0.05)

    @staticmethod
    def _stale(lock: Path) -> bool:
        try:
            pid = int(lock.read_bytes().split(b"\0")[0].strip() or b"0")
        except (OSError, ValueError):
            return False  # unreadable or not a pid: shadow-utils leaves it too
        if pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __exit__(self, *exc) -> None:
        for lock in reversed(self.held):
            lock.unlink(missing_ok=True)
        self.held = []
        if self.pwd_lock is not None:
            os.close(self.pwd_lock)  # ulckpwdf(): closing releases the fcntl lock
            self.pwd_lock = None


# -- the files ----------------------------------------------------------------------------

def _ending(text: str) -> str:
    """The file's text ending with a newline (lines are appended to it)."""
    return text if not text or text.endswith("\n") else text + "\n"


def _write_new(path: Path, old: bytes, new: bytes) -> Path:
    """``file-`` (the old contents) and ``file+`` (the new), both synced,
    with the file's owner and mode; returns ``file+`` (not renamed yet)."""
    info = os.stat(path)
    for target, data in ((Path(f"{path}-"), old), (Path(f"{path}+"), new)):
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchown(fd, info.st_uid, info.st_gid)
            os.fchmod(fd, info.st_mode & 0o7777)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    return Path(f"{path}+")


def _members_added(line: str, names: list[str], index: int) -> str:
    """A group or gshadow line with ``names`` appended to its member list
    (field ``index``)."""
    fields = line.split(":")
    while len(fields) <= index:
        fields.append("")
    current = [m for m in fields[index].split(",") if m]
    fields[index] = ",".join(current + [n for n in names if n not in current])
    return ":".join(fields)


def _free_ids(used: set[int], low: int, high: int, count: int, elsewhere=lambda _id: False) -> list[int]:
    """useradd's choice, ``count`` times: one above the highest used id in
    low..high, or else (that one is above high) the lowest free one. An id
    ``elsewhere`` says is taken (by NSS: LDAP, sssd…) is skipped."""
    taken = set(used)
    in_range = [i for i in taken if low <= i <= high]
    following = max(in_range) + 1 if in_range else low
    chosen = []
    for _ in range(count):
        while following <= high and elsewhere(following):
            following += 1
        if following <= high:
            candidate, following = following, following + 1
        else:
            candidate = next((i for i in range(low, high + 1) if i not in taken and not elsewhere(i)), None)
            if candidate is None:
                raise BatchFailed(f"no free id left in {low}..{high}: no account of this batch was made")
        taken.add(candidate)
        chosen.append(candidate)
    return chosen


class _NameService:
    """On / (production), users and groups that NSS knows of besides the
    files (LDAP, sssd…) count as taken, as they do for useradd. Under
    another root only that root's files count."""

    def __init__(self, root: Path):
        self.active = root.resolve() == Path("/")

    def user(self, name: str) -> bool:
        return self.active and _found(pwd.getpwnam, name)

    def uid(self, uid: int) -> bool:
        return self.active and _found(pwd.getpwuid, uid)

    def group(self, name: str) -> bool:
        return self.active and _found(grp.getgrnam, name)

    def gid(self, gid: int) -> bool:
        return self.active and _found(grp.getgrgid, gid)


def _found(lookup, key) -> bool:
    try:
        lookup(key)
    except KeyError:
        return False
    return True


def create_accounts(root: Path, accounts: list[NewAccount], *, shell: str, comment: str, group: str,
                    home_base: str = "/home", today: int | None = None,
                    lock_wait: float = LOCK_WAIT) -> list[NewAccount]:
    """Adds ``accounts`` to the files under ``root`` in one locked write
    (see the module's text). An account that cannot be made (its name or
    its group's name taken meanwhile) gets its ``error`` and the others go
    on; a batch that cannot be written raises BatchFailed and changes
    nothing. Returns the accounts made, with their ids."""
    for account in accounts:
        check_username(account.username)
    for value, what in ((shell, "shell"), (comment, "comment"), (home_base, "home base"), (group, "group")):
        if not value or any(c in value for c in ":\n\0"):
            raise BatchFailed(f"the {what} {value!r} cannot go into the account files")
    defaults = Defaults.read(root)
    etc = root / "etc"
    today = today if today is not None else (dt.datetime.now(dt.timezone.utc).date()
                                             - dt.date(1970, 1, 1)).days
    with ShadowLock(root, wait=lock_wait):
        old = {name: (etc / name).read_bytes() if (etc / name).exists() else None for name in FILES}
        if old["passwd"] is None or old["group"] is None:
            raise BatchFailed(f"{etc}/passwd or {etc}/group is missing")
        text = {name: _ending(data.decode("utf-8", "surrogateescape")) if data is not None else None
                for name, data in old.items()}
        passwd = [line.split(":") for line in text["passwd"].splitlines()]
        groups = [line.split(":") for line in text["group"].splitlines()]
        names = {f[0] for f in passwd}
        group_names = {f[0] for f in groups}
        uids = {int(f[2]) for f in passwd if len(f) > 2 and f[2].isdigit()}
        gids = {int(f[2]) for f in groups if len(f) > 2 and f[2].isdigit()}
        if group not in group_names:
            raise BatchFailed(f"the group {group} is missing")
        nss = _NameService(root)
        made = []
        for account in accounts:
            if account.username in names or nss.user(account.username):
                account.error = f"account {account.username} exists already: not made"
            elif defaults.usergroups and (account.username in group_names or nss.group(account.username)):
                account.error = (f"a group named {account.username} exists already: "
                                 f"account {account.username} not made")
            else:
                names.add(account.username)
                made.append(account)
        if not made:
            return []
        for account, uid in zip(made, _free_ids(uids, defaults.uid_min, defaults.uid_max, len(made), nss.uid)):
            account.uid = uid
            if defaults.usergroups:
                # useradd gives the private group the uid's number when it is free
                account.gid = uid if (uid not in gids and not nss.gid(uid)
                                      and defaults.gid_min <= uid <= defaults.gid_max) \
                    else _free_ids(gids, defaults.gid_min, defaults.gid_max, 1, nss.gid)[0]
                gids.add(account.gid)
            else:
                account.gid = defaults.group
        new = {}
        new["passwd"] = text["passwd"] + "".join(
            f"{a.username}:x:{a.uid}:{a.gid}:{comment}:{home_base}/{a.username}:{shell}\n" for a in made)
        if text["shadow"] is not None:
            new["shadow"] = text["shadow"] + "".join(
                f"{a.username}:{'!*' if a.locked else '*'}:{today}:{defaults.pass_min}:{defaults.pass_max}:"
                f"{defaults.pass_warn}:{defaults.inactive}:{'1' if a.locked else ''}:\n" for a in made)
        added = [a.username for a in made]
        group_lines = [(_members_added(line, added, 3) if line.split(":")[0] == group else line)
                       for line in text["group"].splitlines()]
        group_lines += [f"{a.username}:x:{a.gid}:" for a in made if defaults.usergroups]
        new["group"] = "".join(line + "\n" for line in group_lines)
        if text["gshadow"] is not None:
            gshadow_lines = [(_members_added(line, added, 3) if line.split(":")[0] == group else line)
                             for line in text["gshadow"].splitlines()]
            gshadow_lines += [f"{a.username}:!::" for a in made if defaults.usergroups]
            new["gshadow"] = "".join(line + "\n" for line in gshadow_lines)
        written = []
        try:
            for name in FILES:
                if name in new:
                    written.append((etc / name, _write_new(etc / name, old[name],
                                                           new[name].encode("utf-8", "surrogateescape"))))
        except OSError as error:
            for _path, plus in written:
                plus.unlink(missing_ok=True)
            Path(f"{etc / name}+").unlink(missing_ok=True)
            raise BatchFailed(f"cannot write {etc / name}: {error.strerror or error}: "
                              "no account of this batch was made") from None
        for path, plus in written:
            os.rename(plus, path)
    flush_caches()
    return made


def flush_caches() -> None:
    """What useradd does after changing the files: nscd's and sssd's caches
    of users and groups are dropped, where they run."""
    for argv in (["/usr/sbin/nscd", "-i", "passwd"], ["/usr/sbin/nscd", "-i", "group"],
                 ["/usr/sbin/sss_cache", "-UG"]):
        if os.path.exists(argv[0]):
            subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, check=False)


def make_home(root: Path, home: str, uid: int, gid: int, mode: int | None = None) -> bool:
    """The account's home under ``root``, as ``useradd --create-home``
    makes it: ``etc/skel`` copied in, everything owned by the account. A
    home that exists already is left as it is (useradd does the same).
    True when made."""
    path = root / home.lstrip("/")
    if os.path.lexists(path):
        return False
    os.mkdir(path, 0o700)
    skel = root / "etc/skel"
    if skel.is_dir() and not skel.is_symlink():
        for item in sorted(skel.iterdir()):
            target = path / item.name
            if item.is_symlink():
                os.symlink(os.readlink(item), target)
            elif item.is_dir():
                shutil.copytree(item, target, symlinks=True)
            else:
                shutil.copy2(item, target, follow_symlinks=False)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), uid, gid)
    os.chown(path, uid, gid)
    os.chmod(path, mode if mode is not None else Defaults.read(root).home_mode)
    return True
