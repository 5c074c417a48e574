"""Servers to and from CSV files.

Export writes one row per server, never a password. A cell that a
spreadsheet would run as a formula (it starts with = + - @, a tab or a
carriage return) gets a ``'`` in front; so does a cell that itself starts
with ``'``, so that import can take exactly one such ``'`` off again and an
exported file imports back unchanged.

Import reads a file here (:class:`CsvFile`) and checks every row with the
same rules as the server form (:func:`check_file`, through
:meth:`ServerService.validate`); the job in ``imports`` adds the servers
only when no row has an error: all or nothing.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Callable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ezpyr.secretbox import SecretBox
from ezpyr.servers.models import Server
from ezpyr.servers.services import (InvalidServer, PreloadedLookup, ServerInput, ServerService,
                                    ServerValues)
from ezpyr.validation import Invalid

COLUMNS = ("name", "host", "port", "remote_user", "auth_method", "group", "description")
OPTIONAL_COLUMNS = ("password",)
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
# rows checked between two reports of the progress
PROGRESS_ROWS = 1000
# Cells a spreadsheet would treat as a formula; "'" is protected too (see above).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PROTECTED_STARTS = FORMULA_STARTS + ("'",)


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(PROTECTED_STARTS) else text


def cell_value(text: str) -> str:
    """Undo :func:`csv_cell`: one ``'`` before a protected start comes off."""
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(PROTECTED_STARTS):
        return text[1:]
    return text


def export_csv(dbsession: Session) -> str:
    """Every server, by name, as CSV text (with a header row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    servers = dbsession.scalars(
        select(Server).options(joinedload(Server.group)).order_by(Server.name)
    )
    for s in servers:
        writer.writerow([csv_cell(v) for v in (
            s.name, s.host, s.port, s.remote_user, s.auth_method,
            s.group.name if s.group else "", s.description,
        )])
    return out.getvalue()


class ImportRefused(Invalid):
    """The file as a whole cannot be read (too big, not UTF-8, bad header…):
    nothing was imported."""

    def __init__(self, message: str):
        super().__init__(f"{message} Nothing was imported.")


def decode(data: bytes) -> str:
    """The file's text: refused when it is too big or not UTF-8."""
    if len(data) > MAX_BYTES:
        raise ImportRefused(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into smaller files."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ImportRefused(
            f"The file is not UTF-8 text (line {line} has a byte that is not UTF-8). "
            "Save it as “CSV UTF-8” and upload it again."
        ) from None


def _line_message(line: int, message: str) -> str:
    # "Port must be…" reads as "line 4: port must be…" (but "IPv4…" stays).
    word = message.split(" ", 1)[0]
    if word[:1].isupper() and (len(word) == 1 or word[1:].islower()):
        message = message[0].lower() + message[1:]
    return f"line {line}: {message}"


def _header(row: list[str]) -> list[str]:
    names = [h.strip().lower() for h in row]
    known = COLUMNS + OPTIONAL_COLUMNS
    unknown = [n for n in names if n not in known]
    missing = [c for c in COLUMNS if c not in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    problems = []
    if missing:
        problems.append("it lacks the column" + ("s " if len(missing) > 1 else " ")
                        + ", ".join(missing))
    if unknown:
        problems.append("it has unknown column" + ("s " if len(unknown) > 1 else " ")
                        + ", ".join(repr(u) for u in unknown))
    if twice:
        problems.append("it names " + ", ".join(twice) + " more than once")
    if problems:
        raise ImportRefused(
            "The first line must be the header " + ",".join(COLUMNS)
            + " (and optionally password), but " + "; ".join(problems) + "."
        )
    return names


@dataclass
class Row:
    line: int  # where the row starts in the file
    cells: list[str]


class CsvFile:
    """A CSV file of servers. Opening it reads as far as its first server:
    an empty file, a wrong header or a header without servers is refused
    at once (:class:`ImportRefused`); :meth:`rows` then reads them all."""

    def __init__(self, text: str):
        self.text = text
        self.header: list[str] = []
        for _row in self._read():
            return
        if not self.header:
            raise ImportRefused("The file is empty: it needs a header line and a line per server.")
        raise ImportRefused("The file has a header but no servers.")

    def _read(self) -> Iterator[Row]:
        reader = csv.reader(io.StringIO(self.text, newline=""), strict=True)
        line = 1
        header = None
        try:
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue  # blank line
                if header is None:
                    header = self.header = _header(cells)
                    continue
                yield Row(start, cells)
        except csv.Error as exc:
            raise ImportRefused(f"Line {reader.line_num}: this is not valid CSV ({exc}).") from None

    def rows(self) -> list[Row]:
        """Every row after the header; refused when the file is not valid
        CSV or holds more than :data:`MAX_ROWS` servers."""
        rows = []
        for row in self._read():
            if len(rows) == MAX_ROWS:
                raise ImportRefused(f"The file has more than {MAX_ROWS:,} servers; split it into smaller files.")
            rows.append(row)
        return rows

    def server_input(self, row: Row) -> ServerInput | None:
        """What the row holds, as the server form would (None: it has not
        as many cells as the header has columns)."""
        if len(row.cells) != len(self.header):
            return None
        cells = {name: cell_value(value) for name, value in zip(self.header, row.cells)}
        return ServerInput(
            name=cells["name"].strip(), host=cells["host"], port=cells["port"],
            remote_user=cells["remote_user"], auth_method=cells["auth_method"],
            password=cells.get("password", ""), group_name=cells["group"],
            description=cells["description"],
        )


@dataclass
class Checked:
    """Every row of a file checked: the values to store, or the errors
    (each with its line)."""

    rows: int = 0
    values: list[ServerValues] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_file(dbsession: Session, secret_box: SecretBox, csv_file: CsvFile,
               progress: Callable[[int, int], None] | None = None) -> Checked:
    """Check every row of ``csv_file`` as the server form checks one
    server, and that no name is used twice in the file; reads nothing but
    the names the file uses and the server groups (set-wise, up front).
    ``progress(checked, rows)`` is told every :data:`PROGRESS_ROWS` rows.
    Changes nothing."""
    rows = csv_file.rows()
    inputs = [csv_file.server_input(row) for row in rows]
    lookup = PreloadedLookup(dbsession, [data.name for data in inputs if data is not None])
    service = ServerService(dbsession, secret_box)
    checked = Checked(rows=len(rows))
    seen: dict[str, int] = {}  # lower-case name -> line it is first on
    for number, (row, data) in enumerate(zip(rows, inputs), 1):
        if progress is not None and number % PROGRESS_ROWS == 0:
            progress(number, len(rows))
        if data is None:
            checked.errors.append(_line_message(
                row.line, f"it has {len(row.cells)} cells, but the header names {len(csv_file.header)} columns."
            ))
            continue
        row_errors = []
        try:
            values = service.validate(data, lookup=lookup)
        except InvalidServer as error:
            row_errors = [e.message for e in error.errors]
            values = None
        key = data.name.lower()
        if key and key in seen:
            row_errors.insert(0, f"the name {data.name!r} is already used on "
                                 f"line {seen[key]} of this file.")
        elif key:
            seen[key] = row.line
        checked.errors.extend(_line_message(row.line, m) for m in row_errors)
        if values is not None and not row_errors:
            checked.values.append(values)
    if progress is not None:
        progress(len(rows), len(rows))
    return checked
