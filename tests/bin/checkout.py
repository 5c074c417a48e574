"""A fresh copy of this checkout in a temporary directory, for tests that
run the README's commands and bin/run as a new user would.

The copy either reuses this checkout's .venv (a symlink), or gets a .venv of
its own whose dependencies come from this checkout's .venv (a .pth file), so
that bin/setup-env's first install runs for real in a few seconds, without
downloading every dependency and without touching this checkout's .venv."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

LEFT_OUT = {".venv", "var", ".git", "test-artifacts", "ezpyr.egg-info", "__pycache__",
            ".pytest_cache"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_is_current() -> None:
    """Fails unless .venv was installed from this setup.py (bin/setup-env
    would otherwise install again, from the copy)."""
    stamp = ROOT / ".venv" / ".ezpyr-installed"
    want = hashlib.sha256((ROOT / "setup.py").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        pytest.fail("setup.py changed since .venv was installed: run bin/setup-env first")


def fresh_checkout(target: Path, ports: tuple[int, int] | None = None, *,
                   own_venv: bool = False) -> Path:
    """The project's files (tracked and new, not ignored) as a clone would
    have them, with node1 and node2 on ``ports`` instead of 6543 and 6544;
    ``own_venv``: a new .venv that bin/setup-env installs ezpyr into."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
        files = [ROOT / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in ROOT.rglob("*") if p.is_file()
                 and not LEFT_OUT.intersection(p.relative_to(ROOT).parts)]
    for path in files:
        if not path.is_file() or LEFT_OUT.intersection(path.relative_to(ROOT).parts):
            continue
        copy = target / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    if own_venv:
        venv = target / ".venv"
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
                       check=True)
        purelib = Path(subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True).stdout.strip())
        (purelib / "zz-dependencies-from-the-checkout.pth").write_text(
            sysconfig.get_paths()["purelib"] + "\n")
        # the dependencies' commands (pserve, alembic …), run by the new venv
        for script in (ROOT / ".venv" / "bin").iterdir():
            mine = venv / "bin" / script.name
            text = script.read_bytes()
            if mine.exists() or not text.startswith(b"#!") or b"python" not in text.split(b"\n")[0]:
                continue
            mine.write_bytes(b"#!" + str(venv / "bin" / "python").encode() + text[text.index(b"\n"):])
            mine.chmod(0o755)
    else:
        venv_is_current()
        (target / ".venv").symlink_to(ROOT / ".venv")
    if ports:
        for name, old, new in (("development.ini", 6543, ports[0]),
                               ("config/demo-node2.ini", 6544, ports[1])):
            ini = target / name
            ini.write_text(ini.read_text().replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}"))
    return target


def stop(process) -> None:
    """SIGINT to the process group (what Ctrl-C sends), SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
