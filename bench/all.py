"""Everything in one run: MariaDB's native replication (the yardstick, run_all.sh of
the shared anchors), then ezpyr's benches at the same sizes, then one side-by-side
table (MariaDB figure | ezpyr figure | ratio | target).

    .venv/bin/python bench/all.py              # full size: anchors ~10 min, then the benches (root: the
                                               # anchors start two MariaDB instances of their own)
    .venv/bin/python bench/all.py --smoke      # small sizes everywhere (a few minutes)
    .venv/bin/python bench/all.py --reuse-anchors /tmp/ezpyr-bench-anchors   # anchors of an earlier run

The yardstick's anchors/ are in the folder "shared" beside the project (EZPYR_SHARED overrides it). The
anchors write their raw results and FIGURES.md under --base (default
/tmp/ezpyr-bench-anchors); this script writes ezpyr-*.json and EZPYR-VS-MARIADB.md there.
Ratios compare figures of one run only: the machine is shared and noisy.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import ROOT, shared_dir  # noqa: E402

FULL = {"lag_seconds": 30, "catchup": 100_000, "verify_rows": 1_000_000, "servers": 100_000, "users": 10_000,
        "max_seconds": 30}
SMOKE = {"lag_seconds": 5, "catchup": 2000, "verify_rows": 50_000, "servers": 5000, "users": 500,
         "max_seconds": 5}


def run_anchors(base: Path, sizes: dict, smoke: bool) -> tuple[float, str]:
    script = shared_dir() / "anchors" / "run_all.sh"
    if not script.exists():
        raise SystemExit(f"no {script}: put the shared folder beside the project or set EZPYR_SHARED")
    if os.geteuid() != 0:
        raise SystemExit("the anchors need root (they start two MariaDB instances and may apt-get install "
                         "mariadb-server/percona-toolkit); run as root or give --reuse-anchors DIR")
    env = dict(os.environ, BASE=str(base), FIGURES_MD=str(base / "FIGURES.md"),
               LAG_SECONDS=str(sizes["lag_seconds"]), LAG_RATE="200", CATCHUP_ROWS=str(sizes["catchup"]),
               VERIFY_ROWS=str(sizes["verify_rows"]), SNAP_SERVERS=str(sizes["servers"]),
               SNAP_USERS=str(sizes["users"]))
    if smoke:
        env.setdefault("BP_PASS", "0")
    shown = " ".join(f"{k}={env[k]}" for k in ("BASE", "FIGURES_MD", "LAG_SECONDS", "CATCHUP_ROWS", "VERIFY_ROWS",
                                                "SNAP_SERVERS", "SNAP_USERS") if k in env)
    if "BP_PASS" in env:
        shown += f" BP_PASS={env['BP_PASS']}"
    command = f"{shown} bash {script}"
    print(f"\n=== MariaDB anchors: {command}", flush=True)
    t = time.monotonic()
    subprocess.run(["bash", str(script)], cwd=ROOT, env=env, check=True)
    return time.monotonic() - t, command


def run_bench(name: str, argv: list[str]) -> tuple[float, str, int]:
    command = " ".join([sys.executable, str(ROOT / "bench" / name), *argv])
    print(f"\n=== {command}", flush=True)
    t = time.monotonic()
    code = subprocess.run([sys.executable, str(ROOT / "bench" / name), *argv], cwd=ROOT).returncode
    if code:
        print(f"=== {name} failed (exit {code}); going on with what there is", flush=True)
    return time.monotonic() - t, command, code


def fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(rows: list[dict]) -> list[str]:
    out = ["| figure | MariaDB | ezpyr | ratio ezpyr/MariaDB | target (ratio) | met |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r.get("unit") else ""
        label = r["label"].replace("|", "\\|")
        out.append(f"| {label} | {fmt(r['mariadb'])}{unit} | {fmt(r['ezpyr'])}{unit} | {fmt(r['ratio'])} | "
                   f"{r['target'] or '-'} | {'-' if r['met'] is None else fmt(r['met'])} |")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="small sizes for anchors and benches alike")
    p.add_argument("--base", default="/tmp/ezpyr-bench-anchors", help="folder for the anchors' and our results")
    p.add_argument("--reuse-anchors", metavar="DIR", help="do not run the anchors; use DIR/results*.json")
    p.add_argument("--only", default="a,b,c,d,e", help="which ezpyr figures (default a,b,c,d,e)")
    p.add_argument("--via", choices=["services", "http"], default="services",
                   help="how replication.py's a and b make changes (see its --help)")
    args = p.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    base = Path(args.reuse_anchors or args.base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    commands, timings = [], {}
    if args.reuse_anchors:
        commands.append(f"(anchors reused from {base})")
    results, failed = [], []
    if not args.reuse_anchors:
        try:
            took, cmd = run_anchors(base, sizes, args.smoke)
        except subprocess.CalledProcessError as error:
            failed.append(f"the anchors (run_all.sh exited {error.returncode})")
            print("=== the anchors failed; the benches run anyway, with whatever anchor figures were written",
                  flush=True)
        else:
            timings["anchors"] = took
            commands.append(cmd)
    only = set(args.only.split(","))
    rep_only = ",".join(sorted(only & {"a", "b", "c", "d"}))
    if rep_only:
        out = base / "ezpyr-replication.json"
        out.unlink(missing_ok=True)
        took, cmd, code = run_bench("replication.py", [
            "--only", rep_only, "--seconds", str(sizes["lag_seconds"]), "--max-seconds", str(sizes["max_seconds"]),
            "--catchup", str(sizes["catchup"]), "--verify-rows", str(sizes["verify_rows"]),
            "--via", args.via, "--anchors", str(base), "--json", str(out)])
        timings["replication.py"] = took
        commands.append(cmd)
        failed += [f"replication.py exited {code}"] if code else []
        if out.exists():
            results.append(json.loads(out.read_text()))
    if "e" in only:
        out = base / "ezpyr-add.json"
        out.unlink(missing_ok=True)
        took, cmd, code = run_bench("add.py", ["--servers", str(sizes["servers"]), "--users", str(sizes["users"]),
                                               "--anchors", str(base), "--json", str(out)])
        timings["add.py"] = took
        commands.append(cmd)
        failed += [f"add.py exited {code}"] if code else []
        if out.exists():
            results.append(json.loads(out.read_text()))

    rows = [r for res in results for r in res.get("compare", [])]
    notes = [n for res in results for n in res.get("notes", [])]
    facts = {}
    anchor_json = base / "results.json"
    if anchor_json.exists():
        facts = json.loads(anchor_json.read_text()).get("facts", {})
    lines = [f"# ezpyr beside MariaDB native replication ({'smoke sizes' if args.smoke else 'full sizes'})", "",
             f"One run, started {started:%Y-%m-%d %H:%M} UTC on {facts.get('nproc', os.cpu_count())} cores "
             f"({facts.get('cpu', '?')}), MariaDB {facts.get('mariadb', '?')}. Ratios are ezpyr / MariaDB "
             "(for rates higher is better; for times and lag lower is better).", ""]
    lines += table(rows)
    lines += ["", "Sizes: " + ", ".join(f"{k}={v:,}" for k, v in sizes.items()), "",
              "Commands:", ""] + [f"    {c}" for c in commands]
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if failed:
        lines += ["", "FAILED: " + "; ".join(failed) + " (their figures are missing above)"]
    lines += ["", f"Raw figures: {base}/results*.json (MariaDB), {base}/ezpyr-*.json (ezpyr); "
              f"the anchors' own report: {base}/FIGURES.md"]
    text = "\n".join(lines) + "\n"
    md = base / "EZPYR-VS-MARIADB.md"
    md.write_text(text)
    print("\n" + text)
    print(f"wrote {md}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
