"""Add benchmark: prints its figures, asserts nothing.

    .venv/bin/python bench/add.py                          # MariaDB + RabbitMQ, 100,000 servers, 10,000 users
    .venv/bin/python bench/add.py --backend sqlite --servers 20000 --users 2000

Two real nodes as the tests run them (each its own database, its panel under
pserve and its worker as processes): a primary filled with --servers servers
and --users users (made through the ORM, so they are in its outbox like any
admin's change), a secondary from ``ezpyr-init --secondary``. Then the
operator's commands, timed: ``ezpyr-cluster add`` (handshake, snapshot copy
in chunks, replication start) and ``ezpyr-cluster verify`` until it reports
every table in sync. The figure is the seconds from the start of Add to that
clean Verify.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ezpyr.servers.models import Server, ServerGroup  # noqa: E402
from ezpyr.users.models import User, UserGroup  # noqa: E402
from tests.cluster_nodes import primary_and_secondary  # noqa: E402

BATCH = 2000


class TempDirs:
    """The one thing ClusterNode wants of pytest's tmp_path_factory."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=name, dir=self.root))
        return path


def fill(node, servers: int, users: int) -> None:
    stamp = str(uuid.uuid4())
    password_hash = "$argon2id$v=19$m=1024,t=1,p=1$YmVuY2hzYWx0$0000000000000000000000000000000000000000000"
    with node.env.session(actor="bench") as s:
        groups = [ServerGroup(name=f"sg{i:03d}") for i in range(100)]
        user_groups = [UserGroup(name=f"ug{i:03d}") for i in range(50)]
        s.add_all(groups + user_groups)
        s.flush()
        group_ids = [g.id for g in groups]
        user_group_ids = [g.id for g in user_groups]
    for start in range(0, servers, BATCH):
        with node.env.session(actor="bench") as s:
            s.add_all(Server(name=f"srv{i:06d}", host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                             group_id=group_ids[i % 100])
                      for i in range(start, min(start + BATCH, servers)))
        progress("filling", start + BATCH, servers + users)
    for start in range(0, users, BATCH):
        with node.env.session(actor="bench") as s:
            s.add_all(User(username=f"user{i:05d}", password_hash=password_hash, auth_stamp=stamp,
                           group_id=user_group_ids[i % 50])
                      for i in range(start, min(start + BATCH, users)))
        progress("filling", servers + start + BATCH, servers + users)
    print(file=sys.stderr)


def progress(what: str, done: int, total: int) -> None:
    done = min(done, total)
    print(f"\r{what}: {done}/{total} ({100 * done // max(total, 1)}%)", end="", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["mariadb", "sqlite"], default="mariadb")
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ezpyr-bench-add-") as tmp:
        root = Path(tmp)
        primary, secondary = primary_and_secondary(root, args.backend, TempDirs(root))
        try:
            t = time.monotonic()
            fill(primary, args.servers, args.users)
            print(f"filled the primary with {args.servers} servers and {args.users} users "
                  f"in {time.monotonic() - t:.1f} s (not part of the figure)")
            primary.start()
            secondary.start()
            primary.run("ezpyr-grant-host", "127.0.0.1")

            start = time.monotonic()
            added = primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key)
            add_seconds = time.monotonic() - start
            verify_runs = 0
            while True:
                verify_runs += 1
                verdict = json.loads(primary.run("ezpyr-cluster", "verify", "--json", check=False).stdout or "{}")
                if verdict.get("in_sync"):
                    break
                if time.monotonic() - start > 600:
                    raise SystemExit(f"no clean Verify after 600 s: {verdict}")
            total = time.monotonic() - start
            rows = args.servers + args.users
            print(added.stdout.strip().splitlines()[-1])
            print(json.dumps({
                "backend": args.backend, "servers": args.servers, "users": args.users,
                "add_seconds": round(add_seconds, 2),
                "seconds_to_clean_verify": round(total, 2),
                "verify_runs": verify_runs,
                "rows_per_second_through_add": round(rows / add_seconds),
            }, indent=1))
        finally:
            primary.close()
            secondary.close()


if __name__ == "__main__":
    main()
