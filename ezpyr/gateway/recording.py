"""Recording a session as an asciicast v2 file (asciinema's format): a JSON
header line, then one JSON line per event: ``[seconds, "o", text]`` for
output, ``"i"`` for input (when the setting asks for it), ``"r"`` for a
resize (``"COLSxROWS"``) and ``"m"`` for a marker (a guard refusal).

Bulk output is the costly case (every byte a user's ``cat`` shows is
written here), so ASCII output, the common case, goes from the server's
bytes to the file's bytes without becoming text: the few bytes JSON escapes
are replaced in place (:func:`json_ascii`), the same escapes as
``json.dumps``. Other output is decoded (UTF-8, invalid bytes replaced, a
character cut between two reads joined) and written by ``json.dumps``. The
events are held and written with one ``writev`` (no copy is made to join
them) when a megabyte is held, at the first event a second after the last
write, and at the end, by a thread of the recording's own: a new file's
writes cost about as much as the rest of the service's work for a ``cat``,
and while the session's thread made them the user's side went without
output.
"""
from __future__ import annotations

import codecs
import json
import os
import queue
import threading
import time
from pathlib import Path

from ezpyr.gateway.wire import write_pieces

# what json.dumps(…, ensure_ascii=False) writes for the bytes it escapes
ESCAPES = {byte: json.dumps(chr(byte))[1:-1].encode() for byte in (*range(0x20), 0x22, 0x5C)}
NOT_ESCAPED = bytes(b for b in range(256) if b not in ESCAPES)
BACKSLASH = 0x5C


def json_ascii(data: bytes) -> bytes:
    """The JSON string (without its quotes) of ASCII ``data``, as json.dumps
    writes it: a pass to find the bytes to escape, and one per kind found
    (usually CR and LF: single bytes are replaced many times faster than the
    pair)."""
    escaped = data.translate(None, NOT_ESCAPED)  # only the bytes to escape, usually few
    if not escaped:
        return data
    if BACKSLASH in escaped:  # first: the other escapes add backslashes
        data = data.replace(b"\\", b"\\\\")
    for byte, replacement in ESCAPES.items():
        if byte != BACKSLASH and byte in escaped:
            data = data.replace(bytes((byte,)), replacement)
    return data


class Recording:
    FLUSH_AT = 1 << 20  # bytes held before they are written

    def __init__(self, path: Path, *, cols: int, rows: int, term: str, title: str,
                 record_input: bool):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self.held: list[bytes] = []  # written together by flush(), without joining them
        self.held_bytes = 0
        self.started = time.monotonic()
        self.record_input = record_input
        self.decoders = {"o": codecs.getincrementaldecoder("utf-8")("replace"),
                         "i": codecs.getincrementaldecoder("utf-8")("replace")}
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(time.time()),
                  "title": title, "env": {"TERM": term or "dumb"}}
        self.held.append(json.dumps(header).encode() + b"\n")
        self.last_flush = self.started
        self.writes: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=4)
        self.failed: OSError | None = None
        self.writer = threading.Thread(target=self.write, name="recording", daemon=True)
        self.writer.start()

    def _event(self, kind: str, text: bytes) -> None:
        """One event line; ``text`` is the event's JSON string without quotes."""
        now = time.monotonic()
        self.held += (b'[%r, "%s", "' % (round(now - self.started, 6), kind.encode()), text,
                      b'"]\n')
        self.held_bytes += len(text)
        if self.held_bytes > self.FLUSH_AT or len(self.held) > 900 or now - self.last_flush > 1:
            self.flush()
            self.last_flush = now

    def flush(self) -> None:
        """Hand what is held to the writer (which holds a few megabytes at
        most: the session waits when the disk is slower)."""
        if self.failed is not None:
            raise self.failed
        if self.held:
            self.writes.put(self.held)
            self.held = []
        self.held_bytes = 0

    def write(self) -> None:
        """The writer's thread: writes until it gets None."""
        while (pieces := self.writes.get()) is not None:
            if self.failed is not None:
                continue  # (taken off the queue, so that the session never waits)
            try:
                write_pieces(lambda held: os.writev(self.fd, held), pieces)
            except OSError as error:  # raised in the session by the next flush
                self.failed = error

    def _data(self, kind: str, data: bytes) -> None:
        decoder = self.decoders[kind]
        if data.isascii() and not decoder.getstate()[0]:
            self._event(kind, json_ascii(data))  # the common case, many times faster
            return
        text = decoder.decode(data)
        if text:
            self._event(kind, json.dumps(text, ensure_ascii=False)[1:-1].encode())

    def output(self, data: bytes) -> None:
        if data:
            self._data("o", data)

    def input(self, data: bytes) -> None:
        if self.record_input and data:
            self._data("i", data)

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}".encode())

    def marker(self, label: str) -> None:
        self._event("m", json.dumps(label, ensure_ascii=False)[1:-1].encode())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writes.put(None)
            self.writer.join()
            os.close(self.fd)
        if self.failed is not None:
            raise self.failed


def read_cast(path: Path) -> tuple[dict, list[list]]:
    """The header and the events of a recording."""
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        return header, [json.loads(line) for line in f if line.strip()]
