"""ezpyr-gateway CONFIG: this node's gateway service.

It listens on a Unix socket that every gateway user's ``ezsh`` may connect
to, knows each caller by the socket's peer credentials (``SO_PEERCRED``),
and does for it everything that needs a secret: checks the sign-in and the
access, opens the SSH connection with the gateway key or the server's
password, enforces the command guard and records the session. It runs as a
service user of its own (``config/ezpyr-gateway.service``); the users'
processes hold none of its secrets.

Settings (in the node's ini file):

* ``ezpyr.gateway.socket``: the socket's path (default /run/ezpyr/gateway.sock);
* ``ezpyr.gateway.log_dir``: where recordings go (default /var/log/ezpyr/sessions);
* ``ezpyr.gateway.record_input``: also record what users type (default false);
* ``ezpyr.gateway.password_prompt``: ask for the ezpyr password after sshd
  accepted the key (default true; false for key-only sites, the TOTP code is
  still asked of users who enrolled one).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from pyramid.settings import asbool

from ezpyr.gateway.conversation import Conversation
from ezpyr.gateway.sessions import SessionLog, log_dir
from ezpyr.gateway.shell import DEFAULT_SOCKET
from ezpyr.passwords import Passwords
from ezpyr.replication.schema import code_revision
from ezpyr.scripts.node_env import NodeEnv

log = logging.getLogger("ezpyr.gateway")

STOPPING = "the gateway service is stopping"
WATCH_INTERVAL = 1.0  # seconds between two looks for Terminate requests
# After a stop, how long the service waits for its conversations to end:
# the sessions it ended tell their users why and end their rows
DRAIN_SECONDS = 5.0


class GatewayService:
    def __init__(self, env: NodeEnv):
        settings = env.settings
        self.env = env
        self.node_name = settings.get("ezpyr.node_name", "")
        self.socket_path = Path(settings.get("ezpyr.gateway.socket") or DEFAULT_SOCKET)
        self.log_dir = log_dir(settings)
        self.record_input = asbool(settings.get("ezpyr.gateway.record_input", "false"))
        self.password_prompt = asbool(settings.get("ezpyr.gateway.password_prompt", "true"))
        self.passwords = Passwords.from_settings(settings)
        self.secret_box = env.secret_box
        self.listener: socket.socket | None = None
        self.live: dict = {}  # session id -> its Passage, while it runs
        self.live_lock = threading.Lock()
        self.conversations = 0  # running, under live_lock
        self.quiet = threading.Condition(self.live_lock)
        self.stopped = threading.Event()  # set by stop()

    @property
    def stopping(self) -> bool:
        return self.stopped.is_set()

    def bind(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        if self.socket_path.is_socket():
            self.socket_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        # anyone may connect: the peer credentials say who it is
        os.chmod(self.socket_path, 0o666)
        listener.listen(64)
        self.listener = listener
        # what a first connection would load (alembic's scripts, the first
        # replicated write's revision): loaded now, not while a user waits
        code_revision()
        with self.env.session(actor="gateway") as db:
            ended = SessionLog(db).end_stale()
        if ended:
            log.warning("%d session(s) left live by a stopped gateway service marked ended", ended)
        log.info("gateway service listening on %s", self.socket_path)
        threading.Thread(target=self.watch, name="terminations", daemon=True).start()

    def serve_forever(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                if self.stopping:
                    return
                raise
            threading.Thread(target=self.converse, args=(conn,), daemon=True).start()

    def converse(self, conn: socket.socket) -> None:
        with self.live_lock:
            self.conversations += 1
        try:
            Conversation(self, conn).run()
        finally:
            conn.close()
            with self.live_lock:
                self.conversations -= 1
                self.quiet.notify_all()

    def drain(self, timeout: float = DRAIN_SECONDS) -> bool:
        """After a stop, wait up to ``timeout`` seconds for the running
        conversations to end (a session the stop ended says so to its user
        and ends its row); True when none is left. One waiting at a prompt
        is cut off when the process exits."""
        with self.live_lock:
            return self.quiet.wait_for(lambda: self.conversations == 0, timeout)

    @contextmanager
    def watching(self, session_id: str, passage):
        """While the block runs, the passage of this session is ended when
        an admin asks it (Terminate) or the service stops."""
        with self.live_lock:
            self.live[session_id] = passage
        if self.stopping:
            passage.stop(STOPPING)
        try:
            yield
        finally:
            with self.live_lock:
                del self.live[session_id]

    def watch(self) -> None:
        """Once a second, one query for the Terminate requests of every live
        session: made here, not between a session's bytes."""
        while not self.stopped.wait(WATCH_INTERVAL):
            with self.live_lock:
                live = dict(self.live)
            if not live:
                continue
            try:
                with self.env.session() as db:
                    ended = SessionLog(db).terminate_requested(live)
            except Exception:  # the database is away for a moment: asked again next time
                log.exception("could not read the gateway sessions' Terminate requests")
                continue
            for session_id in ended:
                live[session_id].stop("terminated by an admin")

    def stop(self, *_) -> None:
        self.stopped.set()
        with self.live_lock:
            live = list(self.live.values())
        for passage in live:
            passage.stop(STOPPING)
        if self.listener is not None:
            self.listener.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ezpyr-gateway", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the node's ini file")
    args = parser.parse_args(argv)
    env = NodeEnv(args.config)
    service = GatewayService(env)
    service.bind()
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    try:
        service.serve_forever()
        service.drain()
        with env.session(actor="gateway") as db:  # the sessions this stop cuts short
            SessionLog(db).end_stale()
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
