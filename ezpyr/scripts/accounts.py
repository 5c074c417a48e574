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
from ezpyr.accounts.runner import apply_waiting, reconcile, reset_fingerprint
from ezpyr.accounts.settings import AccountSettings
from ezpyr.accounts.tasks import targets
from ezpyr.scripts.failures import one_line_errors, report
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.validation import Invalid

PROG = "ezpyr-accounts"


def status(env, settings: AccountSettings) -> dict:
    with env.session() as s:
        service = env.services(s).account_tasks
        counts = service.counts()
        nodes = {}
        for target in ("this", "other"):
            pin = service.pin(target)
            nodes[target] = {
                "ssh_address": settings.address(target), "problem": settings.missing(target),
                "pinned": pin.fingerprint if pin else None,
                "presented": (pin.presented or None) if pin else None,
                "waiting": counts[target]["waiting"], "failed": counts[target]["failed"],
                "last_error": service.last_error(target)}
    return {"provisioning_user": settings.user, "key_file": settings.key_file, "nodes": nodes}


def cmd_status(env, settings, args):
    state = status(env, settings)
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
    if args.node:
        nodes = [args.node]
    else:
        with env.engine.connect() as conn:
            nodes = targets(conn)
    reports, code = [], 0
    for target in nodes:
        try:
            reports.append(reconcile(env.engine, settings, target, dry_run=args.dry_run))
        except NodeUnreachable as error:
            reports.append({"node": target, "error": str(error)})
            code = 1
        else:
            code = code or (1 if reports[-1]["errors"] else 0)
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
    with env.session() as s:
        pin = env.services(s).account_tasks.pin(target)
        pinned = pin.fingerprint if pin else None
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
    result = reset_fingerprint(env.engine, settings, target, presented)
    print(json.dumps({**result, "reset": True}) if args.json else
          f"{NAMES[target]}: pinned {presented} (was {pinned}); its waiting account tasks go on")
    return 0


@one_line_errors(PROG)
def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the node's ini file")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("status", help="pinned host keys and account tasks per node")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("apply", help="apply the waiting account tasks now (the worker does it by itself)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_apply)
    p = sub.add_parser("reconcile", help="make each node's managed accounts match the users table")
    p.add_argument("--node", choices=("this", "other"), help="one node only (default: both)")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reconcile)
    p = sub.add_parser("reset-fingerprint", help="pin the host key a node presents now")
    p.add_argument("node", choices=("this", "other"))
    p.add_argument("--yes", action="store_true", help="confirm without asking")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reset_fingerprint)
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
