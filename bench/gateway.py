"""The gateway beside plain OpenSSH, to the same target, in one run.

Sets up what the gateway tests set up (as root): a system account whose
login shell is ezsh, a real sshd as the gateway (with the Match Group block)
and one as the target, the gateway service on a SQLite node made by
ezpyr-init. Then prints, gateway vs direct:

1. time from `ssh` start to the server list (the gateway) / to the shell
   prompt (direct), key-only sign-in (ezpyr.gateway.password_prompt = false);
2. time to run `true` on the target;
3. throughput of `cat` of a 200 MB text file on the target (recorded);
4. the delay of one keystroke's echo in an interactive bash (p50/p99), with
   a guard rule in force (so every byte goes through the guard's screen).

    .venv/bin/python bench/gateway.py [--runs 20] [--megabytes 200] [--keys 300]

It borrows the test harness (support/gateway.py) for accounts, sshd
and the service, and removes its account, files and processes at the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pexpect  # noqa: E402

from ezpyr.access.models import AccessRule  # noqa: E402
from ezpyr.gateway.services import GatewayKeyService  # noqa: E402
from ezpyr.guard.models import CommandRule  # noqa: E402
from ezpyr.passwords import Passwords  # noqa: E402
from ezpyr.scripts.node_env import NodeEnv  # noqa: E402
from ezpyr.secretbox import generate_key  # noqa: E402
from ezpyr.servers.models import Server  # noqa: E402
from ezpyr.users.groups import UserGroupService  # noqa: E402
from ezpyr.users.keys import UserKeyService  # noqa: E402
from ezpyr.users.services import UserService  # noqa: E402
from support import gateway as harness  # noqa: E402

# not the tests' ezgw_ prefix: a test run sweeps those
USER, TARGET, GROUP = "ezbench_gw", "ezbench_target", "ezbench_users"
PROMPT = r"~\$ "


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, root: Path, megabytes: int):
        self.root = root
        os.chmod(root, 0o755)
        ezsh = harness.install_ezsh(root)
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
    def throughput(self) -> tuple[float, float]:
        def rate(argv):
            start = time.perf_counter()
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  check=True)
            seconds = time.perf_counter() - start
            assert len(done.stdout) == self.megabytes << 20, len(done.stdout)
            return self.megabytes / seconds
        return rate(self.via_gateway("target", f"cat {self.big}")), rate(self.direct(f"cat {self.big}"))

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--keys", type=int, default=300)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/gateway.py makes system accounts and runs sshd: run it as root",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ezgw-bench-") as tmp:
        bench = Bench(Path(tmp), args.megabytes)
        try:
            listed, direct_prompt = bench.to_list(args.runs)
            true_gw, true_direct = bench.run_true(args.runs)
            rate_gw, rate_direct = bench.throughput()
            echo_gw, echo_direct = bench.echo_delays(args.keys)
        finally:
            bench.close()
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    rows = [
        ("1 ssh start -> server list (gateway) / prompt (direct), median",
         ms(listed), ms(direct_prompt), "list < 500 ms"),
        ("2 run `true` on the target, median", ms(true_gw), ms(true_direct), ""),
        (f"3 cat {args.megabytes} MB, throughput", f"{rate_gw:.0f} MB/s",
         f"{rate_direct:.0f} MB/s", f"gateway {rate_gw / rate_direct:.0%} of direct (>= 50%)"),
        ("4 keystroke echo p50", ms(percentile(echo_gw, 50)), ms(percentile(echo_direct, 50)),
         f"added {ms(percentile(echo_gw, 50) - percentile(echo_direct, 50))}"),
        ("4 keystroke echo p99", ms(percentile(echo_gw, 99)), ms(percentile(echo_direct, 99)),
         f"added {ms(percentile(echo_gw, 99) - percentile(echo_direct, 99))} (< 5 ms)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'gateway':>12}  {'direct':>12}  note")
    for name, gw, direct, note in rows:
        print(f"{name:<{width}}  {gw:>12}  {direct:>12}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
