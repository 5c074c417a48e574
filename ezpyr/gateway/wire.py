"""The frames ``ezsh`` and the gateway service exchange on the Unix socket.

A frame is one kind byte, a 4-byte big-endian length and the payload:

* ``J``: a JSON object (hello, prompt, answer, print, start, resize, eof, exit);
* ``I``: bytes the user typed (client to service);
* ``O`` / ``E``: bytes for the user's stdout / stderr (service to client).
"""
from __future__ import annotations

import json
import socket
import struct

HEADER = struct.Struct(">cI")
MAX_FRAME = 1 << 20
CHUNK = 131072


class Closed(EOFError):
    """The other side closed the socket."""


class BadFrame(ValueError):
    """What the other side sent is not a frame of this protocol."""


def window_size(value) -> tuple[int, int] | None:
    """``[cols, rows]`` as sent (hello, resize), each kept within 1..1000;
    None when it is not two whole numbers."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 \
            or not all(type(v) is int for v in value):
        return None
    return tuple(max(1, min(v, 1000)) for v in value)


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def write_pieces(write, pieces: list) -> None:
    """All of ``pieces`` through ``write``, a gathering write that may take
    only part of them (``sock.sendmsg``, ``os.writev`` on a file
    descriptor), without joining them in memory. ``pieces`` is used up."""
    while pieces:
        done = write(pieces)
        while pieces and done >= len(pieces[0]):
            done -= len(pieces[0])
            pieces.pop(0)
        if pieces and done:
            pieces[0] = memoryview(pieces[0])[done:]


def send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    """``payload`` as frames of at most MAX_FRAME bytes, each header and
    payload handed to the kernel together (bulk output moves megabytes at a
    time)."""
    view = memoryview(payload)
    for start in range(0, len(view), MAX_FRAME):
        part = view[start:start + MAX_FRAME]
        write_pieces(sock.sendmsg, [HEADER.pack(kind, len(part)), part])


def message(**fields) -> bytes:
    return frame(b"J", json.dumps(fields).encode())


class Reader:
    """Frames from a socket, buffered: :meth:`feed` after the socket is
    readable, then :meth:`frames` yields what is complete."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def feed(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise Closed()
        self.buffer += data

    def frames(self):
        while len(self.buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME:
                raise BadFrame(f"a frame of {length} bytes (at most {MAX_FRAME})")
            end = HEADER.size + length
            if len(self.buffer) < end:
                return
            payload = bytes(self.buffer[HEADER.size:end])
            del self.buffer[:end]
            if kind == b"J":
                try:
                    payload = json.loads(payload)
                except ValueError:
                    raise BadFrame("a J frame that is not JSON") from None
                if not isinstance(payload, dict):
                    raise BadFrame("a J frame that is not a JSON object")
                try:  # a lone surrogate (\udcff: ezsh's word for a byte that is not UTF-8)
                    json.dumps(payload, ensure_ascii=False).encode()
                except UnicodeEncodeError:
                    raise BadFrame("text that is not UTF-8") from None
            yield kind, payload

    def partial_data(self):
        """When the buffer ends with the start of an ``O``/``E`` frame whose
        payload has not all come: (kind, the part held, bytes still to come),
        and the buffer is emptied; the rest is read from the socket as it
        comes (see ezsh). None otherwise."""
        if len(self.buffer) < HEADER.size:
            return None
        kind, length = HEADER.unpack_from(self.buffer)
        if kind not in (b"O", b"E") or length > MAX_FRAME:
            return None
        held = bytes(self.buffer[HEADER.size:])
        self.buffer.clear()
        return kind, held, length - len(held)

    def next(self):
        """The next frame, waiting for it (used before the pass-through)."""
        while True:
            for item in self.frames():
                return item
            self.feed()
