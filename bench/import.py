"""CSV import benchmark of the shipped product: rows per second of
``ezpyr-admin CONFIG servers import FILE`` on a MariaDB node.

    .venv/bin/python bench/import.py                    # 100,000 servers
    .venv/bin/python bench/import.py --rows 5000        # a quick look
    .venv/bin/python bench/import.py --cluster          # also: until the slave holds them all
    .venv/bin/python bench/import.py --json out.json    # every figure to a file ('-': stdout)

A node is installed as an operator installs one (``ezpyr-init`` from an ini the
bench writes, on MariaDB; the broker is RabbitMQ). The bench writes a CSV file
of --rows servers (each with a host, a port, a remote user and a description
of about 100 characters, as ``export`` writes them) and times the command from
its start to its exit: reading the file, the job checking every row, adding
them all in one transaction with their outbox entries, and the command seeing
the job end. The job's own time (its row's start and end) is printed beside
it. With --cluster, two nodes are set up and paired (``ezpyr-cluster add``),
both panels and workers run, and the time until the slave holds every server
is printed too.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    Figures, Node, Run, add_secondary, log, make_cluster, scalar, server_fields, start_all, venv_bin,
    wait_connected,
)

HEADER = "name,host,port,remote_user,auth_method,group,description"


def write_csv(path: Path, rows: int) -> int:
    """``rows`` servers as an export would write them; returns the file's size."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n")
        for i in range(rows):
            f = server_fields(i)
            out.write(f"bench{i:07d},{f['host']},{f['port']},{f['remote_user']},key,,\"{f['description']}\"\r\n")
    return path.stat().st_size


def servers_in(node: Node) -> int:
    conn = node.connect()
    try:
        return int(scalar(conn, "SELECT COUNT(*) FROM servers"))
    finally:
        conn.close()


def job_seconds(node: Node, job_id: str) -> float | None:
    conn = node.connect()
    try:
        with conn.cursor() as c:
            c.execute("SELECT started_at, finished_at FROM jobs WHERE id = %s", (job_id,))
            row = c.fetchone()
    finally:
        conn.close()
    return (row[1] - row[0]).total_seconds() if row and row[0] and row[1] else None


def import_file(node: Node, path: Path) -> tuple[float, dict]:
    """``ezpyr-admin CONFIG servers import FILE --json``: (wall seconds, its JSON)."""
    t = time.monotonic()
    done = node.cli("ezpyr-admin", "servers", "import", str(path), "--json")
    return time.monotonic() - t, json.loads(done.stdout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="servers in the file (100,000)")
    p.add_argument("--cluster", action="store_true", help="import on the master of two nodes and time "
                   "until the slave holds every server")
    p.add_argument("--timeout", type=float, default=1800, help="longest wait for the slave (s)")
    p.add_argument("--json", help="also write every figure to this file ('-' for stdout)")
    p.add_argument("--keep", action="store_true", help="keep the node folders (logs, inis) until the next bench run")
    args = p.parse_args(argv)
    figs = Figures("import")
    figs.data["command"] = " ".join([sys.executable, *sys.argv])
    figs.data["settings"] = {"rows": args.rows, "cluster": args.cluster}
    print(f"\n[f] CSV import of {args.rows:,} servers with ezpyr-admin ({venv_bin()})", flush=True)
    with Run(keep=args.keep) as run:
        if args.cluster:
            node, secondary = make_cluster(run)
            start_all(node, secondary)
            add_secondary(node, secondary)
            wait_connected(node, secondary)
        else:
            node, secondary = Node(run, "primary"), None
            node.init()
        path = node.dir / "servers.csv"
        size = write_csv(path, args.rows)
        figs.note(f"f. the file: {args.rows:,} rows, {size / 1e6:.1f} MB")
        try:
            took, done = import_file(node, path)
            t_imported = time.monotonic()
            assert done.get("imported") == args.rows, done
            assert servers_in(node) == args.rows
            figs.figure("import_s", "f. `ezpyr-admin servers import` wall time", round(took, 2), "s")
            figs.figure("import_rows_per_s", "f. rows imported per second (the command's wall time)",
                        round(args.rows / took), "rows/s")
            job = job_seconds(node, done["job"])
            if job:
                figs.figure("import_job_s", "f. the job alone (checking and adding)", round(job, 2), "s",
                            rows_per_s=round(args.rows / job))
            if secondary is not None:
                deadline = time.monotonic() + args.timeout
                while servers_in(secondary) < args.rows and time.monotonic() < deadline:
                    node.check_alive()
                    secondary.check_alive()
                    time.sleep(0.2)
                there = servers_in(secondary)
                figs.figure("import_to_slave_s", "f. from the end of the import until the slave holds every server",
                            round(time.monotonic() - t_imported, 2) if there == args.rows else None, "s",
                            servers_there=there)
        except BaseException:
            for each in filter(None, (node, secondary)):
                for name in ("worker.log", "panel.log"):
                    log(f"--- {each.name} {name} (tail)\n{each.tail(name, 1500)}")
            raise
    if args.json:
        text = json.dumps(figs.data, indent=1, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
