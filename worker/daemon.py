"""ezpyr-worker CONFIG: this node's replication worker (relay, applier,
heartbeat) and, on the master, the account tasks. Runs until stopped with
SIGTERM or Ctrl-C."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ezpyr.accounts.runner import AccountsLoop
from ezpyr.accounts.settings import AccountSettings
from ezpyr.cluster.client import PeerTls
from ezpyr.cluster.models import ClusterPeer
from ezpyr.meta import replicated_tables
from ezpyr.replication.schema import code_revision
from ezpyr.scripts.failures import one_line_errors
from ezpyr.scripts.node_env import NodeEnv
from worker.node import NodeWorker

log = logging.getLogger("worker")


@one_line_errors("ezpyr-worker")
def main(argv=None):
    parser = argparse.ArgumentParser(prog="ezpyr-worker", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the node's ini file")
    args = parser.parse_args(argv)
    if not Path(args.config.split("#")[0]).is_file():
        print(f"ezpyr-worker: no such config file: {args.config}", file=sys.stderr)
        return 2
    env = NodeEnv(args.config)
    replicated_tables()  # imports every model now, not while the first change waits to be applied
    try:
        with env.engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
            has_peer = (revision == code_revision()
                         and conn.execute(select(ClusterPeer.id)).first() is not None)
    except SQLAlchemyError as error:
        print(f"ezpyr-worker: cannot reach the database "
              f"{env.engine.url.render_as_string(hide_password=True)}: "
              f"{getattr(error, 'orig', error)}", file=sys.stderr)
        env.close()
        return 1
    if revision != code_revision():
        print(f"ezpyr-worker: the database is at schema revision {revision or 'none'}, this code "
              f"needs {code_revision()}: run ezpyr-init {args.config}", file=sys.stderr)
        return 1
    broker_url = env.settings.get("ezpyr.broker_url")
    if not broker_url:
        print("ezpyr-worker: ezpyr.broker_url is not set in the config", file=sys.stderr)
        return 1
    settings = env.settings
    heartbeat = settings.get("ezpyr.broker_heartbeat")
    worker = NodeWorker(
        env.engine, broker_url, env.secret_box,
        probe_interval=float(settings.get("ezpyr.worker.probe_interval", 2.0)),
        safety_interval=float(settings.get("ezpyr.worker.safety_interval", 5.0)),
        heartbeat=float(heartbeat) if heartbeat else None,
        keep_days=float(settings.get("ezpyr.outbox.keep_days", 7)),
        keep_rows=int(settings.get("ezpyr.outbox.keep_rows", 100_000)),
        tls=PeerTls.from_settings(settings),
        broker_ca_file=(settings.get("ezpyr.broker_ca_file") or "").strip() or None,
    )
    stop = []

    def on_signal(signum, _frame):
        stop.append(signum)
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    accounts = AccountsLoop(env.engine, AccountSettings.from_settings(settings), worker.stop_event)
    accounts.start()
    log.info("worker started (broker %s)", broker_url.split("@")[-1])
    print("ezpyr-worker: running", flush=True)
    if not has_peer:
        print("ezpyr-worker: replication is not configured on this node yet (no other node); "
              "changes are kept in the outbox until one is added "
              f"(see ezpyr-cluster {args.config} status)", flush=True)
    worker.stop_event.wait()
    worker.stop()
    env.close()
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
