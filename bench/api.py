"""The REST API under load: 20 concurrent clients against the shipped panel
(pserve, waitress with the production ini's 8 threads) of a master with a
slave (MariaDB + RabbitMQ, paired with ``ezpyr-cluster add``, both workers
running, so every write is captured and replicated).

    .venv/bin/python bench/api.py [--seconds 20] [--read-rate 600] [--write-rate 150] [--threads 8]
    .venv/bin/python bench/api.py --seconds 10 --profile /tmp/prof   # py-spy: where the panel's time goes

Phases, each ``--seconds`` long, open loop (each client sends at its share
of the offered rate; a late answer delays nothing that follows, so the
latency counts the wait for a free thread too):

1. yardstick: ``GET /healthz`` (the same server, no database): the ceiling
   of pserve + waitress + Python on this machine;
2. lightest: ``GET /api/v1/me``, the least an API call does (the token's
   check, its activity entry, a commit): the ceiling of any API read;
3. reads: ``GET /api/v1/servers?limit=100`` (1,000 servers stored);
4. writes: ``POST /api/v1/servers``;
5. a mix: reads and writes at once, at their two rates.

Prints offered and achieved rates, p50/p99 latency, the ratios to the
yardstick, and the CPU each answer cost the panel process and the load
generators (the clients share this machine's cores with the server: their
cost is printed, not hidden); asserts nothing. Targets (issue 11): reads >= 500/s with p99 <
100 ms, writes >= 100/s. The API's per-token limit is raised for the run
(``ezpyr.api.rate_limit``): it would otherwise answer 429 long before.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Figures, Run, add_secondary, log, make_cluster, pct, rounded, start_all, wait_connected  # noqa: E402
from profiling import Profiler  # noqa: E402

CLIENTS = 20
PROCESSES = 4  # the clients run as 4 processes x 5 threads: one Python process would be the bottleneck


def client_process(port: int, token: str, plan: list[tuple[str, float]], start_at: float, seconds: float,
                   threads: int, index: int, out) -> None:
    """``plan``: (kind, rate per client) pairs; each thread of this process is
    one client, sending each kind at its rate."""
    import threading

    results: list[tuple[str, float, int, float]] = []
    lock = threading.Lock()
    cpu_at_start = time.process_time()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        schedule = []
        for kind, rate in plan:
            if rate <= 0:
                continue
            step = 1.0 / rate
            t = start_at + step * ((n * 0.37) % 1.0)  # spread the clients' first sends
            while t < start_at + seconds:
                schedule.append((t, kind))
                t += step
        schedule.sort()
        mine = []
        for k, (due, kind) in enumerate(schedule):
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            headers = {"Authorization": f"Bearer {token}"}
            if kind == "health":
                method, path, body = "GET", "/healthz", None
            elif kind == "me":
                method, path, body = "GET", "/api/v1/me", None
            elif kind == "read":
                method, path, body = "GET", "/api/v1/servers?limit=100", None
            else:
                name = f"w{index:02d}{n:02d}{k:06d}-{int(due * 1000) % 100000}"
                method, path = "POST", "/api/v1/servers"
                body = json.dumps({"name": name, "host": "10.1.0.1", "description": "bench"})
                headers["Content-Type"] = "application/json"
            try:
                conn.request(method, path, body=body, headers=headers)
                answer = conn.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            done_at = time.monotonic()
            mine.append((kind, done_at - due, status, done_at))
        with lock:
            results.extend(mine)

    workers = [threading.Thread(target=client, args=(index * threads + n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((results, time.process_time() - cpu_at_start))


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK"), int(fields[12]) / os.sysconf("SC_CLK_TCK")


def phase(port: int, token: str, name: str, rates: dict[str, float], seconds: float, figures: Figures,
          server_pid: int, profiler: Profiler) -> dict:
    per_client = [(kind, rate / CLIENTS) for kind, rate in rates.items()]
    queue = multiprocessing.Queue()
    start_at = time.monotonic() + 1.0
    procs = [multiprocessing.Process(target=client_process,
                                     args=(port, token, per_client, start_at, seconds, CLIENTS // PROCESSES, i,
                                           queue))
             for i in range(PROCESSES)]
    server_cpu = cpu_seconds(server_pid)
    profiler.start(f"{name}-panel", server_pid)
    for p in procs:
        p.start()
    results = []
    client_cpu = 0.0
    for _ in procs:
        mine, used = queue.get()
        results.extend(mine)
        client_cpu += used
    server_user, server_system = (after - before for after, before in zip(cpu_seconds(server_pid), server_cpu))
    profiler.stop()
    for p in procs:
        p.join()
    answered = sum(1 for r in results if r[2])
    if answered:
        figures.figure(f"{name}.server_cpu", f"{name}: panel process CPU per answer",
                       rounded((server_user + server_system) / answered * 1000, 2), "ms",
                       user_ms=rounded(server_user / answered * 1000, 2),
                       system_ms=rounded(server_system / answered * 1000, 2))
        figures.note(f"{name}: the panel's CPU per answer: {server_user / answered * 1000:.2f} ms user, "
                     f"{server_system / answered * 1000:.2f} ms system (threads handing the GIL over, sockets)")
        figures.figure(f"{name}.client_cpu", f"{name}: load generators' CPU per answer",
                       rounded(client_cpu / answered * 1000, 2), "ms")
    out = {}
    for kind, rate in rates.items():
        mine = [r for r in results if r[0] == kind]
        ok = [latency for _, latency, status, _ in mine if 200 <= status < 300]
        bad = len(mine) - len(ok)
        # answers per second from the first send to the last answer: a server that
        # falls behind takes longer than the offered window to answer it all
        span = max([seconds] + [done_at - start_at for *_, done_at in mine])
        achieved = len(ok) / span
        out[kind] = {"offered": rate, "achieved": achieved, "p50_ms": pct(ok, 50) * 1000,
                     "p99_ms": pct(ok, 99) * 1000, "failed": bad}
        figures.figure(f"{name}.{kind}.offered", f"{name}: {kind} offered", rounded(rate, 1), "req/s")
        figures.figure(f"{name}.{kind}.achieved", f"{name}: {kind} achieved (2xx)", rounded(achieved, 1), "req/s")
        figures.figure(f"{name}.{kind}.p50", f"{name}: {kind} p50", rounded(out[kind]["p50_ms"], 1), "ms")
        figures.figure(f"{name}.{kind}.p99", f"{name}: {kind} p99", rounded(out[kind]["p99_ms"], 1), "ms")
        if bad:
            statuses = sorted({status for k, _, status, _ in mine if k == kind and not 200 <= status < 300})
            figures.note(f"{name}: {bad} {kind} requests were not 2xx (statuses {statuses})")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--read-rate", type=float, default=600, help="offered GET /servers per second")
    parser.add_argument("--write-rate", type=float, default=150, help="offered POST /servers per second")
    parser.add_argument("--health-rate", type=float, default=1500, help="offered GET /healthz per second")
    parser.add_argument("--threads", type=int, default=8, help="the panel's waitress threads (the production ini's 8)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy the panel process during each phase (raw stacks and a summary in DIR)")
    args = parser.parse_args()
    profiler = Profiler(args.profile)
    figures = Figures("api")
    with Run() as run:
        primary, secondary = make_cluster(run)
        for node in (primary, secondary):
            node.ini.write_text(node.ini.read_text().replace(
                "retry.attempts = 3", "retry.attempts = 3\nezpyr.api.rate_limit = 1000000", 1).replace(
                "threads = 8", f"threads = {args.threads}", 1))
        start_all(primary, secondary)
        add_secondary(primary, secondary)
        wait_connected(primary, secondary)
        made = json.loads(primary.cli("ezpyr-admin", "--json", "tokens", "add", "bench", "--owner", "admin",
                                      "--read-write").stdout)
        token = made["secret"]
        log("storing 1,000 servers through the API (not timed)")
        conn = http.client.HTTPConnection("127.0.0.1", primary.port, timeout=30)
        for i in range(1000):
            conn.request("POST", "/api/v1/servers", body=json.dumps({"name": f"seed{i:04d}", "host": "10.0.0.1"}),
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            if answer.status != 201:
                raise RuntimeError(f"seeding failed: {answer.status}")
        conn.close()
        log(f"yardstick: GET /healthz, offered {args.health_rate:.0f}/s by {CLIENTS} clients")
        health = phase(primary.port, token, "yardstick", {"health": args.health_rate},
                       args.seconds, figures, primary.panel.pid, profiler)
        log(f"lightest: GET /api/v1/me, offered {args.read_rate:.0f}/s")
        lightest = phase(primary.port, token, "lightest", {"me": args.read_rate},
                         args.seconds, figures, primary.panel.pid, profiler)
        log(f"reads: GET /api/v1/servers?limit=100, offered {args.read_rate:.0f}/s")
        reads = phase(primary.port, token, "reads", {"read": args.read_rate},
                      args.seconds, figures, primary.panel.pid, profiler)
        log(f"writes: POST /api/v1/servers, offered {args.write_rate:.0f}/s")
        writes = phase(primary.port, token, "writes", {"write": args.write_rate},
                       args.seconds, figures, primary.panel.pid, profiler)
        log("mix: reads and writes at once")
        phase(primary.port, token, "mix", {"read": args.read_rate * 0.8, "write": args.write_rate * 0.2},
              args.seconds, figures, primary.panel.pid, profiler)
        ceiling = health["health"]["achieved"] or float("nan")
        figures.figure("ratio.reads", "reads achieved / yardstick achieved",
                       rounded(reads["read"]["achieved"] / ceiling), "x")
        figures.figure("ratio.lightest", "GET /api/v1/me achieved / yardstick achieved",
                       rounded(lightest["me"]["achieved"] / ceiling), "x")
        figures.figure("ratio.writes", "writes achieved / yardstick achieved",
                       rounded(writes["write"]["achieved"] / ceiling), "x")
        figures.note(f"targets: reads >= 500/s with p99 < 100 ms (achieved {reads['read']['achieved']:.0f}/s, "
                     f"p99 {reads['read']['p99_ms']:.0f} ms); writes >= 100/s "
                     f"(achieved {writes['write']['achieved']:.0f}/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures.data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
