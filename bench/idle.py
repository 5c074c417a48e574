"""What a worker costs while nothing happens, and whether it holds on to its
connections: two real nodes (MariaDB + RabbitMQ, set up as an operator does
it), left idle, then given a trickle of changes through ezpyr-admin, then
idle again. Prints each process's share of a core and each worker's open
broker connections at the start and the end of every phase.

    .venv/bin/python bench/idle.py [--idle 60] [--trickle 60]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Run, add_secondary, make_cluster, start_all, venv_bin, wait_connected  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def amqp_connections(pid: int) -> int:
    """ESTABLISHED TCP connections of ``pid`` to port 5672."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == 5672 and fields[3] == "01":
                count += 1
    return count


def measure(processes: dict, seconds: float, during=None) -> dict:
    before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
    conns_before = {name: amqp_connections(p.pid) for name, p in processes.items() if "worker" in name}
    started = time.monotonic()
    if during:
        during(seconds)
    else:
        time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {name: {"cpu_share": (cpu_seconds(p.pid) - before[name]) / elapsed,
                   "connections": (conns_before.get(name), amqp_connections(p.pid)) if "worker" in name else None}
            for name, p in processes.items()}


def trickle(node):
    def run(seconds: float):
        deadline, i = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            subprocess.run([str(venv_bin() / "ezpyr-admin"), str(node.ini), "servers", "add",
                            f"idle-bench-{i}", "--host", f"10.9.{i // 250}.{i % 250 + 1}"],
                           check=True, capture_output=True, stdin=subprocess.DEVNULL)
            i += 1
            time.sleep(0.5)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of each idle phase")
    parser.add_argument("--trickle", type=float, default=60.0, help="seconds of the trickle phase")
    args = parser.parse_args()
    with Run() as run:
        primary, secondary = make_cluster(run)
        start_all(primary, secondary)
        add_secondary(primary, secondary)
        wait_connected(primary, secondary)
        time.sleep(5)
        processes = {f"{n.name} {what}": proc for n in (primary, secondary)
                     for what, proc in (("worker", n.worker), ("panel", n.panel))}
        phases = [("idle", measure(processes, args.idle)),
                  ("trickle (a change every 0.5 s via ezpyr-admin)",
                   measure(processes, args.trickle, trickle(primary))),
                  ("idle again", measure(processes, args.idle))]
        print("\nphase | process | share of a core | broker connections (start -> end)")
        for phase, figures in phases:
            for name, figure in figures.items():
                conns = figure["connections"]
                shown = f"{conns[0]} -> {conns[1]}" if conns else "-"
                print(f"{phase} | {name} | {figure['cpu_share'] * 100:.2f} % | {shown}")


if __name__ == "__main__":
    main()
