"""The recording writes ASCII output without json.dumps: whatever bytes a
server sends, in whatever pieces, the .cast file must be valid JSON lines
that replay exactly the text json.dumps would have written."""
from __future__ import annotations

import codecs
import errno
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ezpyr.gateway.recording import Recording, json_ascii, read_cast
from support.net import wait_until

PIECES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=30).map(str.encode),
    st.sampled_from([b"\r\n", b"\r", b"\n", b"a\rb\nc", b'"', b"\\", b"\\r\\n", b"\x1b[31m",
                     b"\t", b"\x00", b"\x7f", "é漢".encode(), "é".encode()[:1], b"\xff"]),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(PIECES, max_size=30))
def test_json_ascii_writes_what_json_dumps_writes(pieces):
    data = b"".join(pieces).decode("ascii", "replace").encode("ascii", "replace")
    assert json_ascii(data) == json.dumps(data.decode(), ensure_ascii=False)[1:-1].encode()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(PIECES, max_size=30))
def test_the_cast_replays_every_byte(tmp_path_factory, pieces):
    path = tmp_path_factory.mktemp("cast") / "s.cast"
    recording = Recording(path, cols=80, rows=24, term="xterm", title="t", record_input=True)
    recording.FLUSH_AT = 64  # written in many pieces
    for piece in pieces:
        recording.output(piece)
        recording.input(piece)
    recording.resize(100, 30)
    recording.marker('guard refused: "rm -rf /"')
    recording.close()
    header, events = read_cast(path)
    assert header["width"] == 80 and header["env"] == {"TERM": "xterm"}
    expected = codecs.getincrementaldecoder("utf-8")("replace")
    shown = "".join(expected.decode(p) for p in pieces)
    assert "".join(e[2] for e in events if e[1] == "o") == shown
    assert "".join(e[2] for e in events if e[1] == "i") == shown
    assert events[-2][1:] == ["r", "100x30"]
    assert events[-1][1:] == ["m", 'guard refused: "rm -rf /"']
    times = [e[0] for e in events]
    assert times == sorted(times)


def test_a_write_that_fails_reaches_the_session(tmp_path):
    """The writes are made by the recording's thread; one that fails (a full
    disk) is raised in the session by the next flush, and by close()."""
    recording = Recording(tmp_path / "s.cast", cols=80, rows=24, term="xterm", title="t",
                          record_input=False)
    full = os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC
    os.dup2(full, recording.fd)
    os.close(full)
    recording.output(b"x" * (Recording.FLUSH_AT + 1))  # more than FLUSH_AT: handed over
    wait_until(lambda: recording.failed is not None, 10, message="the writer's failure")
    with pytest.raises(OSError) as raised:
        recording.output(b"y" * (Recording.FLUSH_AT + 1))
    assert raised.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        recording.close()
    assert not recording.writer.is_alive()
