"""The guard's view of the user's terminal: a terminal emulator (pyte) fed
with the session's output, read when the user presses Enter.

pyte reads 0.1 to 0.25 MB a second here, far slower than a ``cat`` of a big
file arrives, so output is fed lazily, and bulk text is cut short without
changing what the screen shows: see :class:`GuardTerminal`.
"""
from __future__ import annotations

import logging

import pyte

log = logging.getLogger("ezpyr.gateway")

# printable ASCII, tab, CR and LF: text that moves the cursor only right,
# down (scrolling at the bottom) or to column 0, and changes no mode
PLAIN = bytes(range(0x20, 0x7F)) + b"\t\r\n"
CRLF = b"\r\n"


class GuardScreen(pyte.Screen):
    """pyte's screen, tolerant of the private SGR sequences (``CSI > … m``,
    xterm's modifyOtherKeys, sent by vim) that pyte's own one rejects."""

    def select_graphic_rendition(self, *attrs, private=False):
        if not private:
            super().select_graphic_rendition(*attrs)


class GuardTerminal:
    """The screen as the user sees it. :meth:`feed` takes the session's
    output; :attr:`screen` is the screen with all of it taken in.

    Output is held back until the screen is read. A run of plain text (see
    PLAIN: it moves the cursor only right, down or to column 0, and changes
    no mode) that begins while no escape sequence is begun and no scrolling
    region is set is kept, and once it is long it is cut short: when its
    head has at least ``rows`` line feeds and ends with CR LF, and the rest
    has at least ``rows - 1`` line feeds, the head is replaced by ``rows``
    CR LFs. Head and replacement both end with the cursor at column 0 of a
    new blank bottom row (after ``rows - 1`` line feeds the cursor is at the
    bottom, so the last one scrolled), and the rest's line feeds scroll every
    older row off the screen: the screen, the cursor and every mode end
    exactly as they would have. tests/gateway/test_screen.py compares the two
    on generated output and on a case for each of these conditions.
    """

    COMPACT_AT = 1 << 16  # bytes of held-back plain text before it is cut short

    def __init__(self, cols: int, rows: int):
        self._screen = GuardScreen(cols, rows)
        self.stream = pyte.ByteStream(self._screen)
        self.plain = bytearray()  # plain text not fed yet

    def feed(self, data: bytes) -> None:
        if (self.plain or self.ground()) and not data.translate(None, PLAIN):
            self.plain += data
            if len(self.plain) > self.COMPACT_AT and not self.compact():
                self.catch_up()  # too few lines to cut: take it in as it is
            return
        self.catch_up()
        self._feed(data)

    @property
    def screen(self) -> GuardScreen:
        self.catch_up()
        return self._screen

    def ground(self) -> bool:
        """No escape sequence begun (pyte's parser takes plain text) and no
        scrolling region (a line feed at the bottom scrolls the whole screen)."""
        return (getattr(self.stream, "_taking_plain_text", None) is True
                and self._screen.margins is None)

    def compact(self) -> bool:
        """Cut the held-back plain text short (see the class); False when it
        has too few lines for that."""
        rows, plain = self._screen.lines, self.plain
        cut = len(plain)
        for _ in range(rows):  # the rows-th line feed from the end
            cut = plain.rfind(b"\n", 0, cut)
            if cut < 0:
                break
        while cut > 0 and plain[cut - 1] != 0x0D:  # back to a CR LF before it
            cut = plain.rfind(b"\n", 0, cut)
        if cut <= 0 or plain.count(b"\n", 0, cut + 1) < rows:
            return False
        self.plain = bytearray(CRLF * rows) + plain[cut + 1:]
        return True

    def catch_up(self) -> None:
        if self.plain:
            self.compact()
            data, self.plain = bytes(self.plain), bytearray()
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self.stream.feed(data)
        except Exception:  # a sequence the emulator cannot parse: start afresh
            log.warning("the guard's terminal emulator could not read a sequence", exc_info=True)
            self.stream = pyte.ByteStream(self._screen)
