"""Recording a session as an asciicast v2 file (asciinema's format): a JSON
header line, then one JSON line per event: ``[seconds, "o", text]`` for
output, ``"i"`` for input (when the setting asks for it), ``"r"`` for a
resize (``"COLSxROWS"``) and ``"m"`` for a marker (a guard refusal)."""
from __future__ import annotations

import codecs
import json
import os
import time
from pathlib import Path


class Recording:
    def __init__(self, path: Path, *, cols: int, rows: int, term: str, title: str,
                 record_input: bool):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self.file = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20)
        self.started = time.monotonic()
        self.record_input = record_input
        self.decoders = {"o": codecs.getincrementaldecoder("utf-8")("replace"),
                         "i": codecs.getincrementaldecoder("utf-8")("replace")}
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(time.time()),
                  "title": title, "env": {"TERM": term or "dumb"}}
        self.file.write(json.dumps(header) + "\n")
        self.last_flush = self.started

    def _event(self, kind: str, text: str) -> None:
        now = time.monotonic()
        self.file.write(json.dumps([round(now - self.started, 6), kind, text],
                                   ensure_ascii=False) + "\n")
        if now - self.last_flush > 1:
            self.file.flush()
            self.last_flush = now

    def _text(self, kind: str, data: bytes) -> str:
        decoder = self.decoders[kind]
        if data.isascii() and not decoder.getstate()[0]:
            return data.decode("ascii")  # the common case, many times faster
        return decoder.decode(data)

    def output(self, data: bytes) -> None:
        text = self._text("o", data)
        if text:
            self._event("o", text)

    def input(self, data: bytes) -> None:
        if self.record_input:
            text = self._text("i", data)
            if text:
                self._event("i", text)

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def marker(self, label: str) -> None:
        self._event("m", label)

    def close(self) -> None:
        self.file.close()


def read_cast(path: Path) -> tuple[dict, list[list]]:
    """The header and the events of a recording."""
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        return header, [json.loads(line) for line in f if line.strip()]
