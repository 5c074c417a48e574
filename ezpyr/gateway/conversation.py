"""One ``ezsh`` connection to the gateway service: sign in, pick a server,
go through.

The caller is the system account the socket's peer credentials name; its
ezpyr user is the one with the same username. Each step reads this node's
database only, in short transactions of its own, so the gateway works the
same on the master, on the slave and while the other node is down.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
import socket
import struct
from dataclasses import dataclass

import paramiko
from sqlalchemy import select

from ezpyr.access.services import AccessService
from ezpyr.activity.services import ActivityLog
from ezpyr.auth.services import AuthService, SUSPENDED
from ezpyr.auth.totp import TotpService, UsedSteps
from ezpyr.gateway import wire
from ezpyr.gateway.passage import (Passage, HostKeyChanged, Target, connect, disconnect,
                                   open_session)
from ezpyr.gateway.recording import Recording
from ezpyr.gateway.services import GatewayKeyService
from ezpyr.gateway.sessions import SessionLog
from ezpyr.guard.services import GuardService, refusing_rules
from ezpyr.replication.capture import NodeIsReadOnly
from ezpyr.servers.models import Server
from ezpyr.users.models import User

log = logging.getLogger("ezpyr.gateway")

QUIT_WORDS = ("q", "quit", "exit")
TERMINAL_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")  # terminfo's names
NOT_REACHABLE = "There is no server named {name!r} that you may reach."
GUARD_STATUS = 126  # the exit status of a one-shot command the guard refuses


class Stop(Exception):
    """End the conversation with a one-line message and an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GuardRule:
    pattern: str
    description: str


def peer_uid(conn: socket.socket) -> int:
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


class Conversation:
    def __init__(self, service, conn: socket.socket):
        self.service = service
        self.env = service.env
        self.conn = conn
        self.reader = wire.Reader(conn)
        self.username = ""
        self.client = ""
        self.command = ""  # what the user asked for after the gateway's address
        self.tty = False
        self.cols, self.rows, self.term = 80, 24, "xterm"

    # -- talking to ezsh ------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.conn.sendall(wire.frame(b"E", (text.replace("\n", "\r\n") + "\r\n").encode()))

    def ask(self, prompt: str, secret: bool = False) -> str:
        self.conn.sendall(wire.message(prompt=prompt, secret=secret))
        while True:
            kind, payload = self.reader.next()
            if kind == b"J" and "answer" in payload:
                if payload["answer"] is None:
                    raise Stop("", 1)
                return str(payload["answer"])

    def record(self, action: str, target: str = "", details: str = "", db=None) -> None:
        """An entry in this node's activity log, in its own transaction or in
        ``db``'s."""
        if db is None:
            with self.env.session(actor=f"gateway:{self.username}") as db:
                return self.record(action, target, details, db)
        log.info("%s %s %s %s", action, self.username, target, details)
        ActivityLog(db, self.service.node_name).record(
            action, target, details, username=self.username, remote_addr=self.client)

    # -- the conversation ------------------------------------------------------------------
    def run(self) -> None:
        status = 1
        try:
            self.read_hello()
            try:
                self.username = pwd.getpwuid(peer_uid(self.conn)).pw_name
            except KeyError:
                raise Stop("ezsh: this system account has no name; ask an admin.")
            user_id = self.sign_in()
            status = self.go(user_id)
        except Stop as stop:
            if str(stop):
                self.say(str(stop))
            status = stop.status
        except (wire.Closed, ConnectionError):
            return
        except wire.BadFrame as error:
            self.say(f"ezsh: the gateway could not read what its client sent ({error}); "
                     "nothing was done.")
        except Exception:
            log.exception("gateway conversation of %s failed", self.username)
            self.say("ezsh: the gateway failed; the error is in this node's log.")
        try:
            self.conn.sendall(wire.message(exit=status))
        except OSError:
            pass

    def read_hello(self) -> None:
        """What ezsh sends first: the user's command, terminal and window
        size. Anything else is refused before anything is looked up."""
        kind, hello = self.reader.next()
        if kind != b"J" or "hello" not in hello:
            raise Stop("ezsh: the gateway expected its client's hello; nothing was done.")
        self.client = str(hello.get("client", ""))[:100]
        command, term = hello.get("command", ""), hello.get("term") or "xterm"
        size = wire.window_size([hello.get("cols", 80), hello.get("rows", 24)])
        if not isinstance(command, str) or "\0" in command:
            raise Stop("ezsh: the command must be text without NUL; nothing was done.")
        if not isinstance(term, str) or not TERMINAL_TYPE.fullmatch(term):
            raise Stop("ezsh: the terminal type (TERM) must be a terminfo name: letters, digits "
                       "and . _ + - (at most 64); nothing was done.")
        if size is None:
            raise Stop("ezsh: the window size must be two whole numbers; nothing was done.")
        self.command, self.tty, self.term = command.strip(), bool(hello.get("tty")), term
        self.cols, self.rows = size

    def sign_in(self) -> str:
        """The signed-in user's id, or Stop with the one-line reason."""
        if not self.service.password_prompt:
            return self.sign_in_by_key()
        with self.env.session() as db:
            user = db.scalars(select(User).where(User.username == self.username)).first()
            known = user is not None
        if not known:
            self.no_such_user()
        password = self.ask(f"ezpyr password for {self.username}: ", secret=True)
        with self.env.session() as db:
            result = AuthService(db, self.service.passwords).check_password(
                self.username, password, self.client or "")
            user_id = result.user.id if result.user else None
            needs_code = result.needs_code
        if user_id is None:
            self.refuse(result.reason)
        if needs_code:
            self.second_factor(user_id)
        self.record("gateway.sign_in", self.username)
        return user_id

    def sign_in_by_key(self) -> str:
        """Key-only sites (sshd checked the key): the user must exist and be
        neither locked nor suspended; checked, and the sign-in recorded, in
        one transaction (the menu comes sooner)."""
        with self.env.session(actor=f"gateway:{self.username}") as db:
            user = db.scalars(select(User).where(User.username == self.username)).first()
            if user is None:
                reason = None
            else:
                auth = AuthService(db, self.service.passwords)
                if auth.is_locked(self.username):
                    reason = auth.check_password(self.username, "", self.client or "").reason
                elif user.suspended:
                    reason = SUSPENDED
                else:
                    reason = ""
                user_id, needs_code = user.id, user.totp_enabled
                if not reason and not needs_code:
                    self.record("gateway.sign_in", self.username, db=db)
        if reason is None:
            self.no_such_user()
        if reason:
            self.refuse(reason)
        if needs_code:
            self.second_factor(user_id)
            self.record("gateway.sign_in", self.username)
        return user_id

    def no_such_user(self) -> None:
        self.record("gateway.refused", self.username, "no ezpyr user of this name")
        raise Stop(f"ezsh: there is no ezpyr user named {self.username}.")

    def second_factor(self, user_id: str) -> None:
        code = self.ask("TOTP code: ")
        with self.env.session() as db:
            user = db.get(User, user_id)
            totp = TotpService(db, self.service.secret_box, UsedSteps(db))
            result = AuthService(db, self.service.passwords).check_code(user, code, totp,
                                                                        self.client or "")
        if result.user is None:
            self.refuse(result.reason)

    def refuse(self, reason: str) -> None:
        self.record("gateway.refused", self.username, reason)
        raise Stop(f"ezsh: {reason}")

    # -- picking a server ------------------------------------------------------------------
    def reachable(self, user_id: str) -> list[dict]:
        with self.env.session() as db:
            user = db.get(User, user_id)
            return [{"name": r.server.name, "host": r.server.host,
                     "group": r.server.group.name if r.server.group else "",
                     "description": r.server.description}
                    for r in AccessService(db).effective_access(user)]

    def menu(self, user_id: str) -> str:
        servers = self.reachable(user_id)
        if not servers:
            raise Stop("ezsh: you may reach no server; ask an admin for access.")
        shown = servers
        while True:
            self.show(shown, len(servers))
            answer = self.ask("Server (number or name; other text filters; q quits): ").strip()
            if answer.lower() in QUIT_WORDS:
                raise Stop("", 0)
            if answer.isdecimal() and 1 <= int(answer) <= len(shown):
                return shown[int(answer) - 1]["name"]
            if any(s["name"] == answer for s in servers):
                return answer
            text = answer.lower()
            found = [s for s in servers if text in s["name"].lower()
                     or text in s["host"].lower() or text in s["group"].lower()]
            if not found:
                self.say(f"No server you may reach matches {answer!r}.")
            else:
                shown = found

    def show(self, servers: list[dict], total: int) -> None:
        width = max(len(s["name"]) for s in servers)
        gwidth = max([len(s["group"]) for s in servers] + [5])
        lines = [f"Servers you may reach ({len(servers)} of {total}):"]
        for n, s in enumerate(servers, 1):
            lines.append(f"{n:>4}  {s['name']:<{width}}  {s['group'] or '-':<{gwidth}}  "
                         f"{s['description']}".rstrip())
        self.say("\n".join(lines))

    def target(self, user_id: str, name: str) -> tuple[Target, list[GuardRule]]:
        with self.env.session() as db:
            user = db.get(User, user_id)
            server = db.scalars(select(Server).where(Server.name == name)).first()
            if server is None or not AccessService(db).can_reach(user, server):
                raise Stop("ezsh: " + NOT_REACHABLE.format(name=name))
            if server.auth_method == "password":
                secret = self.service.secret_box.decrypt(server.password_encrypted or "")
            else:
                key = GatewayKeyService(db, self.service.secret_box).current()
                if key is None:
                    raise Stop("ezsh: this node has no gateway key yet; ask an admin.")
                secret = GatewayKeyService(db, self.service.secret_box).private_key_pem(key)
            rules = [GuardRule(r.pattern, r.description)
                     for r in GuardService(db).rules_of(user.group)]
            return Target(server.id, server.name, server.host, server.port, server.remote_user,
                          server.auth_method, secret, server.host_key), rules

    def pin(self, target: Target, line: str) -> None:
        try:
            with self.env.session(actor=f"gateway:{self.username}") as db:
                server = db.get(Server, target.server_id)
                if server is not None and server.host_key is None:
                    server.host_key = line
        except NodeIsReadOnly:
            log.warning("host key of %s not pinned: this node takes no changes now; it is "
                        "pinned at the next connection through the master", target.name)
            return
        self.record("gateway.host_key_pinned", target.name,
                    f"pinned {target.name}'s host key on first connection")

    # -- going through ---------------------------------------------------------------------
    def go(self, user_id: str) -> int:
        if self.command:
            name, _, command = self.command.partition(" ")
            command = command.strip()
        else:
            name, command = self.menu(user_id), ""
        tty, cols, rows, term = self.tty, self.cols, self.rows, self.term
        if not command and not tty:
            raise Stop("ezsh: an interactive session needs a terminal: use ssh -t, or give a "
                       "command after the server's name.")
        target, rules = self.target(user_id, name)
        row_id = self.start_row(target, command)
        recording = Recording(self.service.log_dir / f"{row_id}.cast", cols=cols, rows=rows,
                              term=term, record_input=self.service.record_input,
                              title=f"{self.username} on {target.name}")
        status, refusals, reason, passage = None, 0, "", None
        try:
            if command:
                refusing = refusing_rules(rules, command)
                if refusing:
                    refusals = 1
                    reason = "refused by the command guard"
                    recording.marker(f"guard refused: {command}")
                    self.guard_refused(target, command, refusing)
                    raise Stop(f"ezsh: the command guard refuses this command (rule "
                               f"{refusing[0].pattern!r}); nothing was sent to "
                               f"{target.name}.", GUARD_STATUS)
            try:
                transport = connect(target, lambda line: self.pin(target, line))
            except HostKeyChanged as error:
                reason = "host key changed"
                self.record("gateway.host_key_refused", target.name, str(error))
                raise Stop(f"ezsh: {error}", 255)
            except (OSError, paramiko.SSHException) as error:
                reason = f"could not connect: {error}"
                raise Stop(f"ezsh: could not connect to {target.name}: {error}", 255)
            try:
                try:
                    channel = open_session(transport)
                    if tty:
                        channel.get_pty(term=term, width=cols, height=rows)
                    if command:
                        channel.exec_command(command)
                    else:
                        channel.invoke_shell()
                except (OSError, EOFError, paramiko.SSHException) as error:
                    reason = f"session refused: {error}"
                    raise Stop(f"ezsh: {target.name} refused the session ({error}).", 255)
                self.conn.sendall(wire.message(start=True, raw=tty))
                passage = Passage(self.conn, self.reader, channel, tty=tty, cols=cols, rows=rows,
                                  rules=rules, recording=recording,
                                  on_refusal=lambda line, r: self.guard_refused(target, line, r))
                try:
                    with self.service.watching(row_id, passage):
                        status = passage.run()
                finally:
                    passage.close()
                reason = passage.end_reason or "ended"
                if reason != "ended":
                    self.say(f"\r\nezsh: session ended: {reason}.")
            finally:
                disconnect(transport)
            return 255 if status is None else status
        finally:
            # the session's row is ended whatever happens to the recording:
            # a row left live would show a session that no one can end
            try:
                recording.close()
            except OSError as error:
                why = error.strerror or str(error)
                reason = f"the recording could not be written ({why})"
                log.error("gateway session %s of %s ended: %s", row_id, self.username, reason)
                raise Stop(f"\r\nezsh: session ended: this node could not write the session's "
                           f"recording ({why}); ask an admin.", 255) from error
            finally:
                if passage is not None:
                    refusals += passage.refusals
                self.finish_row(row_id, status, passage, refusals, reason)

    def guard_refused(self, target: Target, line: str, rules) -> None:
        self.record("gateway.guard_refused", target.name,
                    f"{line!r} refused by {', '.join(repr(r.pattern) for r in rules)}")

    def start_row(self, target: Target, command: str) -> str:
        with self.env.session() as db:
            row = SessionLog(db).start(
                username=self.username, client_address=self.client, server_name=target.name,
                server_address=target.address, command=command)
            row_id = row.id
        self.record("gateway.session_start", target.name,
                    f"session {row_id}" + (f": {command}" if command else " (interactive)"))
        return row_id

    def finish_row(self, row_id: str, status, passage, refusals: int, reason: str) -> None:
        with self.env.session() as db:
            SessionLog(db).finish(
                row_id, exit_status=status, guard_refusals=refusals, reason=reason,
                bytes_in=passage.bytes_in if passage else 0,
                bytes_out=passage.bytes_out if passage else 0)
        self.record("gateway.session_end", row_id,
                    f"exit status {status}; {reason}; {refusals} guard refusal(s)")
