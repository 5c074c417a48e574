"""Servers to and from CSV files.

Export writes one row per server, never a password. A cell that a
spreadsheet would run as a formula (it starts with = + - @, a tab or a
carriage return) gets a ``'`` in front; so does a cell that itself starts
with ``'``, so that import can take exactly one such ``'`` off again and an
exported file imports back unchanged.

Import checks every row first, with the same rules as the server form
(:meth:`ServerService.validate`), and adds the servers only when no row has
an error: all or nothing.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ezpyr.secretbox import SecretBox
from ezpyr.servers.models import Server
from ezpyr.servers.services import InvalidServer, PreloadedLookup, ServerInput, ServerService

COLUMNS = ("name", "host", "port", "remote_user", "auth_method", "group", "description")
OPTIONAL_COLUMNS = ("password",)
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 100_000
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


class ImportRefused(ValueError):
    """The file as a whole cannot be read (too big, not UTF-8, bad header…)."""


@dataclass
class ImportResult:
    imported: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _decode(data: bytes) -> str:
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


class ServerImport:
    def __init__(self, dbsession: Session, secret_box: SecretBox):
        self.dbsession = dbsession
        self.service = ServerService(dbsession, secret_box)

    def _header(self, row: list[str]) -> list[str]:
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

    def run(self, data: bytes) -> ImportResult:
        """Check every row of the CSV ``data``; add all its servers if no row
        has an error, none otherwise. Raises :class:`ImportRefused` when the
        file cannot be read at all."""
        text = _decode(data)
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        result = ImportResult()
        lookup = PreloadedLookup(self.dbsession)
        seen: dict[str, int] = {}  # lower-case name -> line it is first on
        checked = []
        header = None
        rows = 0
        line = 1
        try:
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue  # blank line
                if header is None:
                    header = self._header(cells)
                    continue
                rows += 1
                if rows > MAX_ROWS:
                    raise ImportRefused(
                        f"The file has more than {MAX_ROWS:,} servers; split it into smaller files."
                    )
                if len(cells) != len(header):
                    result.errors.append(_line_message(
                        start, f"it has {len(cells)} cells, but the header names {len(header)} columns."
                    ))
                    continue
                row = {name: cell_value(value) for name, value in zip(header, cells)}
                data_in = ServerInput(
                    name=row["name"].strip(), host=row["host"], port=row["port"],
                    remote_user=row["remote_user"], auth_method=row["auth_method"],
                    password=row.get("password", ""), group_name=row["group"],
                    description=row["description"],
                )
                row_errors = []
                try:
                    values = self.service.validate(data_in, lookup=lookup)
                except InvalidServer as error:
                    row_errors = [e.message for e in error.errors]
                    values = None
                key = data_in.name.lower()
                if key and key in seen:
                    row_errors.insert(0, f"the name {data_in.name!r} is already used on "
                                         f"line {seen[key]} of this file.")
                elif key:
                    seen[key] = start
                result.errors.extend(_line_message(start, m) for m in row_errors)
                if values is not None and not row_errors:
                    checked.append(values)
        except csv.Error as exc:
            raise ImportRefused(f"Line {reader.line_num}: this is not valid CSV ({exc}).") from None
        if header is None:
            raise ImportRefused("The file is empty: it needs a header line and a line per server.")
        if not rows:
            raise ImportRefused("The file has a header but no servers.")
        if result.errors:
            return result
        for values in checked:
            self.service.add(values)
        self.dbsession.flush()
        result.imported = len(checked)
        return result
