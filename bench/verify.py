"""Verify benchmark: prints its figures, asserts nothing (MariaDB).

    .venv/bin/python bench/verify.py                    # 1,000,000 servers, 10 changed
    .venv/bin/python bench/verify.py --rows 200000 --chunk-rows 20000

Two real nodes as the tests run them (each its own MariaDB database, the
other node's panel under pserve), both holding the same --rows servers
(made in SQL on the first node and copied to the second, so the fill is
quick). Then the operator's command, timed: ``ezpyr-cluster CONFIG verify
--json`` through the cluster API, once with the nodes equal and once with
--changed rows changed on the other node behind replication's back; it
prints whether Verify named exactly those rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import bindparam, make_url, text  # noqa: E402

from tests.cluster_nodes import BIN, make_cluster  # noqa: E402

FILL = """INSERT INTO servers (id, name, host, port, remote_user, auth_method, password_encrypted,
    group_id, description, created_at, updated_at)
SELECT UUID(), CONCAT('srv', LPAD(seq, 7, '0')), CONCAT('10.', seq DIV 65536, '.', seq DIV 256 MOD 256,
    '.', seq MOD 256), 22, 'root', 'key', NULL, NULL, '', NOW(6), NOW(6)
FROM seq_1_to_{rows}"""


class TempDirs:
    """The one thing ClusterNode wants of pytest's tmp_path_factory."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name, dir=self.root))


def timed_verify(node) -> tuple[float, dict]:
    t0 = time.monotonic()
    out = subprocess.run([str(BIN / "ezpyr-cluster"), str(node.ini), "verify", "--json"],
                         capture_output=True, text=True)
    return time.monotonic() - t0, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, help="ezpyr.verify.chunk_rows (default: the shipped one)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ezpyr-bench-verify-"))
    a, b = make_cluster(workdir, "mariadb", TempDirs(workdir))
    try:
        if args.chunk_rows:
            a.ini.write_text(a.ini.read_text().replace(
                "[app:main]\n", f"[app:main]\nezpyr.verify.chunk_rows = {args.chunk_rows}\n", 1))
        t0 = time.monotonic()
        with a.env.engine.begin() as conn:
            conn.execute(text(FILL.format(rows=int(args.rows))))
        with b.env.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO servers SELECT * FROM `{make_url(a.db_url).database}`.servers"))
        print(f"fill: {args.rows:,} servers on each node in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        b.start_panel()
        for _ in range(2):
            took, report = timed_verify(a)
            print(f"verify, nodes equal:          {took:6.2f} s  in_sync={report.get('in_sync')}"
                  f"  (load average {os.getloadavg()[0]:.1f})")
        with b.env.engine.begin() as conn:
            ids = conn.execute(text("SELECT id FROM servers ORDER BY RAND() LIMIT :n"),
                               {"n": args.changed}).scalars().all()
            conn.execute(text("UPDATE servers SET description = 'changed on b' WHERE id IN :ids")
                         .bindparams(bindparam("ids", expanding=True)), {"ids": ids})
        for _ in range(2):
            took, report = timed_verify(a)
            named = {d["id"] for t in report.get("tables", []) for d in t["differing"] if d["id"]}
            print(f"verify, {args.changed} rows changed:     {took:6.2f} s  names exactly those: "
                  f"{named == set(ids)} ({len(named)} named)  (load average {os.getloadavg()[0]:.1f})")
    finally:
        a.close()
        b.close()


if __name__ == "__main__":
    main()
