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


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    """``payload`` as frames of at most MAX_FRAME bytes, each header and
    payload handed to the kernel together without joining them in memory
    (bulk output moves megabytes at a time)."""
    view = memoryview(payload)
    for start in range(0, len(view), MAX_FRAME):
        part = view[start:start + MAX_FRAME]
        pieces = [HEADER.pack(kind, len(part)), part]
        while pieces:
            sent = sock.sendmsg(pieces)
            while pieces and sent >= len(pieces[0]):
                sent -= len(pieces[0])
                pieces.pop(0)
            if pieces and sent:
                pieces[0] = memoryview(pieces[0])[sent:]


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
                raise ValueError("frame too long")
            end = HEADER.size + length
            if len(self.buffer) < end:
                return
            payload = bytes(self.buffer[HEADER.size:end])
            del self.buffer[:end]
            yield kind, (json.loads(payload) if kind == b"J" else payload)

    def next(self):
        """The next frame, waiting for it (used before the pass-through)."""
        while True:
            for item in self.frames():
                return item
            self.feed()
