"""Add benchmark of the shipped product: seconds from ``ezpyr-cluster add`` to a clean
``ezpyr-cluster verify``, beside ``mysqldump | mysql`` of the same number of rows.

    .venv/bin/python bench/add.py                          # 100,000 servers + 10,000 users
    .venv/bin/python bench/add.py --smoke                  # 5,000 servers + 500 users
    .venv/bin/python bench/add.py --anchors /tmp/ezpyr-bench-anchors --json out.json
    .venv/bin/python bench/add.py --profile /tmp/add-profile   # py-spy of both panels, workers, the CLIs

A primary is installed (``ezpyr-init``) on MariaDB + RabbitMQ and filled with
--servers servers and --users users through the services the panel and
``ezpyr-admin`` use (ServerService, UserService; --batch rows per transaction,
so they sit in its outbox like any admin's changes; not timed). A secondary is
installed with ``ezpyr-init --secondary``; both panels (pserve) and workers
(ezpyr-worker) run as processes (the timing starts once both workers say they
run); ``ezpyr-grant-host`` grants the secondary.
Then, timed: ``ezpyr-cluster add ADDRESS --setup-key KEY`` (handshake, snapshot
copy in chunks over the cluster API, replication start), and ``ezpyr-cluster
verify`` repeated until it reports every table in sync.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from profiling import Profiler  # noqa: E402
from benchlib import (  # noqa: E402
    Figures, Run, add_secondary, anchor_paths, compare, load_anchors, log, make_cluster, server_fields,
    size_mismatches, start_all, verify_cli, wait_workers_running,
)


def progress(what: str, done: int, total: int) -> None:
    done = min(done, total)
    print(f"\r{what}: {done}/{total} ({100 * done // max(total, 1)}%)", end="", file=sys.stderr, flush=True)


def fill(ini: str, servers: int, users: int, batch: int) -> None:
    """Server groups, user groups, servers and users, through the services, ``batch``
    rows per transaction; servers are checked as the CSV import checks them (one
    PreloadedLookup per transaction), users one by one as ``ezpyr-admin users add``."""
    from ezpyr.passwords import Passwords
    from ezpyr.scripts.node_env import NodeEnv
    from ezpyr.servers.services import PreloadedLookup, ServerGroupService, ServerInput, ServerService
    from ezpyr.users.groups import UserGroupService
    from ezpyr.users.services import UserService

    env = NodeEnv(ini, logging=False)
    box = env.secret_box
    passwords = Passwords.from_settings(env.settings)
    try:
        with env.session(actor="bench") as s:
            sg = ServerGroupService(s)
            server_groups = [sg.create(f"sg{i:03d}", f"server group {i}").id for i in range(100)]
            ug = UserGroupService(s)
            user_groups = [ug.create(f"ug{i:03d}", f"user group {i}").id for i in range(50)]
        total = servers + users
        for start in range(0, servers, batch):
            with env.session(actor="bench") as s:
                service = ServerService(s, box)
                lookup = PreloadedLookup(s)  # what the CSV import checks thousands of rows with
                with s.no_autoflush:  # one flush (batched INSERTs) per transaction, not one per row
                    for i in range(start, min(start + batch, servers)):
                        data = ServerInput(name=f"srv{i:07d}", group_id=server_groups[i % 100], **server_fields(i))
                        service.add(service.validate(data, lookup=lookup))
                s.flush()
            progress("filling the primary", start + batch, total)
        for start in range(0, users, batch):
            with env.session(actor="bench") as s:
                service = UserService(s, passwords)
                for i in range(start, min(start + batch, users)):
                    service.create(f"user{i:06d}", f"Bench-pass-{i:06d}", role="user",
                                   full_name=f"User Number {i}", email=f"user{i}@example.org",
                                   group_id=user_groups[i % 50])
            progress("filling the primary", servers + start + batch, total)
        print(file=sys.stderr)
    finally:
        env.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--smoke", action="store_true", help="5,000 servers and 500 users (unless given)")
    p.add_argument("--batch", type=int, default=1000, help="rows per transaction while filling (1000)")
    p.add_argument("--timeout", type=float, default=1800, help="longest wait for a clean Verify (s)")
    p.add_argument("--anchors", help="anchor results: run_all.sh's $BASE folder or a results json")
    p.add_argument("--json", help="also write every figure to this file ('-' for stdout)")
    p.add_argument("--keep", action="store_true", help="keep the node folders (logs, inis) until the next bench run")
    p.add_argument("--profile", metavar="DIR",
                   help="sample both panels and workers (wall clock, waits included) and the add and verify "
                        "commands with py-spy during the timed part: raw stacks and a summary per process in DIR")
    args = p.parse_args(argv)
    profiler = Profiler(args.profile)
    if args.smoke:
        if args.servers == 100_000:
            args.servers = 5000
        if args.users == 10_000:
            args.users = 500
    anchors = load_anchors(anchor_paths(args.anchors))
    figs = Figures("add")
    figs.data["command"] = " ".join([sys.executable, *sys.argv])
    figs.data["settings"] = {"servers": args.servers, "users": args.users, "batch": args.batch}
    print(f"\n[e] Add of {args.servers:,} servers + {args.users:,} users to a clean Verify", flush=True)
    for warning in size_mismatches(anchors, servers=args.servers, users=args.users):
        figs.note("SIZE MISMATCH: " + warning)
    with Run(keep=args.keep) as run:
        primary, secondary = make_cluster(run)
        t = time.monotonic()
        fill(str(primary.ini), args.servers, args.users, args.batch)
        figs.note(f"e. primary filled through ServerService/UserService, {args.batch} rows per transaction, "
                  f"in {time.monotonic() - t:.1f} s (not part of the figure)")
        start_all(primary, secondary)
        wait_workers_running(primary, secondary)
        for node in (primary, secondary):
            profiler.start(f"{node.name}-panel", node.panel.pid, idle=True)
            profiler.start(f"{node.name}-worker", node.worker.pid, idle=True)
        try:
            t0 = time.monotonic()
            add_s, added = add_secondary(primary, secondary, wrap=lambda argv: profiler.wrap("add-cli", argv, True))
            figs.figure("add_s", "e. `ezpyr-cluster add` wall time", round(add_s, 2), "s",
                        rows_copied=added.get("rows"))
            runs, errors, verify_times, failures = 0, [], [], 0
            clean_at = None
            while time.monotonic() - t0 < args.timeout:
                runs += 1
                took, code, out = verify_cli(primary, timeout=args.timeout, wrap=lambda argv: profiler.wrap(
                    f"verify-cli-{runs}", argv, True))
                verify_times.append(round(took, 2))
                if out.get("in_sync"):
                    clean_at = time.monotonic()
                    tables = {t["table"]: t["rows_there"] for t in out["tables"]}
                    break
                errors.append(out.get("error") or "differ: " + ", ".join(
                    t["table"] for t in out.get("tables", []) if not t["in_sync"]))
                failures = failures + 1 if "error" in out else 0
                if failures >= 3:
                    break  # Verify itself fails three times running (not: the nodes still differ)
                primary.check_alive()
                secondary.check_alive()
                time.sleep(0.2)
            if clean_at is None:
                figs.figure("add_to_clean_verify_s", "e. Add to a clean Verify", None, "s", verify_runs=runs)
                figs.note(f"e. no clean Verify within {args.timeout:g} s; last: {errors[-1] if errors else '?'}")
            else:
                figs.figure("add_to_clean_verify_s", "e. from the start of Add to the end of a clean Verify",
                            round(clean_at - t0, 2), "s", verify_runs=runs, verify_seconds=verify_times,
                            servers_there=tables.get("servers"), users_there=tables.get("users"))
            if errors:
                figs.note(f"e. Verify runs before the clean one: {errors[:3]}")
            profiler.stop()
        except BaseException:
            for node in (primary, secondary):
                for name in ("worker.log", "panel.log"):
                    log(f"--- {node.name} {name} (tail)\n{node.tail(name, 1500)}")
            raise
    compare(figs, anchors, "add_to_clean_verify_s", "snapshot_time", lower_is_better=True, target="≤3",
            label="e. Add to a clean Verify (vs mysqldump | mysql)")
    compare(figs, anchors, "add_s", "snapshot_time", lower_is_better=True, target="",
            label="e. Add alone (vs mysqldump | mysql; informative)")
    if args.json:
        text = json.dumps(figs.data, indent=1, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
