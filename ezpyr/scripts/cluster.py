"""ezpyr-cluster CONFIG SUBCOMMAND: every button of the cluster page, for
scripts (``--json`` for machine-readable output)."""
from __future__ import annotations

import argparse
import json
import secrets
import sys

from sqlalchemy import delete, select

from ezpyr.cluster.add import add_secondary
from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable, RemotePeer
from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.resolve import Plan, decide, losses, resolve, unique_clashes
from ezpyr.cluster.roles import TakeoverNeedsConfirmation, make_master
from ezpyr.cluster.secret import rotate_secret
from ezpyr.cluster.services import ClusterService
from ezpyr.cluster.snapshot import copy_snapshot
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import REPLAYING, sequence_committed
from ezpyr.replication.vector import VersionVector
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.verify import PeerAnswerInvalid, chunk_rows_setting, timeout_setting, verify
from ezpyr.scripts.failures import one_line_errors, report
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.secretbox import SecretUnreadable
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
        print_state(ClusterService(s).state().as_dict(), args.json)
    return 0


def cmd_link(link):
    def run(env, args):
        with env.session() as s:
            service = ClusterService(s)
            service.set_link(link)
            state = service.state().as_dict()
        print_state(state, args.json) if args.json else print(f"status: {state['status']}")
        return 0
    return run


def peer_client(env, dbsession):
    service = ClusterService(dbsession)
    peer = service.peer()
    if peer is None:
        raise Invalid("No other node is configured.")
    return ClusterClient(peer.address, service.node().id,
                         env.secret_box.decrypt(peer.secret_encrypted),
                         tls=PeerTls.from_settings(env.settings))


def print_verify(reports, as_json: bool) -> bool:
    clean = all(r.in_sync for r in reports)
    if as_json:
        print(json.dumps({"in_sync": clean, "tables": [r.as_dict() for r in reports]}, indent=2))
        return clean
    for r in reports:
        verdict = "in sync" if r.in_sync else f"{len([d for d in r.differing if d['id']])} row(s) differ"
        print(f"{r.table:16} {r.rows_here:>9} here {r.rows_there:>9} there   {verdict}")
        for d in r.differing:
            if d["id"] is None:
                print(f"    … and {d['more']} more")
            else:
                print(f"    {d['id']}: here {json.dumps(d['here'])}\n{'':42}there {json.dumps(d['there'])}")
    print("every table is in sync" if clean else "the nodes differ")
    return clean


def compare_with_peer(env, client, *, progress=None, with_provenance=False):
    """Verify against the other node through its cluster API, a page of
    rows at a time (ezpyr.verify.chunk_rows, ezpyr.verify.timeout)."""
    with env.engine.connect() as conn:
        return verify(conn, RemotePeer(client, timeout_setting(env.settings)), progress=progress,
                      with_provenance=with_provenance, chunk_rows=chunk_rows_setting(env.settings))


def cmd_verify(env, args):
    with env.session() as s:
        client = peer_client(env, s)
    show = terminal_progress() if not args.json else None
    try:
        reports = compare_with_peer(env, client, progress=show)
    except (PeerUnreachable, PeerRefused, PeerAnswerInvalid) as error:
        raise Invalid(f"cannot verify: {error}") from None
    finally:
        if show:
            sys.stderr.write("\n")
    return 0 if print_verify(reports, args.json) else 1


def terminal_progress(stream=sys.stderr):
    """The job's progress as a bar on the terminal."""
    def show(done, total, message=None):
        width = 30
        filled = int(width * done / total) if total else 0
        percent = int(100 * done / total) if total else 0
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}%  {message or ''}   ")
        stream.flush()
    return show


def cmd_add(env, args):
    show = terminal_progress() if not args.json else (lambda *a, **k: None)
    result = add_secondary(env.engine, env.secret_box, env.settings, args.address, args.setup_key, show)
    if not args.json:
        sys.stderr.write("\n")
        print(f"added: {result['secondary']} is now this node's slave ({result['rows']} rows copied)")
    else:
        print(json.dumps(result))
    return 0


def cmd_make_master(env, args):
    show = terminal_progress() if not args.json else (lambda *a, **k: None)
    try:
        result = make_master(env.engine, env.secret_box, force=False, progress=show,
                             tls=PeerTls.from_settings(env.settings))
    except TakeoverNeedsConfirmation as warning:
        if not args.force:
            sys.stderr.write("\n")
            print(f"ezpyr-cluster: {warning.message}", file=sys.stderr)
            print("To take over anyway: ezpyr-cluster CONFIG make-master --force", file=sys.stderr)
            if args.json:
                print(json.dumps({"needs_confirmation": True, "warning": warning.message}))
            return 3
        if not args.yes:
            print(f"\n{warning.message}", file=sys.stderr)
            if not sys.stdin.isatty() or input("Type 'take over' to go on: ").strip() != "take over":
                print("ezpyr-cluster: not confirmed; nothing changed (--yes confirms)", file=sys.stderr)
                return 3
        result = make_master(env.engine, env.secret_box, force=True, progress=show,
                             tls=PeerTls.from_settings(env.settings))
    if args.json:
        print(json.dumps(result))
    else:
        sys.stderr.write("\n")
        print(f"this node is master now (epoch {result['epoch']}, {result['mode']})")
    return 0


def cmd_resolve(env, args):
    plan = Plan(all=args.keep)
    for item in args.table or []:
        table, _, side = item.partition("=")
        if side not in ("here", "there"):
            raise Invalid(f"--table takes NAME=here or NAME=there, not {item!r}")
        plan.tables[table] = side
    for item in args.row or []:
        target, _, side = item.partition("=")
        table, _, row_id = target.partition(":")
        if side not in ("here", "there") or not table or not row_id:
            raise Invalid(f"--row takes TABLE:ID=here or TABLE:ID=there, not {item!r}")
        plan.rows.setdefault(table, {})[row_id] = side
    with env.session() as s:
        client = peer_client(env, s)
    try:
        reports = compare_with_peer(env, client, with_provenance=True)
    except (PeerUnreachable, PeerRefused, PeerAnswerInvalid) as error:
        raise Invalid(f"cannot compare with the other node: {error}") from None
    report = {"in_sync": all(r.in_sync for r in reports), "tables": [r.as_dict() for r in reports]}
    decisions = decide(report, plan)
    with env.engine.connect() as conn:
        clashes = unique_clashes(conn, decisions)
    if clashes:
        raise Invalid("These choices would leave two rows with one name: " + "; ".join(clashes))
    lost = losses(decisions)
    if not args.json:
        print(f"{len(decisions)} differing row(s) decided; {len(lost)} version(s) will be lost:")
        for item in lost:
            print(f"  {item['table']} {item['id']}: keeping {item['kept']}'s, losing {json.dumps(item['lost'])}")
    if not args.yes:
        print("ezpyr-cluster: nothing changed; run again with --yes to resolve", file=sys.stderr)
        if args.json:
            print(json.dumps({"decided": len(decisions), "lost": lost, "applied": False}))
        return 3
    show = terminal_progress() if not args.json else (lambda *a, **k: None)
    result = resolve(env.engine, env.secret_box, env.settings, report, plan, "cli", show)
    if args.json:
        print(json.dumps({**result, "applied": True}))
    else:
        sys.stderr.write("\n")
        print(f"resolved; backups: here {result['backups']['here']}, other node {result['backups']['there']}")
    return 0


def cmd_pair_local(env, args):
    """Demo pairing of two nodes whose configs are both on this machine:
    this node becomes master, the other slave with a copy of this node's
    data. (The Add button over the cluster API replaces it.)"""
    other = NodeEnv(args.other_config, logging=False)
    try:
        box = env.secret_box
        other_box = other.secret_box
        probe = box.encrypt("probe")
        try:
            other_box.decrypt(probe)
        except SecretUnreadable:
            raise Invalid("the two nodes have different secret keys; both must use the same "
                          "ezpyr.secret_key_file (or EZPYR_SECRET_KEY)") from None
        secret = secrets.token_urlsafe(32)
        sequence_committed(env.engine)
        with env.session() as s, other.session() as t:
            me = s.scalars(select(NodeIdentity)).one()
            them = t.scalars(select(NodeIdentity)).one()
            if me.id == them.id:
                raise Invalid("both configs name the same node")
            t.info[REPLAYING] = True
            vector = copy_snapshot(s.connection(), t.connection())
            t.execute(delete(OutboxEntry))  # the other node's own history is replaced
            for session, node, peer_node, peer_settings in (
                (s, me, them, other.settings), (t, them, me, env.settings)):
                session.execute(delete(ClusterPeer))
                session.add(ClusterPeer(
                    id=peer_node.id, name=peer_node.name,
                    address=peer_settings.get("ezpyr.node_address", ""),
                    broker_url_encrypted=box.encrypt(peer_settings["ezpyr.broker_url"]),
                    secret_encrypted=box.encrypt(secret),
                    role="slave" if node is me else "master", epoch=1, link="connected",
                    # both hold the snapshot: each knows the other has it
                    peer_vector=VersionVector(vector).dumps()))
                ClusterService(session).grant("127.0.0.1")
            me.role, them.role = "master", "slave"
            them.epoch = me.epoch
        print(f"paired: {env.settings.get('ezpyr.node_address')} is master, "
              f"{other.settings.get('ezpyr.node_address')} is slave")
    finally:
        other.close()
    return 0


def cmd_rotate_secret(env, args):
    """Roll a new cluster secret on both nodes, replication running."""
    with env.session() as s:
        node_id = ClusterService(s).node().id
        address = ClusterService(s).peer().address if ClusterService(s).peer() else ""
    result = rotate_secret(env.engine, env.secret_box,
                           lambda secret: ClusterClient(address, node_id, secret,
                                                        tls=PeerTls.from_settings(env.settings)))
    if args.json:
        print(json.dumps(result))
    else:
        print("rotated: both nodes sign with the new cluster secret; the old one is accepted until "
              "each node has applied the other's first change signed with the new one")
    return 0


@one_line_errors("ezpyr-cluster")
def main(argv=None):
    parser = argparse.ArgumentParser(prog="ezpyr-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", parents=[common], help="this node, the other node, status, backlog, lag")
    sub.add_parser("disconnect", parents=[common], help="stop probing the other node; changes stay queued")
    sub.add_parser("connect", parents=[common], help="resume probing; the backlog drains")
    add = sub.add_parser("add", parents=[common],
                         help="set up the cluster with a secondary installed with --secondary")
    add.add_argument("address", help="host:port of the secondary's panel")
    add.add_argument("--setup-key", required=True, help="the key the secondary printed")
    make = sub.add_parser("make-master", parents=[common],
                          help="on the slave: take over as master (graceful when the master answers)")
    make.add_argument("--force", action="store_true",
                      help="take over even though the master does not answer (after a warning)")
    make.add_argument("--yes", action="store_true", help="confirm the forced takeover's warning")
    res = sub.add_parser("resolve", parents=[common],
                         help="on the master, during a split-brain: keep one side's rows, back up both, resync")
    res.add_argument("--keep", choices=["here", "there"], help="the side to keep for every differing row")
    res.add_argument("--table", action="append", metavar="NAME=here|there",
                     help="the side to keep for one table (wins over --keep)")
    res.add_argument("--row", action="append", metavar="TABLE:ID=here|there",
                     help="the side to keep for one row (wins over --table and --keep)")
    res.add_argument("--yes", action="store_true", help="apply (without it: show what would be lost)")
    sub.add_parser("verify", parents=[common],
                   help="compare every replicated table with the other node's (exit 1 if they differ)")
    sub.add_parser("rotate-secret", parents=[common],
                   help="roll a new cluster secret on both nodes without stopping replication")
    pair = sub.add_parser("pair-local", parents=[common],
                          help="demo: pair with another node on this machine")
    pair.add_argument("other_config")
    args = parser.parse_args(argv)
    commands = {"status": cmd_status, "disconnect": cmd_link("disconnected"),
                "connect": cmd_link("connected"), "verify": cmd_verify, "add": cmd_add,
                "make-master": cmd_make_master, "resolve": cmd_resolve,
                "rotate-secret": cmd_rotate_secret, "pair-local": cmd_pair_local}
    env = NodeEnv(args.config)
    try:
        return commands[args.command](env, args)
    except Invalid as error:
        report("ezpyr-cluster", error.message, args.json)
        return 2
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
