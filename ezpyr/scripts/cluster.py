"""ezpyr-cluster CONFIG SUBCOMMAND: every button of the cluster page, for
scripts (``--json`` for machine-readable output)."""
from __future__ import annotations

import argparse
import json
import sys

from ezpyr.cluster.actions import ClusterActions
from ezpyr.cluster.resolve import SIDES, Plan
from ezpyr.jobs.models import JobState
from ezpyr.jobs.services import wait_for
from ezpyr.cluster.client import ClusterClient, PeerTls
from ezpyr.cluster.secret import rotate_secret
from ezpyr.cli import JobFailed, terminal_progress
from ezpyr.faces import CLI, offer
from ezpyr.scripts.failures import one_line_errors, report
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.validation import Invalid


def print_state(state: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(state, indent=2))
        return
    other = state["other_node"]
    print(f"node state:   {state['node']['state']}  ({state['node']['name']}, epoch {state['node']['epoch']})")
    if state.get("split_brain"):
        print(f"SPLIT-BRAIN:  {state['split_brain_detail']}")
    print(f"other node:   {'not configured' if other is None else other['address'] + ' (' + other['role'] + ')'}")
    print(f"status:       {state['status']}")
    for warning in state.get("warnings", []):
        print(f"warning:      {warning}")
    if other is not None:
        lag = state["lag_seconds"]
        print(f"backlog:      {state['backlog']} ({state['backlog_unsent']} unsent, "
              f"{state['backlog_queued']} sent, not yet applied)")
        print(f"peer lag:     {'unknown' if lag is None else f'{lag:.1f} s'}")
        age = state["heartbeat_age_seconds"]
        print(f"heartbeat:    {'never' if age is None else f'{age:.0f} s ago'}")
        worker = state["worker"]
        print(f"worker:       {'running; sending: ' + worker['relay'] if worker['running'] else worker['problem']}")
        if state["applier"]:
            print(f"replication:  {state['applier']}")
        if state["last_error"]:
            print(f"last error:   {state['last_error']}")
        refused = state["refused_messages"]
        if refused["total"]:
            print(f"refused:      {refused['total']} change message(s) kept out of this node's database; "
                  f"last {refused['last_at']}: {refused['last_reason']}")
        if state["secret_rotation"]:
            print(f"secret:       {state['secret_rotation']}")


def cmd_status(env, args):
    with env.session() as s:
        print_state(env.services(s).cluster.state().as_dict(), args.json)
    return 0


def cmd_link(change):
    """Disconnect or Connect: ``change(actions)`` does it."""
    def run(env, args):
        with env.session() as s:
            services = env.services(s)
            change(services.cluster_actions)
            state = services.cluster.state().as_dict()
        print_state(state, args.json) if args.json else print(f"status: {state['status']}")
        return 0
    return run


def actions(env, dbsession) -> ClusterActions:
    """The cluster page's actions, on behalf of the command line."""
    return env.services(dbsession).cluster_actions


def launch(env, start) -> str:
    """Start an action (``start(actions)`` returns its Launch) in this
    process, once its job row is committed; returns the job's id."""
    with env.session() as s:
        started = start(actions(env, s))
        started.start_after_commit(s)
        return started.job.id


def follow(env, job_id: str, as_json: bool) -> dict:
    """Wait on the job (the same row the panel's page polls), drawing its
    progress on the terminal; its result, or its error as the command's."""
    job = wait_for(env.engine, job_id, None if as_json else terminal_progress())
    if not as_json:
        sys.stderr.write("\n")
    if job.state == JobState.FAILED:
        if job.refused:
            raise Invalid(job.error)
        raise JobFailed(job.error)
    return json.loads(job.result or "{}")


def print_verify(result: dict, as_json: bool) -> bool:
    if as_json:
        print(json.dumps(result, indent=2))
        return result["in_sync"]
    for r in result["tables"]:
        verdict = "in sync" if r["in_sync"] else f"{len([d for d in r['differing'] if d['id']])} row(s) differ"
        print(f"{r['table']:16} {r['rows_here']:>9} here {r['rows_there']:>9} there   {verdict}")
        for d in r["differing"]:
            if d["id"] is None:
                print(f"    … and {d['more']} more")
            else:
                print(f"    {d['id']}: here {json.dumps(d['here'])}\n{'':42}there {json.dumps(d['there'])}")
    print("every table is in sync" if result["in_sync"] else "the nodes differ")
    return result["in_sync"]


def cmd_verify(env, args):
    result = follow(env, launch(env, lambda a: a.verify()), args.json)
    return 0 if print_verify(result, args.json) else 1


def cmd_add(env, args):
    result = follow(env, launch(env, lambda a: a.add(args.address, args.setup_key)), args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"added: {result['secondary']} is now this node's slave ({result['rows']} rows copied)")
    return 0


def cmd_make_master(env, args):
    result = follow(env, launch(env, lambda a: a.make_master(force=False)), args.json)
    if result.get("needs_confirmation"):
        warning = result["warning"]
        if not args.force:
            print(f"ezpyr-cluster: {warning}", file=sys.stderr)
            print("To take over anyway: ezpyr-cluster CONFIG make-master --force", file=sys.stderr)
            if args.json:
                print(json.dumps({"needs_confirmation": True, "warning": warning}))
            return 3
        if not args.yes:
            print(warning, file=sys.stderr)
            if not sys.stdin.isatty() or input("Type 'take over' to go on: ").strip() != "take over":
                print("ezpyr-cluster: not confirmed; nothing changed (--yes confirms)", file=sys.stderr)
                return 3
        result = follow(env, launch(env, lambda a: a.make_master(force=True)), args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"this node is master now (epoch {result['epoch']}, {result['mode']})")
    return 0


def resolve_plan(args) -> Plan:
    plan = Plan(all=args.keep)
    for item in args.table or []:
        table, _, side = item.partition("=")
        if side not in SIDES:
            raise Invalid(f"--table takes NAME=here or NAME=there, not {item!r}")
        plan.tables[table] = side
    for item in args.row or []:
        target, _, side = item.partition("=")
        table, _, row_id = target.partition(":")
        if side not in SIDES or not table or not row_id:
            raise Invalid(f"--row takes TABLE:ID=here or TABLE:ID=there, not {item!r}")
        plan.rows.setdefault(table, {})[row_id] = side
    return plan


def cmd_resolve(env, args):
    plan = resolve_plan(args)
    verified = launch(env, lambda a: a.verify())
    follow(env, verified, args.json)
    with env.session() as s:
        chosen_by = actions(env, s)
        report = chosen_by.verify_report(verified)
        chosen = chosen_by.resolve_plan(report, plan)
    if not args.json:
        print(f"{chosen.decided} differing row(s) decided; {len(chosen.lost)} version(s) will be lost:")
        for item in chosen.lost:
            print(f"  {item['table']} {item['id']}: keeping {item['kept']}'s, losing {json.dumps(item['lost'])}")
    if not args.yes:
        print("ezpyr-cluster: nothing changed; run again with --yes to resolve", file=sys.stderr)
        if args.json:
            print(json.dumps({"decided": chosen.decided, "lost": chosen.lost, "applied": False}))
        return 3
    result = follow(env, launch(env, lambda a: a.resolve(report, plan)), args.json)
    if args.json:
        print(json.dumps({**result, "applied": True}))
    else:
        print(f"resolved; backups: here {result['backups']['here']}, other node {result['backups']['there']}")
    return 0


def cmd_rotate_secret(env, args):
    """Roll a new cluster secret on both nodes, replication running."""
    with env.session() as s:
        cluster = env.services(s).cluster
        node_id = cluster.node().id
        address = cluster.peer().address if cluster.peer() else ""
    result = rotate_secret(env.engine, env.secret_box,
                           lambda secret: ClusterClient(address, node_id, secret,
                                                        tls=PeerTls.from_settings(env.settings)))
    if args.json:
        print(json.dumps(result))
    else:
        print("rotated: both nodes sign with the new cluster secret; the old one is accepted until "
              "each node has applied the other's first change signed with the new one")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ezpyr-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, *, does=None) -> argparse.ArgumentParser:
        """``does``: the activity action the command offers (ezpyr.faces)."""
        offer(CLI, does)
        return sub.add_parser(name, parents=[common], help=help_text)

    command("status", "this node, the other node, status, backlog, lag")
    command("disconnect", "stop probing the other node; changes stay queued", does="cluster.disconnect")
    command("connect", "resume probing; the backlog drains", does="cluster.connect")
    add = command("add", "set up the cluster with a secondary installed with --secondary", does="cluster.add")
    add.add_argument("address", help="host:port of the secondary's panel")
    add.add_argument("--setup-key", required=True, help="the key the secondary printed")
    make = command("make-master", "on the slave: take over as master (graceful when the master answers)",
                   does="cluster.make_master")
    make.add_argument("--force", action="store_true",
                      help="take over even though the master does not answer (after a warning)")
    make.add_argument("--yes", action="store_true", help="confirm the forced takeover's warning")
    res = command("resolve", "on the master, during a split-brain: keep one side's rows, back up both, resync",
                  does="cluster.resolve")
    res.add_argument("--keep", choices=["here", "there"], help="the side to keep for every differing row")
    res.add_argument("--table", action="append", metavar="NAME=here|there",
                     help="the side to keep for one table (wins over --keep)")
    res.add_argument("--row", action="append", metavar="TABLE:ID=here|there",
                     help="the side to keep for one row (wins over --table and --keep)")
    res.add_argument("--yes", action="store_true", help="apply (without it: show what would be lost)")
    command("verify", "compare every replicated table with the other node's (exit 1 if they differ)",
            does="cluster.verify")
    command("rotate-secret", "roll a new cluster secret on both nodes without stopping replication")
    return parser


@one_line_errors("ezpyr-cluster")
def main(argv=None):
    args = build_parser().parse_args(argv)
    commands = {"status": cmd_status, "disconnect": cmd_link(lambda a: a.disconnect()),
                "connect": cmd_link(lambda a: a.connect()), "verify": cmd_verify, "add": cmd_add,
                "make-master": cmd_make_master, "resolve": cmd_resolve,
                "rotate-secret": cmd_rotate_secret}
    env = NodeEnv(args.config)
    try:
        return commands[args.command](env, args)
    except Invalid as error:
        report("ezpyr-cluster", error.message, args.json)
        return 2
    except JobFailed as error:
        report("ezpyr-cluster", str(error), args.json)
        return 1
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
