"""A Verify result as an admin reads it: each differing row named as
admins know it (server web1, user alice), its two versions field by field
with the differing fields marked, and the change that made each version in
words ("made on node1, then master, by alice at 14:59:02 UTC"); filtered
and paged when many rows differ."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from ezpyr.meta import utcnow

# table -> (what one row is called, the column that names it)
ROW_WORDS = {
    "servers": ("server", "name"), "server_groups": ("server group", "name"),
    "users": ("user", "username"), "user_groups": ("user group", "name"),
    "user_keys": ("SSH key", "name"), "command_rules": ("command rule", "pattern"),
    "settings": ("setting", "name"), "gateway_keys": ("gateway key", "fingerprint"),
    "access_rules": ("access rule", None),
}
# shown as "secret", never as their stored value
SECRET_COLUMNS = {"password_encrypted", "private_key_encrypted", "totp_secret", "password_hash"}
PER_PAGE = 50


def row_label(table: str, here: dict | None, there: dict | None, row_id: str) -> str:
    """"server web1" (or "server web1 / web-1" when the name itself differs)."""
    kind, column = ROW_WORDS.get(table, (table.replace("_", " ").rstrip("s"), None))
    names = []
    for version in (here, there):
        value = (version or {}).get(column) if column else None
        if value not in (None, "") and value not in names:
            names.append(str(value))
    return f"{kind} {' / '.join(names) if names else row_id[:8]}"


def shown_value(column: str, value) -> str:
    if value is None:
        return "—"
    if column in SECRET_COLUMNS:
        return "(secret)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def when(at: str, now: dt.datetime | None = None) -> str:
    """"14:59:02 UTC" today, "2026-11-24 14:59:02 UTC" another day."""
    try:
        moment = dt.datetime.fromisoformat(at.rstrip("Z"))
    except (AttributeError, ValueError):
        return str(at)
    today = (now or utcnow()).date()
    return f"{moment:%H:%M:%S} UTC" if moment.date() == today else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def made_by(change: dict | None, node_names: dict[str, str]) -> str:
    """The change that made a version, in words."""
    if not change:
        return "made before the changes this node keeps (or by a copy)"
    origin = node_names.get(change.get("origin"), f"node {str(change.get('origin'))[:8]}")
    verb = "deleted" if change.get("op") == "delete" else "made"
    return (f"{verb} on {origin}, then master, by {change.get('actor') or 'an unknown user'} "
            f"at {when(change.get('at'))}")


@dataclass
class FieldVersions:
    name: str
    here: str
    there: str
    differs: bool


@dataclass
class RowDiff:
    table: str
    id: str
    label: str
    state: str  # "differs" | "only on <here>" | "only on <there>"
    fields: list[FieldVersions]
    here_made: str
    there_made: str

    @property
    def differing(self) -> list[FieldVersions]:
        return [f for f in self.fields if f.differs]

    @property
    def equal(self) -> list[FieldVersions]:
        return [f for f in self.fields if not f.differs]


@dataclass
class TableSummary:
    table: str
    rows_here: int
    rows_there: int
    in_sync: bool
    differing: int  # rows named in the result
    more: int  # rows that differ beyond those


@dataclass
class Reconciliation:
    here: str  # this node's name
    there: str  # the other node's name
    tables: list[TableSummary]
    rows: list[RowDiff]  # this page's, after the filter
    matching: int  # rows the filter matches, on every page
    page: int
    pages: int
    table_filter: str = ""
    text_filter: str = ""
    more: int = 0  # differing rows not named (a table choice decides them)
    table_names: list[str] = field(default_factory=list)


def _row(table: str, diff: dict, here: str, there: str, node_names: dict) -> RowDiff:
    mine, theirs = diff.get("here"), diff.get("there")
    columns = [c for c in (mine or theirs or {}) if c != "id"]
    fields = [FieldVersions(c, shown_value(c, (mine or {}).get(c)) if mine else "—",
                            shown_value(c, (theirs or {}).get(c)) if theirs else "—",
                            (mine or {}).get(c) != (theirs or {}).get(c))
              for c in columns]
    fields.sort(key=lambda f: not f.differs)  # differing fields first, in their order
    state = "differs" if mine and theirs else f"only on {here}" if mine else f"only on {there}"
    return RowDiff(table, diff["id"], row_label(table, mine, theirs, diff["id"]), state, fields,
                   made_by(diff.get("here_change"), node_names) if mine else "no such row",
                   made_by(diff.get("there_change"), node_names) if theirs else "no such row")


def reconciliation(result: dict, *, here: str, there: str, node_names: dict[str, str],
                   table: str = "", text: str = "", page: int = 1,
                   per_page: int = PER_PAGE) -> Reconciliation:
    tables, rows, more = [], [], 0
    text = (text or "").strip().lower()
    for report in result["tables"]:
        named = [d for d in report["differing"] if d.get("id")]
        extra = sum(d.get("more", 0) for d in report["differing"] if not d.get("id"))
        more += extra
        tables.append(TableSummary(report["table"], report["rows_here"], report["rows_there"],
                                   report["in_sync"], len(named), extra))
        if table and report["table"] != table:
            continue
        for diff in named:
            row = _row(report["table"], diff, here, there, node_names)
            if text and text not in row.label.lower() and text not in row.id:
                continue
            rows.append(row)
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(1, page), pages)
    return Reconciliation(here, there, tables, rows[(page - 1) * per_page: page * per_page], len(rows),
                          page, pages, table, text, more,
                          [t.table for t in tables if not t.in_sync])
