"""The gateway beside plain OpenSSH, to the same target, in one run.

Sets up what the gateway tests set up (as root): a system account whose
login shell is ezsh, a real sshd as the gateway (with the Match Group block)
and one as the target, the gateway service on a SQLite node made by
ezpyr-init. Then prints, gateway vs direct:

1. time from `ssh` start to the server list (the gateway) / to the shell
   prompt (direct), key-only sign-in (ezpyr.gateway.password_prompt = false);
2. time to run `true` on the target;
3. throughput of `cat` of a 200 MB text file on the target (recorded),
   the median of --cat-runs cats each way, taken in turn;
   3t the same with a terminal (through the guard's screen);
4. the delay of one keystroke's echo in an interactive bash (p50/p99), with
   a guard rule in force (so every byte goes through the guard's screen).

    .venv/bin/python bench/gateway.py [--runs 20] [--megabytes 200] [--keys 300]
    .venv/bin/python bench/gateway.py --only 3 --profile /tmp/prof   # py-spy on the service and ezsh

During 3 it also prints the CPU seconds each process of the two paths used
(read from /proc while they run): where a 2-core machine's time goes.

It borrows the test harness (support/gateway.py) for accounts, sshd
and the service, and removes its account, files and processes at the end.
"""
from __future__ import annotations

import argparse
import os
import pwd
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pexpect  # noqa: E402

from ezpyr.access.models import AccessRule  # noqa: E402
from ezpyr.gateway.services import GatewayKeyService  # noqa: E402
from ezpyr.gateway.shell import SOCKET_ENV  # noqa: E402
from ezpyr.guard.models import CommandRule  # noqa: E402
from ezpyr.passwords import Passwords  # noqa: E402
from ezpyr.scripts.node_env import NodeEnv  # noqa: E402
from ezpyr.secretbox import generate_key  # noqa: E402
from ezpyr.servers.models import Server  # noqa: E402
from ezpyr.users.groups import UserGroupService  # noqa: E402
from ezpyr.users.keys import UserKeyService  # noqa: E402
from ezpyr.users.services import UserService  # noqa: E402
from support import gateway as harness  # noqa: E402
from profiling import Profiler  # noqa: E402

# not the tests' ezgw_ prefix: a test run sweeps those
USER, TARGET, GROUP = "ezbench_gw", "ezbench_target", "ezbench_users"
PROMPT = r"~\$ "


class CpuWatch:
    """CPU seconds (user + system) of the processes of some accounts, the
    gateway service and this bench's own children, read from /proc every
    50 ms while they run (the last reading of a process that ended counts)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, uids: dict[int, str], pids: dict[int, str]):
        self.uids, self.pids = uids, pids
        self.seen: dict[int, tuple[str, float]] = {}
        self.base: dict[int, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def read(self, first: bool) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                uid = entry.stat().st_uid
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, cpu = int(fields[1]), (int(fields[11]) + int(fields[12])) / self.TICK
            if pid in self.pids:
                label = self.pids[pid]
            elif uid in self.uids:
                label = f"{self.uids[uid]} {comm}"
            elif ppid == os.getpid() and comm == "ssh":
                label = "ssh client"
            else:
                continue
            if first:
                self.base[pid] = cpu
            self.seen[pid] = (label, cpu - self.base.get(pid, 0.0))

    def watch(self) -> None:
        while not self.stopping.wait(0.05):
            self.read(False)

    def __enter__(self):
        self.read(True)
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stopping.set()
        self.thread.join()
        self.read(False)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for label, cpu in self.seen.values():
            out[label] = out.get(label, 0.0) + cpu
        return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, root: Path, megabytes: int):
        self.root = root
        os.chmod(root, 0o755)
        ezsh = self.ezsh = harness.install_ezsh(root)
        self.remove_accounts()
        harness.make_gateway_group(GROUP)
        harness.make_account(USER, shell=ezsh, gateway=True, group=GROUP)
        harness.make_account(TARGET, shell="/bin/bash", gateway=False)
        self.socket = root / "gateway.sock"
        self.ini = harness.write_ini(root / "bench.ini", f"sqlite:///{root}/ezpyr.sqlite",
                                     generate_key(), self.socket, root / "sessions",
                                     ezpyr__gateway__password_prompt="false")
        subprocess.run([str(harness.VENV_BIN / "ezpyr-init"), str(self.ini), "--quiet",
                        "--admin-password", "Bench-admin-pass-123"], check=True,
                       capture_output=True)
        self.gateway = harness.Sshd(root, "gateway", harness.gateway_block(self.socket, ezsh, GROUP))
        self.target = harness.Sshd(root, "target")
        self.user_key = root / "user_key"
        self.gateway.authorize(USER, harness.keygen(self.user_key))
        # the direct path: the same user key straight to the target account
        self.target.authorize(TARGET, Path(f"{self.user_key}.pub").read_text())
        env = NodeEnv(str(self.ini), logging=False)
        with env.session(actor="bench") as db:
            group = UserGroupService(db).create("bench")
            user = UserService(db, Passwords.from_settings(
                {"ezpyr.argon2.time_cost": "1", "ezpyr.argon2.memory_cost": "1024",
                 "ezpyr.argon2.parallelism": "1"})).create(USER, "Bench-pass-123",
                                                           group_id=group.id)
            UserKeyService(db).add(user, Path(f"{self.user_key}.pub").read_text(), "bench")
            server = Server(name="target", host="127.0.0.1", port=self.target.port,
                            remote_user=TARGET)
            db.add(server)
            db.flush()
            db.add(AccessRule(user_group=group, server=server))
            db.add(CommandRule(user_group=group, pattern=r"^rm\s+-rf\s+/$"))
            key = GatewayKeyService(db, env.secret_box).current()
            self.target.authorize(TARGET, Path(f"{self.user_key}.pub").read_text().strip()
                                  + "\n" + key.public_key)
        env.close()
        self.big = Path(f"/tmp/ezgw-bench-{os.getpid()}.bin")
        # text, as terminals carry (base64 of random bytes), exactly megabytes long
        with open(self.big, "wb") as out:
            subprocess.run(f"head -c {megabytes * 3 // 4 + 1}M /dev/urandom | base64 -w 76 "
                           f"| head -c {megabytes}M", shell=True, stdout=out, check=True)
        os.chmod(self.big, 0o644)
        self.megabytes = megabytes
        self.service = harness.GatewayProcess(self.ini, self.socket)
        self.service.start()
        self.gateway.start()
        self.target.start()

    def close(self):
        for thing in (self.target, self.gateway, self.service):
            thing.stop()
        self.big.unlink(missing_ok=True)
        self.remove_accounts()

    @staticmethod
    def remove_accounts():
        for name in (USER, TARGET):
            subprocess.run(["userdel", "-r", "-f", name], stderr=subprocess.DEVNULL)
        subprocess.run(["groupdel", GROUP], stderr=subprocess.DEVNULL)

    def via_gateway(self, *args, tty=False):
        return harness.ssh_argv(self.gateway.port, USER, self.user_key, *args, tty=tty)

    def direct(self, *args, tty=False):
        return harness.ssh_argv(self.target.port, TARGET, self.user_key, *args, tty=tty)

    # -- 1 -----------------------------------------------------------------------------
    def to_list(self, runs: int) -> tuple[float, float]:
        gateway, direct = [], []
        for _ in range(runs):
            start = time.perf_counter()
            child = harness.spawn(self.via_gateway(tty=True))
            child.expect(r"Server \(number")
            gateway.append(time.perf_counter() - start)
            child.sendline("q")
            child.expect(pexpect.EOF)
            start = time.perf_counter()
            child = harness.spawn(self.direct(tty=True))
            child.expect(PROMPT)
            direct.append(time.perf_counter() - start)
            child.sendline("exit")
            child.expect(pexpect.EOF)
        return statistics.median(gateway), statistics.median(direct)

    def list_parts(self, runs: int) -> tuple[float, float]:
        """Where the gateway's part of 1 goes: ezsh started as the account
        without ssh, to the list (ezsh's start and the service's sign-in,
        access query and menu); and the start of Python with ezsh's imports."""
        account = pwd.getpwnam(USER)
        setpriv = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                   "--init-groups", "--reset-env"]
        listed, started = [], []
        for _ in range(runs):
            start = time.perf_counter()
            child = pexpect.spawn(setpriv[0], [*setpriv[1:], "env", f"{SOCKET_ENV}={self.socket}",
                                               "TERM=xterm", str(self.ezsh)],
                                  dimensions=(30, 100), timeout=60)
            child.expect(r"Server \(number")
            listed.append(time.perf_counter() - start)
            child.sendline("q")
            child.expect(pexpect.EOF)
            start = time.perf_counter()
            subprocess.run([*setpriv, "/usr/bin/python3", "-I", "-c",
                            f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                            "import ezpyr.gateway.shell"], check=True)
            started.append(time.perf_counter() - start)
        return statistics.median(listed), statistics.median(started)

    # -- 2 -----------------------------------------------------------------------------
    def run_true(self, runs: int) -> tuple[float, float]:
        def timed(argv):
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
            return time.perf_counter() - start
        gateway = [timed(self.via_gateway("target", "true")) for _ in range(runs)]
        direct = [timed(self.direct("true")) for _ in range(runs)]
        return statistics.median(gateway), statistics.median(direct)

    # -- 3 -----------------------------------------------------------------------------
    def cat(self, argv, on_start=lambda: None, tty: bool = False) -> float:
        """Seconds until ``argv`` (a cat of the big file) has delivered it all,
        read as fast as the path delivers (no growing buffer)."""
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        on_start()
        size = 0
        while True:
            data = child.stdout.read1(1 << 20)
            if not data:
                break
            size += len(data)
        child.wait()
        seconds = time.perf_counter() - start
        # with a terminal, each LF arrives as CR LF
        assert child.returncode == 0 and (size > self.megabytes << 20 if tty
                                          else size == self.megabytes << 20), size
        return seconds

    def throughput(self, profiler: Profiler, runs: int) -> tuple[float, float, dict, dict]:
        """Medians of ``runs`` cats each way, taken in turn; the CPU seconds
        are those of the run closest to the median (the first run is profiled)."""
        def rate(argv, profiled):
            uids = {pwd_uid(USER): "gateway account:", pwd_uid(TARGET): "target account:"}
            with CpuWatch(uids, {self.service.process.pid: "ezpyr-gateway service"}) as cpu:
                seconds = self.cat(argv, (lambda: self.profile(profiler)) if profiled
                                   else (lambda: None))
            profiler.stop()
            return self.megabytes / seconds, cpu.totals()
        gateway, direct = [], []
        for run in range(runs):
            gateway.append(rate(self.via_gateway("target", f"cat {self.big}"), run == 0))
            direct.append(rate(self.direct(f"cat {self.big}"), False))
        print("3 cat, MB/s of each run: gateway " + " ".join(f"{r:.0f}" for r, _ in gateway)
              + ", direct " + " ".join(f"{r:.0f}" for r, _ in direct))
        (gateway_rate, gateway_cpu), (direct_rate, direct_cpu) = map(median_run, (gateway, direct))
        return gateway_rate, direct_rate, gateway_cpu, direct_cpu

    def throughput_tty(self) -> tuple[float, float]:
        """3t: the same cat with a terminal (ssh -tt): through the gateway
        every byte also reaches the guard's screen (a guard rule is in force)."""
        return (self.megabytes / self.cat(self.via_gateway("target", f"cat {self.big}", tty=True),
                                          tty=True),
                self.megabytes / self.cat(self.direct(f"cat {self.big}", tty=True), tty=True))

    def profile(self, profiler: Profiler) -> None:
        """py-spy on the service and, once it runs, the user's ezsh."""
        if not profiler.outdir:
            return
        profiler.start("3-gateway-service", self.service.process.pid)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = subprocess.run(["pgrep", "-u", USER, "-f", "ezsh"], capture_output=True,
                                   text=True).stdout.split()
            if found:
                profiler.start("3-ezsh", int(found[0]))
                return
            time.sleep(0.02)

    # -- 4 -----------------------------------------------------------------------------
    def echo_delays(self, keys: int) -> tuple[list[float], list[float]]:
        def delays(argv, through_menu):
            child = harness.spawn(argv)
            child.delaybeforesend = None
            if through_menu:
                child.expect(r"Server \(number")
                child.sendline("1")
            child.expect(PROMPT)
            found = []
            for i in range(keys):
                char = "abcdefghij"[i % 10]
                start = time.perf_counter()
                child.send(char)
                child.expect_exact(char)
                found.append(time.perf_counter() - start)
                if i % 40 == 39:
                    child.send("\x15")  # ^U: keep the line short
                    time.sleep(0.05)
            child.send("\x15")
            child.sendline("exit")
            child.expect(pexpect.EOF)
            return found
        return delays(self.via_gateway(tty=True), True), delays(self.direct(tty=True), False)


def median_run(runs: list[tuple[float, dict]]) -> tuple[float, dict]:
    """The run (rate, CPU seconds) whose rate is the median's (the lower middle one)."""
    return sorted(runs, key=lambda run: run[0])[(len(runs) - 1) // 2]


def pwd_uid(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--cat-runs", type=int, default=3,
                        help="cats of 3 each way, taken in turn (the median is shown)")
    parser.add_argument("--only", default="1,2,3,3t,4",
                        help="which measures (default 1,2,3,3t,4)")
    parser.add_argument("--profile", metavar="DIR",
                        help="during 3, sample the gateway service and ezsh with py-spy: raw "
                             "stacks and a summary per process in DIR")
    args = parser.parse_args()
    only = set(args.only.split(","))
    profiler = Profiler(args.profile)
    if os.geteuid() != 0:
        print("bench/gateway.py makes system accounts and runs sshd: run it as root",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ezgw-bench-") as tmp:
        bench = Bench(Path(tmp), args.megabytes)
        rows = []
        ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
        try:
            if "1" in only:
                listed, direct_prompt = bench.to_list(args.runs)
                rows.append(("1 ssh start -> server list (gateway) / prompt (direct), median",
                             ms(listed), ms(direct_prompt), "list < 500 ms"))
                ezsh_listed, ezsh_started = bench.list_parts(args.runs)
                rows.append(("1a  of which: ezsh without ssh -> server list, median",
                             ms(ezsh_listed), "", "ezsh start + service: sign-in, query, menu"))
                rows.append(("1b  of which: python3 -I start + ezsh imports, median",
                             ms(ezsh_started), "", ""))
            if "2" in only:
                true_gw, true_direct = bench.run_true(args.runs)
                rows.append(("2 run `true` on the target, median", ms(true_gw), ms(true_direct),
                             ""))
            if "3" in only:
                rate_gw, rate_direct, cpu_gw, cpu_direct = bench.throughput(profiler, args.cat_runs)
                rows.append((f"3 cat {args.megabytes} MB, throughput, median of {args.cat_runs}", f"{rate_gw:.0f} MB/s",
                             f"{rate_direct:.0f} MB/s",
                             f"gateway {rate_gw / rate_direct:.0%} of direct (>= 50%)"))
            if "3t" in only:
                rate_gw, rate_direct = bench.throughput_tty()
                rows.append((f"3t cat {args.megabytes} MB with a terminal (guard's screen fed)",
                             f"{rate_gw:.0f} MB/s", f"{rate_direct:.0f} MB/s",
                             f"gateway {rate_gw / rate_direct:.0%} of direct"))
            if "4" in only:
                echo_gw, echo_direct = bench.echo_delays(args.keys)
                p50 = percentile(echo_gw, 50), percentile(echo_direct, 50)
                p99 = percentile(echo_gw, 99), percentile(echo_direct, 99)
                rows.append(("4 keystroke echo p50", ms(p50[0]), ms(p50[1]),
                             f"added {ms(p50[0] - p50[1])}"))
                rows.append(("4 keystroke echo p99", ms(p99[0]), ms(p99[1]),
                             f"added {ms(p99[0] - p99[1])} (< 5 ms)"))
        finally:
            profiler.stop()
            bench.close()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'gateway':>12}  {'direct':>12}  note")
    for name, gw, direct, note in rows:
        print(f"{name:<{width}}  {gw:>12}  {direct:>12}  {note}")
    if "3" in only:
        print(f"3 CPU seconds per process during the cat (gateway {sum(cpu_gw.values()):.1f} s, "
              f"direct {sum(cpu_direct.values()):.1f} s):")
        for label, cpu in cpu_gw.items():
            print(f"    gateway  {cpu:6.2f} s  {label}")
        for label, cpu in cpu_direct.items():
            print(f"    direct   {cpu:6.2f} s  {label}")
    print(f"load average at the end: {open('/proc/loadavg').read().split(' ', 3)[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
