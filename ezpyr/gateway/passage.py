"""Going through: the SSH connection to the target server, and the bytes
passed between it and the user's ``ezsh``, guarded and recorded.

The interactive guard reads the command line as the user sees it: every
byte the server sends is fed to a terminal emulator (pyte), and when the
user presses Enter the line is read from that screen, from the end of the
prompt it was typed after. So a line recalled from history or completed with
Tab is checked as shown. Several lines typed or pasted at once are checked
one by one: the bytes up to each Enter are sent, the echo is awaited, the
line is read and checked, and only then does the Enter go (or the line is
erased and the refusal printed). Full-screen programs (``less``, ``vim``:
the terminal's alternate screen) are not shells: Enter there is checked only
on a line that starts with the shell's own prompt.
"""
from __future__ import annotations

import io
import logging
import select
import socket
import time
from dataclasses import dataclass

import paramiko
from paramiko.buffered_pipe import BufferedPipe

from ezpyr.gateway import wire
from ezpyr.gateway.recording import Recording
from ezpyr.gateway.screen import GuardTerminal
from ezpyr.gateway.services import openssh_fingerprint
from ezpyr.guard.services import refusing_rules

log = logging.getLogger("ezpyr.gateway")

ENTER = (0x0D, 0x0A)
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
ERASE_LINE = b"\x05\x15"  # end of line, then kill to its start (readline; ^U in a plain tty)
ALT_SCREEN = {47 << 5, 1047 << 5, 1049 << 5}  # pyte keeps private modes shifted by 5
QUIET = 0.03  # no output for this long: the echo has arrived
SETTLE_LIMIT = 1.5
# what OpenSSH's own client asks for (2 MB window, 32 KB packets): with a 16 MB
# window and 128 KB packets the target's sshd used 1.6 CPU seconds for a
# 200 MB cat instead of 0.2 (bench/gateway.py --only 3 prints it)
WINDOW, MAX_PACKET = 2 << 20, 1 << 15
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class HostKeyChanged(Exception):
    def __init__(self, server_name: str, pinned: str, presented: str):
        self.pinned, self.presented = pinned, presented
        super().__init__(
            f"The host key of {server_name} has changed: it was pinned as "
            f"{openssh_fingerprint(pinned)} and the server now presents "
            f"{openssh_fingerprint(presented)}. The connection is refused; if the change is "
            "expected, an admin resets the pin on the server's page.")


@dataclass
class Target:
    """What the service needs to reach a server, read from the database and
    held only in the service's memory."""

    server_id: str
    name: str
    host: str
    port: int
    remote_user: str
    auth_method: str
    secret: str  # the gateway private key (PEM) or the server's password
    host_key: str | None

    @property
    def address(self) -> str:
        return f"{self.remote_user}@{self.host}:{self.port}"


def connect(target: Target, pin) -> paramiko.Transport:
    """An authenticated transport to ``target``. ``pin(line)`` stores the host
    key on first use; a key different from the pinned one raises
    HostKeyChanged before any credential is sent."""
    sock = socket.create_connection((target.host, target.port), timeout=10)
    # a keystroke goes at once, not after the ACK of what went before (Nagle),
    # as OpenSSH's client sends an interactive session's
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, default_window_size=WINDOW,
                                   default_max_packet_size=MAX_PACKET)
    # AES-GCM first: an AEAD costs paramiko a third less per byte than CTR + HMAC
    options = transport.get_security_options()
    options.ciphers = PREFERRED_CIPHERS + tuple(c for c in options.ciphers
                                                if c not in PREFERRED_CIPHERS)
    try:
        transport.start_client(timeout=10)
        key = transport.get_remote_server_key()
        presented = f"{key.get_name()} {key.get_base64()}"
        if target.host_key is None:
            pin(presented)
        elif target.host_key.split()[:2] != presented.split():
            raise HostKeyChanged(target.name, target.host_key, presented)
        if target.auth_method == "password":
            transport.auth_password(target.remote_user, target.secret)
        else:
            pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(target.secret))
            transport.auth_publickey(target.remote_user, pkey)
        sock.settimeout(None)
        return transport
    except BaseException:
        disconnect(transport)
        raise


def disconnect(transport: paramiko.Transport) -> None:
    """Close the connection to the target now. The transport's thread waits
    in a ``recv`` without timeout, and closing the socket under it wakes
    nothing: that thread, and the connection with the target's session,
    would stay until the target sent something. Shutting the socket down
    ends the ``recv`` and tells the target at once."""
    try:
        transport.sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # the target closed it already
        pass
    transport.close()


class Chunks:
    """The bytes a channel holds, as the pieces they came in: what
    :class:`ChunkPipe` needs of the ``array`` paramiko keeps them in."""

    def __init__(self):
        self.pieces: list[bytes] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> None:
        self.pieces.append(data)
        self.size += len(data)

    def head(self, limit: int | None) -> bytes:
        """The first ``limit`` bytes (all of them for None), one copy at most."""
        if limit is None or limit >= self.size:
            return b"".join(self.pieces)  # one piece: that piece itself
        out, left = [], limit
        for piece in self.pieces:
            out.append(piece[:left])
            left -= len(out[-1])
            if not left:
                break
        return b"".join(out)

    def __delitem__(self, key: slice) -> None:  # only del chunks[:n], as paramiko does
        cut = self.size if key.stop is None else min(key.stop, self.size)
        self.size -= cut
        while cut:
            if len(self.pieces[0]) <= cut:
                cut -= len(self.pieces.pop(0))
            else:
                self.pieces[0] = self.pieces[0][cut:]
                cut = 0


class ChunkPipe(BufferedPipe):
    """paramiko's channel buffer without its copies: it appends every packet
    to an ``array`` and copies twice more on reading (a slice, then bytes),
    three copies of every byte, the largest cost of a ``cat`` in the service
    after the recording. This one keeps the packets' bytes and joins them
    once when read."""

    def __init__(self):
        super().__init__()
        self._buffer = Chunks()

    def _buffer_frombytes(self, data: bytes) -> None:
        self._buffer.append(data)

    def _buffer_tobytes(self, limit: int | None = None) -> bytes:
        return self._buffer.head(limit)


# ChunkPipe relies on these two hooks of paramiko's BufferedPipe (5.1 has
# them; test_chunk_pipe compares the two pipes). A paramiko without them
# keeps its own buffer: slower, never wrong.
CHUNKS_FIT = all(callable(getattr(BufferedPipe, hook, None))
                 for hook in ("_buffer_frombytes", "_buffer_tobytes"))


def open_session(transport: paramiko.Transport) -> paramiko.Channel:
    """A session channel whose output and errors are held by ChunkPipes (set
    before any request: the server sends nothing until the shell or the
    command starts)."""
    channel = transport.open_session(timeout=10)
    if CHUNKS_FIT:
        channel.in_buffer, channel.in_stderr_buffer = ChunkPipe(), ChunkPipe()
    return channel


class Passage:
    """One session's pass-through. ``client`` is the socket to ``ezsh`` and
    ``reader`` its frame reader (which may hold frames already)."""

    def __init__(self, client: socket.socket, reader: wire.Reader, channel: paramiko.Channel, *,
                 tty: bool, cols: int, rows: int, rules: list, recording: Recording,
                 on_refusal):
        self.client = client
        self.reader = reader
        self.channel = channel
        self.tty = tty
        self.rules = rules
        self.recording = recording
        # stop() from another thread: the reason, and a byte that wakes run()
        self.stop_reason = ""
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)  # a wake-up already waiting is enough
        self.on_refusal = on_refusal  # (line, rules) -> None
        self.guarding = tty and bool(rules)
        self.terminal = GuardTerminal(cols, rows) if self.guarding else None
        self.bytes_in = self.bytes_out = 0
        self.refusals = 0
        self.line_prompt: str | None = None  # the prompt the current line is typed after
        self.shell_prompt = ""  # the last prompt seen outside full-screen programs
        self.pasting = False
        self.last_output = 0.0
        self.end_reason = ""

    # -- output ----------------------------------------------------------------------
    def pump_output(self) -> bool:
        """Pass on what the server sent; False once the channel is done."""
        moved = False
        # all that is buffered at once: paramiko moves what stays behind a
        # partial read to the front of its buffer, a copy per read
        waiting = len(self.channel.in_buffer)
        if waiting:
            self.output(self.channel.recv(waiting), b"O")
            moved = True
        waiting = len(self.channel.in_stderr_buffer)
        if waiting:
            self.output(self.channel.recv_stderr(waiting), b"E")
            moved = True
        if not moved and self.channel.eof_received and not self.channel.recv_ready() \
                and not self.channel.recv_stderr_ready():
            return False
        return True

    def output(self, data: bytes, kind: bytes) -> None:
        self.bytes_out += len(data)
        self.last_output = time.monotonic()
        if self.terminal is not None:
            self.terminal.feed(data)
        self.recording.output(data)
        wire.send(self.client, kind, data)

    def settle(self, quiet: float = QUIET) -> None:
        """Pass on the server's output until it has been quiet for ``quiet``
        seconds (the echo of what was just sent has arrived)."""
        deadline = time.monotonic() + SETTLE_LIMIT
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.channel], [], [], quiet)
            if not readable or not self.pump_output():
                return

    # -- input -----------------------------------------------------------------------
    def user_input(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.recording.input(data)
        if not self.guarding:
            self.channel.sendall(data)
            return
        start = 0
        for i, byte in enumerate(data):
            if data.startswith(PASTE_START, i):
                self.pasting = True
            elif data.startswith(PASTE_END, i):
                self.pasting = False
            elif byte in ENTER and not self.pasting:
                self.typed(data[start:i])
                self.enter(data[i:i + 1])
                start = i + 1
        self.typed(data[start:])

    def typed(self, data: bytes) -> None:
        if not data:
            return
        if self.line_prompt is None:
            self.begin_line()
        self.channel.sendall(data)

    def begin_line(self) -> None:
        if time.monotonic() - self.last_output < QUIET * 2:
            self.settle()
        screen = self.terminal.screen
        row = screen.display[screen.cursor.y]
        self.line_prompt = row[:screen.cursor.x]
        if not self.full_screen() and self.line_prompt.strip():
            self.shell_prompt = self.line_prompt

    def full_screen(self) -> bool:
        return bool(ALT_SCREEN & self.terminal.screen.mode)

    def enter(self, key: bytes) -> None:
        if self.line_prompt is None:
            self.begin_line()
        self.settle()
        lines = self.shown_lines()
        refusing = []
        for line in lines:
            refusing = refusing_rules(self.rules, line)
            if refusing:
                break
        self.line_prompt = None
        self.last_output = time.monotonic()  # the command's output may be on its way
        if not refusing:
            self.channel.sendall(key)
            return
        self.refusals += 1
        self.channel.sendall(ERASE_LINE)
        self.settle()
        shown = lines[0].strip()
        message = (f"\r\nezsh: the command guard refuses this line (rule "
                   f"{refusing[0].pattern!r}); it was not run.\r\n")
        self.recording.marker(f"guard refused: {shown}")
        self.client.sendall(wire.frame(b"O", message.encode()))
        self.on_refusal(shown, refusing)
        self.channel.sendall(key)

    def shown_lines(self) -> list[str]:
        """The line about to run, as the screen shows it, in the readings the
        guard checks (wrapped rows joined as one line, and row by row for a
        pasted block); empty when the cursor is not on a command line."""
        screen = self.terminal.screen
        rows = screen.display
        y = screen.cursor.y
        prompt = self.line_prompt or ""
        if self.full_screen() and (not prompt.strip() or prompt != self.shell_prompt):
            return []
        top = None
        if prompt.strip():
            for r in range(y, -1, -1):
                if rows[r].startswith(prompt):
                    top = r
                    break
        else:
            top = y
        if top is None:
            # the prompt is gone from the screen: read the cursor's row whole,
            # and every tail of it after a blank (fails closed)
            row = rows[y].rstrip()
            return [row] + [row[i + 1:] for i, c in enumerate(row) if c == " "]
        bottom = y
        while bottom + 1 < len(rows) and rows[bottom + 1].strip():
            bottom += 1
        body = [rows[top][len(prompt):]] + rows[top + 1:bottom + 1]
        return ["".join(body).rstrip(), "\n".join(part.rstrip() for part in body)]

    # -- control -----------------------------------------------------------------------
    def control(self, payload: dict) -> None:
        size = wire.window_size(payload.get("resize"))
        if size:  # (a size that is not two numbers is ignored)
            cols, rows = size
            if self.tty:
                self.channel.resize_pty(cols, rows)
            if self.terminal is not None:
                self.terminal.screen.resize(rows, cols)
            self.recording.resize(cols, rows)
        elif payload.get("eof"):
            self.channel.shutdown_write()

    def stop(self, reason: str) -> None:
        """End the session (called from another thread: an admin's
        Terminate, the service stopping)."""
        self.stop_reason = self.stop_reason or reason
        try:
            self.wake_w.send(b"\0")
        except OSError:  # it has ended (closed), or is woken already (full)
            pass

    def close(self) -> None:
        self.wake_w.close()
        self.wake_r.close()

    def run(self) -> int | None:
        """Pass bytes until the server's side ends (or the session is
        stopped); the remote exit status, None when there is none. Nothing
        else is done here between two bytes: a keystroke's echo waits for
        nothing (the checks for Terminate are made by the service's watcher)."""
        while True:
            readable, _, _ = select.select([self.channel, self.client, self.wake_r], [], [])
            if self.stop_reason:
                self.end_reason = self.stop_reason
                return None
            if self.channel in readable and not self.pump_output():
                break
            if self.client in readable:
                try:
                    self.reader.feed()
                except (wire.Closed, ConnectionError):
                    self.end_reason = "the user's connection closed"
                    return None
                for kind, payload in self.reader.frames():
                    if kind == b"I":
                        self.user_input(payload)
                    elif kind == b"J":
                        self.control(payload)
            if self.channel.closed and not self.channel.recv_ready():
                break
        status = self.channel.recv_exit_status()
        return status if status >= 0 else None
