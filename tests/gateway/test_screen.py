"""The guard's terminal holds bulk output back and cuts plain text short;
the screen it shows must be exactly the one pyte shows when fed every byte
at once: the same characters and attributes in every cell, the same cursor,
modes and scrolling region, read at any point of the output."""
from __future__ import annotations

import base64
import os

import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ezpyr.gateway.screen import GuardScreen, GuardTerminal

LINE = st.builds(lambda text, end: text.encode() + end,
                 st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
                 st.sampled_from([b"\r\n"] * 6 + [b"\n", b"\r", b"", b"\t"]))
# many lines at once (bulk output, what gets cut short)
BLOCK = st.lists(LINE, min_size=1, max_size=30).map(b"".join)
CONTROLS = st.sampled_from([
    # cursor moves, scrolling regions (also with the cursor below them), modes
    b"\x1b[H", b"\x1b[2J", b"\x1b[3;2H", b"\x1b[1;1H", b"\x1b[9;1H", b"\x1b[A", b"\x1b[2B",
    b"\x1b[K", b"\x1bM", b"\x1b[2;4r", b"\x1b[1;2r", b"\x1b[r", b"\x1b[?1049h", b"\x1b[?1049l",
    b"\x1b7", b"\x1b8", b"\x1b[1;31m", b"\x1b[0m", b"\x1b[?7l", b"\x1b[?7h", b"\x1b[4h",
    b"\x1b[4l", b"\x1b[20h", b"\x1b[20l", b"\x1b[?6h", b"\x1b[?6l", b"\x1bH", b"\x1b[3g",
    b"\x08", b"\x07", b"\x1b[>4;1m", b"\x1b]0;title\x07", b"\x1b[L", b"\x1b[M", b"\x1b[P",
    # UTF-8, wide characters, a character cut in two, bytes that are not UTF-8
    "é漢".encode(), "é".encode()[:1], "漢".encode()[:2], b"\xff", b"\x00", b"\x7f",
    b"\x1b", b"\x1b[",
])
PIECES = st.one_of(BLOCK, BLOCK, LINE, CONTROLS, CONTROLS, st.binary(max_size=8))


def state(screen: GuardScreen) -> tuple:
    cells = tuple(tuple(screen.buffer[y][x] for x in range(screen.columns))
                  for y in range(screen.lines))
    return (cells, screen.display, screen.cursor.x, screen.cursor.y, screen.cursor.attrs,
            frozenset(screen.mode), screen.margins, frozenset(screen.tabstops),
            [(p.cursor.x, p.cursor.y, p.cursor.attrs, p.origin, p.wrap)
             for p in screen.savepoints])


def assert_same_screen(cols: int, rows: int, chunks: list[bytes], reads=()) -> None:
    """Feed ``chunks`` to pyte at once and to the guard's terminal (cutting
    short as early as it can); the screens must agree at every read and at
    the end."""
    eager = GuardScreen(cols, rows)
    stream = pyte.ByteStream(eager)
    lazy = GuardTerminal(cols, rows)
    lazy.COMPACT_AT = 16
    for n, chunk in enumerate(chunks):
        try:
            stream.feed(chunk)
        except Exception:  # as the terminal does: the parser starts afresh
            stream = pyte.ByteStream(eager)
        lazy.feed(chunk)
        if n in reads:
            assert state(lazy.screen) == state(eager)
    assert state(lazy.screen) == state(eager)


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cols=st.integers(3, 12), rows=st.integers(1, 6),
       pieces=st.lists(PIECES, max_size=60),
       cuts=st.lists(st.integers(0, 2000), max_size=12),
       reads=st.sets(st.integers(0, 12), max_size=4))
def test_held_back_output_shows_the_same_screen(cols, rows, pieces, cuts, reads):
    output = b"".join(pieces)
    bounds = sorted({0, len(output), *(c for c in cuts if c < len(output))})
    assert_same_screen(cols, rows, [output[a:b] for a, b in zip(bounds, bounds[1:])], reads)


OLD = b"OLDOLDOL\r\nOLDOLDOL\r\nOLDOLDOL"  # a full screen of 8 x 3 that must scroll off


@pytest.mark.parametrize("chunks", [
    # the cursor starts at the top: the head needs rows line feeds to reach the bottom
    [OLD, b"\x1b[H", b"a\r\nb\r\nc\r\nd\r\ne", b"f"],
    [OLD, b"\x1b[H", b"a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng", b"h"],
    # a bare line feed keeps the column: the cut is after a CR LF only
    [b"x\r\ny\r\nz\r\nabcdef\n", b"ab\nCD\r\nEF", b"G"],
    # the rest needs rows - 1 line feeds to scroll the old rows off
    [OLD, b"\r\na\r\nb\r\nc\r\nd", b"e"],
    # a scrolling region, the cursor below it: line feeds do not scroll there
    [b"\x1b[1;2r\x1b[3;1H", b"abcdefgh\r\n" * 4 + b"X\r\nY", b"Z"],
    # an escape sequence begun: plain text is its parameters
    [OLD, b"\x1b[", b"2;3H\r\nq\r\nr\r\ns\r\nt\r\nu", b"v"],
], ids=["cursor-at-top", "cursor-at-top-longer", "bare-line-feed", "rest-scrolls-off",
        "scrolling-region", "escape-begun"])
def test_cut_short_only_when_it_shows_the_same(chunks):
    assert_same_screen(8, 3, chunks, reads={len(chunks) - 2})


def test_a_big_cat_is_cut_short_and_ends_on_the_same_screen():
    text = base64.encodebytes(os.urandom(3 << 20)).replace(b"\n", b"\r\n")
    terminal = GuardTerminal(80, 24)
    for start in range(0, len(text), 65536):
        terminal.feed(text[start:start + 65536])
        assert len(terminal.plain) <= 2 * 65536 + GuardTerminal.COMPACT_AT
    eager = GuardScreen(80, 24)
    pyte.ByteStream(eager).feed(text[-20000:])  # the last rows are all that shows
    assert state(terminal.screen) == state(eager)
    assert terminal.screen.display[-2].strip() == text.splitlines()[-1].decode()
