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
file is buffered (1 MB) and flushed at most once a second while the
session runs, and at its end.
"""
from __future__ import annotations

import codecs
import json
import os
import time
from pathlib import Path

# what json.dumps(…, ensure_ascii=False) writes for the bytes it escapes
ESCAPES = {byte: json.dumps(chr(byte))[1:-1].encode() for byte in (*range(0x20), 0x22, 0x5C)}
NOT_ESCAPED = bytes(b for b in range(256) if b not in ESCAPES)
BACKSLASH = 0x5C


def json_ascii(data: bytes) -> bytes:
    """The JSON string (quotes included) of ASCII ``data``, as json.dumps
    writes it; a pass over the data per kind of byte it has to escape."""
    escaped = data.translate(None, NOT_ESCAPED)  # only the bytes to escape, usually few
    if escaped:
        if BACKSLASH in escaped:  # first: the other escapes add backslashes
            data = data.replace(b"\\", b"\\\\")
        for byte, replacement in ESCAPES.items():
            if byte != BACKSLASH and byte in escaped:
                data = data.replace(bytes((byte,)), replacement)
    return b'"' + data + b'"'


class Recording:
    def __init__(self, path: Path, *, cols: int, rows: int, term: str, title: str,
                 record_input: bool):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self.file = os.fdopen(fd, "wb", buffering=1 << 20)
        self.started = time.monotonic()
        self.record_input = record_input
        self.decoders = {"o": codecs.getincrementaldecoder("utf-8")("replace"),
                         "i": codecs.getincrementaldecoder("utf-8")("replace")}
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(time.time()),
                  "title": title, "env": {"TERM": term or "dumb"}}
        self.file.write(json.dumps(header).encode() + b"\n")
        self.last_flush = self.started

    def _event(self, kind: str, text: bytes) -> None:
        """One event line; ``text`` is the event's JSON string, quotes included."""
        now = time.monotonic()
        self.file.write(b"[%r, \"%s\", " % (round(now - self.started, 6), kind.encode()))
        self.file.write(text)
        self.file.write(b"]\n")
        if now - self.last_flush > 1:
            self.file.flush()
            self.last_flush = now

    def _data(self, kind: str, data: bytes) -> None:
        decoder = self.decoders[kind]
        if data.isascii() and not decoder.getstate()[0]:
            self._event(kind, json_ascii(data))  # the common case, many times faster
            return
        text = decoder.decode(data)
        if text:
            self._event(kind, json.dumps(text, ensure_ascii=False).encode())

    def output(self, data: bytes) -> None:
        if data:
            self._data("o", data)

    def input(self, data: bytes) -> None:
        if self.record_input and data:
            self._data("i", data)

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", json.dumps(f"{cols}x{rows}").encode())

    def marker(self, label: str) -> None:
        self._event("m", json.dumps(label, ensure_ascii=False).encode())

    def close(self) -> None:
        self.file.close()


def read_cast(path: Path) -> tuple[dict, list[list]]:
    """The header and the events of a recording."""
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        return header, [json.loads(line) for line in f if line.strip()]
