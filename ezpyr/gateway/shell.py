"""ezsh: the login shell of gateway users, a thin client of the gateway service.

It holds no secret and decides nothing: it connects to this node's gateway
service on its Unix socket (which knows the caller by the socket's peer
credentials), answers the service's prompts from the user's terminal, and
then passes bytes both ways, with window-size changes, until the service
sends the exit status.

sshd starts a login shell as ``ezsh -c COMMAND`` when the user gave a
command and as ``-ezsh`` otherwise; under the ``ForceCommand`` of the
gateway's ``Match Group`` block COMMAND is the forced command and the
user's own is in ``SSH_ORIGINAL_COMMAND``.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import tty

from ezpyr.gateway import wire

DEFAULT_SOCKET = "/run/ezpyr/gateway.sock"
SOCKET_ENV = "EZPYR_GATEWAY_SOCKET"


def requested_command(argv: list[str], environ) -> str:
    """What the user asked for after the gateway's address ("" for the menu)."""
    if "SSH_ORIGINAL_COMMAND" in environ:
        return environ["SSH_ORIGINAL_COMMAND"]
    if len(argv) >= 3 and argv[1] == "-c":
        words = argv[2].split()
        if words and os.path.basename(words[0]) == "ezsh":
            return ""  # the ForceCommand itself, without a command of the user's
        return argv[2]
    return ""


def terminal_size(fd: int) -> tuple[int, int]:
    try:
        rows, cols, _, _ = struct.unpack("4H", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        if rows and cols:
            return cols, rows
    except OSError:
        pass
    return 80, 24


def read_line(fd: int, secret: bool) -> str | None:
    """One line from ``fd`` byte by byte (nothing read past it stays
    buffered here: it belongs to the remote command). None at end of input."""
    old = None
    if secret and os.isatty(fd):
        old = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
    try:
        line = bytearray()
        while True:
            byte = os.read(fd, 1)
            if not byte:
                return None if not line else line.decode(errors="replace")
            if byte == b"\n":
                return line.decode(errors="replace").rstrip("\r")
            line += byte
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
            os.write(2, b"\r\n")


def write_all(fd: int, data) -> None:
    """All of ``data`` to ``fd`` (a write cut short by a signal, the window
    size's SIGWINCH, writes only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Client:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = wire.Reader(sock)
        self.stdin_open = True
        self.saved_tty = None
        self.left = 0  # bytes of the current output frame still to come
        self.left_fd = 1
        self.splice = hasattr(os, "splice")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def run(self, hello: dict) -> int:
        self.send(wire.message(**hello))
        try:
            while True:
                kind, payload = self.reader.next()
                code = self.handle(kind, payload)
                if code is not None:
                    return code
                if kind == b"J" and payload.get("start"):
                    return self.pass_through(raw=payload.get("raw", False))
        except (wire.Closed, ConnectionError):
            self.restore()
            os.write(2, b"ezsh: the gateway service closed the connection\r\n")
            return 255
        finally:
            self.restore()

    def handle(self, kind: bytes, payload) -> int | None:
        if kind == b"O":
            write_all(1, payload)
        elif kind == b"E":
            write_all(2, payload)
        elif "prompt" in payload:
            os.write(2, payload["prompt"].encode())
            answer = read_line(0, payload.get("secret", False))
            self.send(wire.message(answer=answer))
        elif "exit" in payload:
            return int(payload["exit"])
        return None

    def restore(self) -> None:
        if self.saved_tty is not None:
            saved, self.saved_tty = self.saved_tty, None
            try:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            except termios.error:  # the terminal is gone (hung up)
                pass

    def pass_through(self, raw: bool) -> int:
        if raw and os.isatty(0):
            self.saved_tty = termios.tcgetattr(0)
            tty.setraw(0)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.signal(signal.SIGWINCH, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        os.write(wake_w, b"\0")  # the size now: the window may have changed during the menu
        code = self.drain()  # frames that came with the start
        if code is not None:
            return code
        poller = select.poll()
        for fd in (self.sock.fileno(), wake_r) + ((0,) if self.stdin_open else ()):
            poller.register(fd, select.POLLIN)
        # no events asked: poll still tells when the user's side is gone
        # (sshd closed its end of stdout after the client went away). A
        # command that prints nothing would otherwise keep ezsh, the service's
        # connection and the target's session until it printed something.
        poller.register(1, 0)
        while True:
            ready = dict(poller.poll())
            if ready.get(1, 0) & (select.POLLHUP | select.POLLERR):
                return 255
            if ready.get(1, 0) & select.POLLNVAL:  # no stdout at all: nothing to watch
                poller.unregister(1)
            if wake_r in ready:
                os.read(wake_r, 512)
                cols, rows = terminal_size(0)
                self.send(wire.message(resize=[cols, rows]))
            if 0 in ready:
                data = os.read(0, wire.CHUNK)
                if data:
                    self.send(wire.frame(b"I", data))
                else:
                    self.stdin_open = False
                    poller.unregister(0)
                    self.send(wire.message(eof=True))
            if self.sock.fileno() in ready:
                code = self.receive()
                if code is not None:
                    return code

    def receive(self) -> int | None:
        """What the service sent. Bulk output goes from the socket to its fd
        as it comes (spliced where the fd is a pipe), not through the frame
        buffer."""
        if self.left:
            self.left -= self.pass_on(min(self.left, wire.MAX_FRAME))
            return None
        self.reader.feed()
        return self.drain()

    def drain(self) -> int | None:
        for kind, payload in self.reader.frames():
            code = self.handle(kind, payload)
            if code is not None:
                return code
        started = self.reader.partial_data()
        if started:
            kind, held, self.left = started
            self.left_fd = 1 if kind == b"O" else 2
            write_all(self.left_fd, held)
        return None

    def pass_on(self, most: int) -> int:
        if self.splice:
            try:
                moved = os.splice(self.sock.fileno(), self.left_fd, most)
            except OSError:  # neither end is a pipe (a terminal): copy
                self.splice = False
            else:
                if not moved:
                    raise wire.Closed()
                return moved
        data = self.sock.recv(most)
        if not data:
            raise wire.Closed()
        write_all(self.left_fd, data)
        return len(data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    command = requested_command(argv, os.environ)
    path = os.environ.get(SOCKET_ENV, DEFAULT_SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as error:
        print(f"ezsh: the gateway service of this node is not answering at {path} "
              f"({error.strerror}); ask an admin to start ezpyr-gateway.", file=sys.stderr)
        return 255
    is_tty = os.isatty(0) and os.isatty(1)
    cols, rows = terminal_size(0)
    client_address = (os.environ.get("SSH_CONNECTION") or "").split()[:1]
    hello = {"hello": 1, "command": command, "tty": is_tty, "cols": cols, "rows": rows,
             "term": os.environ.get("TERM", "xterm") if is_tty else "",
             "client": client_address[0] if client_address else ""}
    try:
        return Client(sock).run(hello)
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
