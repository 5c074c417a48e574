"""Optional sampling profiles of the bench's processes with py-spy (``pip install py-spy``;
attaching needs root or ptrace rights). ``--profile DIR`` of bench/replication.py uses it:
one raw (collapsed-stack) file per process and phase, and a summary of where the time goes.

With EZPYR_PROFILE_CPU=1 in the environment only the thread holding the GIL is sampled
(py-spy --gil): where the CPU goes, without the threads that wait on a socket, which
py-spy's idle detection does not always leave out."""
from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, outdir: str | None, rate: int = 50):
        self.outdir = Path(outdir) if outdir else None
        self.rate = rate
        self.running: list[tuple[str, subprocess.Popen, Path]] = []
        self.done: list[tuple[str, Path]] = []
        if self.outdir:
            self.outdir.mkdir(parents=True, exist_ok=True)
            if not py_spy():
                raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")

    def start(self, name: str, pid: int, idle: bool = False) -> None:
        """idle: also sample threads that wait (on the database, a lock, the network): where the
        wall-clock time goes, not only the CPU time."""
        if not self.outdir:
            return
        out = self.outdir / f"{name}.txt"
        log = open(self.outdir / f"{name}.py-spy.log", "w")
        proc = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--nonblocking", *self._options(out, idle)],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.running.append((name, proc, out))

    def wrap(self, name: str, argv: list[str], idle: bool = False) -> list[str]:
        """``argv`` run under py-spy from its first instruction (a short-lived command such as
        ``ezpyr-cluster add``, which attaching would partly miss); unchanged without --profile.
        py-spy writes the file when the command exits; ``stop`` summarizes it."""
        if not self.outdir:
            return argv
        out = self.outdir / f"{name}.txt"
        self.running.append((name, None, out))
        return [py_spy(), "record", *self._options(out, idle), "--", *argv]

    def _options(self, out: Path, idle: bool) -> list[str]:
        """py-spy record's options but what to sample (see the module for EZPYR_PROFILE_CPU)."""
        return (["--rate", str(self.rate), "--format", "raw", "--output", str(out), "--threads"]
                + (["--gil"] if os.environ.get("EZPYR_PROFILE_CPU") else []) + (["--idle"] if idle else []))

    def stop(self) -> None:
        """Ends every recording (SIGINT makes py-spy write its file) and writes the summaries."""
        for name, proc, out in self.running:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for name, proc, out in self.running:
            try:
                if proc is not None:
                    proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if out.exists():
                self.done.append((name, out))
                text = summarize(out)
                (self.outdir / f"{name}.summary.txt").write_text(text)
                print(f"  profile {name}: {out}\n" + "\n".join("    " + line for line in text.splitlines()[:14]),
                      flush=True)
        self.running = []


FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("/site-packages/", "/wt-bench/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarize(raw: Path, top: int = 12) -> str:
    """Share of samples per function: inclusive (on the stack) for the project's own code,
    and self (the leaf frame) for everything."""
    inclusive: collections.Counter = collections.Counter()
    leaf: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f and not f.startswith("thread (") and not f.startswith("process ")]
        if not frames:
            continue
        leaf[_short(frames[-1])] += n
        for f in set(_short(f) for f in frames):
            if "ezpyr/" in f or "worker/" in f or "bench/" in f:
                inclusive[f] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples"]
    lines.append("own code, inclusive (share of samples with the function on the stack):")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines.append("leaf frames (where the samples were):")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in leaf.most_common(top)]
    return "\n".join(lines) + "\n"
