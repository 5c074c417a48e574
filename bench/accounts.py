"""System accounts: 1,000 users created on the master (through the
services the panel uses, one transaction each) → seconds until both nodes
hold all 1,000 accounts. Two real nodes (MariaDB + RabbitMQ, set up as an
operator does it, Add over the cluster API), each with its own real sshd on
a loopback port and its own accounts root (the agent's --root), the
workers applying the account tasks. Prints the figures; asserts nothing.

    .venv/bin/python bench/accounts.py [--users 1000] [--profile FILE]

``--profile FILE`` profiles the creating loop (cProfile, this process) and
prints where its time went; FILE keeps the raw profile (pstats).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import Node, Run, add_secondary, log, start_all, wait_connected  # noqa: E402

from ezpyr.passwords import Passwords  # noqa: E402
from ezpyr.scripts.node_env import NodeEnv  # noqa: E402
from ezpyr.users.services import UserService  # noqa: E402
from support.sshd import NodeSshd, make_root, node_settings, provisioned_pair  # noqa: E402

CHEAP_ARGON2 = {"ezpyr.argon2.time_cost": "1", "ezpyr.argon2.memory_cost": "1024",
                "ezpyr.argon2.parallelism": "1"}


def with_accounts(node: Node, own: NodeSshd, other: NodeSshd, key_file: Path) -> None:
    lines = "".join(f"{k} = {v}\n" for k, v in node_settings(own, other, key_file).items())
    node.ini.write_text(node.ini.read_text().replace("\n[alembic]", f"\n{lines}\n[alembic]", 1))


def accounts(sshd: NodeSshd, prefix: str) -> int:
    return sum(1 for name in sshd.passwd() if name.startswith(prefix))


def useradd_alone(workdir: Path, n: int = 20) -> float:
    """Seconds one plain ``useradd --prefix`` takes on this disk (the
    yardstick: what one new account cost when the agent ran one per account)."""
    root = workdir / "yardstick"
    make_root(root)
    started = time.monotonic()
    for i in range(n):
        subprocess.run(["useradd", "--prefix", str(root), "--create-home", "--shell", "/bin/false",
                        f"yard{i:03d}"], check=True, capture_output=True)
    return (time.monotonic() - started) / n


def batch_alone(workdir: Path, n: int) -> float:
    """Seconds the agent takes for one batch request making ``n`` accounts
    (in this process, no SSH: the agent's own share)."""
    import json
    from ezpyr.accounts.agent import Agent
    root = workdir / "batch-yardstick"
    make_root(root)
    agent = Agent(str(root), "/bin/false")
    request = {"op": "batch", "requests": [{"op": "ensure", "username": f"yard{i:04d}", "keys": [],
                                            "locked": False} for i in range(n)]}
    started = time.monotonic()
    answer = agent.handle(json.dumps(request).encode())
    took = time.monotonic() - started
    if not all(a["ok"] for a in answer["answers"]):
        raise SystemExit(f"the batch yardstick failed: {answer['answers'][0]}")
    return took


def sessions(sshd: NodeSshd) -> int:
    return (sshd.dir / "sshd.log").read_text().count("Accepted publickey for root")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--profile", help="profile the creating loop into this file (pstats)")
    args = parser.parse_args()
    with Run() as run:
        workdir = run.workdir("accounts")
        key_file, sshds = provisioned_pair(workdir, ("sshd-primary", "sshd-secondary"))
        try:
            primary, secondary = Node(run, "primary"), Node(run, "secondary")
            with_accounts(primary, sshds[0], sshds[1], key_file)
            with_accounts(secondary, sshds[1], sshds[0], key_file)
            primary.init()
            primary.cli("ezpyr-grant-host", "127.0.0.1")
            secondary.init(secondary_of=primary)
            start_all(primary, secondary)
            add_secondary(primary, secondary)
            wait_connected(primary, secondary)
            before = [sessions(s) for s in sshds]
            env = NodeEnv(str(primary.ini), logging=False)
            service_settings = {**env.settings, **CHEAP_ARGON2}
            passwords = Passwords.from_settings(service_settings)
            log(f"creating {args.users} users on the master, one transaction each")
            profiler = cProfile.Profile() if args.profile else None
            started = time.monotonic()
            if profiler:
                profiler.enable()
            for i in range(args.users):
                with env.session(actor="bench") as s:
                    UserService(s, passwords).create(f"bench{i:04d}", "Pass-word-1234", skip_policy=True)
            if profiler:
                profiler.disable()
            created = time.monotonic() - started
            made_meanwhile = [accounts(s, "bench") for s in sshds]
            done = [None, None]
            while None in done:
                for i, sshd in enumerate(sshds):
                    if done[i] is None and accounts(sshd, "bench") == args.users:
                        done[i] = time.monotonic() - started
                primary.check_alive()
                if time.monotonic() - started > 900:
                    raise SystemExit("gave up after 900 s: " + str([accounts(s, "bench") for s in sshds]))
                time.sleep(0.05)
            env.close()
            opened = [sessions(s) - b for s, b in zip(sshds, before)]
            print(f"users created on the master:         {args.users} in {created:.1f} s "
                  f"({args.users / created:.0f}/s; passwords hashed with cheap argon2 settings)")
            print(f"accounts made while users were created: this node {made_meanwhile[0]}, "
                  f"other node {made_meanwhile[1]}")
            print(f"all {args.users} accounts on this node:   {done[0]:.1f} s after the first create")
            print(f"all {args.users} accounts on the other:   {done[1]:.1f} s after the first create")
            print(f"both nodes hold all accounts:        {max(done):.1f} s (target: under 60 s)")
            print(f"one plain useradd on this disk:      {useradd_alone(workdir) * 1000:.0f} ms "
                  f"(what each new account cost before batches)")
            took = batch_alone(workdir, 500)
            print(f"one batch request making 500 accounts: {took * 1000:.0f} ms "
                  f"({took / 500 * 1000:.1f} ms an account; the agent alone, no SSH)")
            print(f"SSH sessions opened meanwhile:       this node {opened[0]}, other node {opened[1]} "
                  "(one per worker round; each carries every request waiting then, many per batch)")
            if profiler:
                profiler.dump_stats(args.profile)
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
                print(f"profile of the creating loop ({args.profile}), by cumulative time:")
                print(out.getvalue())
        finally:
            for sshd in sshds:
                sshd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
