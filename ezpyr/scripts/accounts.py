"""ezpyr-accounts CONFIG SUBCOMMAND: the users' system accounts on both
nodes (the cluster page's account buttons, for scripts; ``--json`` for
machine-readable output).

Exit status: 0 done (or nothing to do); 1 a node could not be reached or
refused something; 2 refused (bad arguments, not confirmed: nothing was
changed)."""
from __future__ import annotations

import argparse
import json
import sys

from ezpyr.accounts.client import NAMES, NodeUnreachable, presented_fingerprint
from ezpyr.accounts.runner import apply_waiting
from ezpyr.accounts.settings import AccountSettings
from ezpyr.faces import CLI, offer
from ezpyr.scripts.failures import one_line_errors, report
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.validation import Invalid

PROG = "ezpyr-accounts"


def status(env) -> dict:
    with env.session() as s:
        return env.services(s).account_actions.status()


def cmd_status(env, settings, args):
    state = status(env)
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    print(f"provisioning: {state['provisioning_user']} with {state['key_file']}")
    for target, node in state["nodes"].items():
        print(f"{NAMES[target]}: {node['ssh_address'] or 'not set'}; "
              f"host key {node['pinned'] or 'not pinned yet'}"
              + (f" (now presents {node['presented']}: refused until reset)" if node["presented"] else ""))
        print(f"  tasks: {node['waiting']} waiting, {node['failed']} failed"
              + (f"; {node['last_error']}" if node["last_error"] else "")
              + (f"; {node['problem']}" if node["problem"] else ""))
    return 0


def cmd_apply(env, settings, args):
    reports = [apply_waiting(env.engine, settings, target) for target in ("this", "other")]
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for r in reports:
            print(f"{NAMES[r['node']]}: {r['applied']} applied, {r['failed']} failed, "
                  f"{r['waiting']} waiting" + (f" ({r['error']})" if r["error"] else ""))
    return 1 if any(r["error"] or r["failed"] for r in reports) else 0


def cmd_reconcile(env, settings, args):
    with env.session() as s:
        reports = env.services(s).account_actions.reconcile_now([args.node] if args.node else None,
                                                                dry_run=args.dry_run)
    code = 1 if any(r.get("error") or r.get("errors") for r in reports) else 0
    if args.json:
        print(json.dumps(reports, indent=2))
        return code
    for r in reports:
        if "error" in r:
            print(f"{NAMES[r['node']]}: {r['error']}")
            continue
        verb = "would" if r["dry_run"] else "did"
        if not r["to_do"]:
            print(f"{NAMES[r['node']]} ({r['address']}): nothing to do")
        for what in ("create", "change", "remove"):
            if r[what]:
                print(f"{NAMES[r['node']]}: {verb} {what} {len(r[what])}: {', '.join(r[what])}")
        for error in r["errors"]:
            print(f"{NAMES[r['node']]}: failed: {error}")
    return code


def cmd_reset_fingerprint(env, settings, args):
    target = args.node
    pinned = status(env)["nodes"][target]["pinned"]
    address = settings.address(target)
    if not address:
        raise Invalid(settings.missing(target))
    presented = presented_fingerprint(address, settings.timeout)
    if pinned is None or pinned == presented:
        message = (f"{NAMES[target]} ({address}) presents {presented}, "
                   + ("which is the pinned key: nothing to reset" if pinned else "and nothing is pinned yet: "
                      "it is pinned on first use"))
        print(json.dumps({"node": target, "pinned": pinned, "presented": presented, "reset": False})
              if args.json else message)
        return 0
    if not args.yes:
        print(f"{NAMES[target]} ({address}):\n  pinned:   {pinned}\n  presents: {presented}\n"
              "Reset only if this node's host key was changed on purpose (e.g. a reinstall).")
        if not sys.stdin.isatty() or input("Type yes to pin the new key: ").strip() != "yes":
            report(PROG, "not confirmed: the pin is unchanged (--yes confirms without asking)", args.json)
            return 2
    with env.session() as s:
        result = env.services(s).account_actions.reset_fingerprint(target, presented, read_now=True)
    print(json.dumps({**result, "reset": True}) if args.json else
          f"{NAMES[target]}: pinned {presented} (was {pinned}); its waiting account tasks go on")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the node's ini file")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help_text: str, *, does=None) -> argparse.ArgumentParser:
        """``does``: the activity action the command offers (ezpyr.faces)."""
        offer(CLI, does)
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
        return p

    command("status", cmd_status, "pinned host keys and account tasks per node")
    command("apply", cmd_apply, "apply the waiting account tasks now (the worker does it by itself)")
    p = command("reconcile", cmd_reconcile, "make each node's managed accounts match the users table",
                does="accounts.reconcile")
    p.add_argument("--node", choices=("this", "other"), help="one node only (default: both)")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p = command("reset-fingerprint", cmd_reset_fingerprint, "pin the host key a node presents now",
                does="accounts.reset_fingerprint")
    p.add_argument("node", choices=("this", "other"))
    p.add_argument("--yes", action="store_true", help="confirm without asking")
    return parser


@one_line_errors(PROG)
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    env = NodeEnv(args.config)
    try:
        return args.func(env, AccountSettings.from_settings(env.settings), args)
    except (Invalid, NodeUnreachable) as error:
        report(PROG, getattr(error, "message", None) or str(error), args.json)
        return 2 if isinstance(error, Invalid) else 1
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
