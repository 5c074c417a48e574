"""The CSV import of servers, run as a job with a progress bar.

:meth:`ServerImports.start` is what the import page and ``ezpyr-admin
CONFIG servers import FILE`` call: it refuses at once a file that cannot be
read (too big, not UTF-8, empty, a wrong header), a node that takes no
changes and a second import while one runs (the job lock); otherwise it
creates the job, hands it the file (encrypted with the node's secret key:
a file may hold server passwords) and returns the work to start once that
is committed. The page then follows the job; the command waits for it.

The job (:func:`import_servers`) checks every row first (progress: rows
checked), then adds every server in **one transaction** (progress: servers
added), a thousand rows a statement, each thousand recorded as one outbox
entry of that transaction: the other node gets them as any other change.
A row in error, a name or group changed meanwhile, a crash of the process
(even ``kill -9``) or the node becoming a slave leaves no server of the
file added. On SQLite (one writer at a time) the job's progress is written
before and after that transaction, not during it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezpyr.activity.services import ActivityLog
from ezpyr.jobs.services import JobRefused, JobService, Launch, Progress, take_input
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import WRITABLE_ROLES, NodeIsReadOnly, record_pending, wake_after_commit
from ezpyr.replication.rows import encode_row
from ezpyr.replication.writes import recording
from ezpyr.secretbox import SecretBox
from ezpyr.servers import csvio
from ezpyr.servers.models import Server
from ezpyr.servers.services import ServerService
from ezpyr.validation import Invalid

KIND = "servers-import"
LOCK = "servers-import"
# rows a statement, and an outbox entry, of the insert
CHUNK_ROWS = 1000
# characters of the file a stored part holds
INPUT_PART = 1_000_000
# row errors the job keeps for its page and the command (the count says how many more)
KEPT_ERRORS = 100


def counted(count: int, word: str) -> str:
    """"1 server", "5,000 servers"."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def servers(count: int) -> str:
    return counted(count, "server")


@dataclass(frozen=True)
class Importer:
    """Who imports, as the activity log and the outbox name them."""

    username: str
    remote_addr: str
    actor: str  # the outbox's word for who made the change
    user_id: str | None = None
    via: str = ""  # how the import came (an API token), as the activity log says it


class ServerImports:
    def __init__(self, dbsession: Session, secret_box: SecretBox, node_name: str, importer: Importer):
        self.dbsession = dbsession
        self.secret_box = secret_box
        self.node_name = node_name
        self.importer = importer

    def start(self, data: bytes, source: str) -> Launch:
        """The import of ``data`` (the file's bytes; ``source`` names it in
        messages) as a job, once the caller's transaction commits."""
        text = csvio.decode(data)
        csvio.CsvFile(text)  # as far as its first server
        node = self.dbsession.scalars(select(NodeIdentity)).first()
        if node is not None and node.role not in WRITABLE_ROLES:
            raise NodeIsReadOnly(node.role)
        jobs = JobService(self.dbsession)
        job = jobs.create(KIND, self.importer.username, f"import {source}", lock=LOCK, what="import")
        jobs.keep_input(job, (self.secret_box.encrypt(text[start:start + INPUT_PART])
                              for start in range(0, len(text), INPUT_PART)))
        work = functools.partial(import_servers, self.dbsession.get_bind(), self.secret_box, job.id,
                                 source, self.node_name, self.importer)
        return Launch(job, work)


def import_servers(engine, secret_box: SecretBox, job_id: str, source: str, node_name: str,
                   importer: Importer, progress: Progress) -> dict:
    """The job: check every row, then add them all or none."""
    progress(0, 1, "reading the file")
    parts = take_input(engine, job_id)
    if not parts:
        raise Invalid("The file handed to this import is gone; nothing was imported. Import it again.")
    csv_file = csvio.CsvFile("".join(secret_box.decrypt(part) for part in parts))
    del parts

    def checking(done: int, rows: int) -> None:
        progress(done, 2 * rows, f"rows checked: {done:,} of {rows:,}")

    with Session(engine) as session:
        checked = csvio.check_file(session, secret_box, csv_file, checking)
        if not checked.ok:
            count = len(checked.errors)
            raise JobRefused(f"{counted(count, 'error')} in {source}; nothing was imported. Fix them and "
                             "import the file again.",
                             {"errors": checked.errors[:KEPT_ERRORS], "error_count": count, "rows": checked.rows})
        now = utcnow()
        service = ServerService(session, secret_box)
        rows = [service.new_row(values, now) for values in checked.values]
    del checked, csv_file
    added = add_servers(engine, rows, importer, node_name, progress)
    progress(2 * added, 2 * added, f"{servers(added)} added from {source}")
    return {"added": added, "rows": added}


def add_servers(engine, rows: list[dict], importer: Importer, node_name: str, progress: Progress) -> int:
    """Insert ``rows`` (checked, every column given) in one transaction,
    with their outbox entries and the activity entry; nothing of it stays
    when anything fails."""
    total = len(rows)
    table = Server.__table__
    # SQLite takes one writer at a time: the progress row would wait for this transaction
    report = progress if engine.dialect.name != "sqlite" else None
    progress(total, 2 * total, f"adding {servers(total)}")
    try:
        with Session(engine) as session:
            connection = session.connection()
            node_id = None
            with recording(connection):
                for start in range(0, total, CHUNK_ROWS):
                    chunk = rows[start:start + CHUNK_ROWS]
                    connection.execute(insert(table), chunk)
                    node_id = record_pending(connection, [
                        {"table": table.name, "op": "upsert", "pk": row["id"], "row": encode_row(table, row)}
                        for row in chunk], importer.actor)
                    if report is not None:
                        done = start + len(chunk)
                        report(total + done, 2 * total, f"servers added: {done:,} of {total:,}")
            if engine.dialect.name == "sqlite":
                refuse_names_twice(connection)
            ActivityLog(session, node_name).record(
                "server.import", servers(total), importer.via, username=importer.username,
                remote_addr=importer.remote_addr, user_id=importer.user_id)
            if node_id is not None:
                wake_after_commit(session, node_id)
            session.commit()
    except IntegrityError as error:
        detail = str(error.orig).strip().splitlines()[0] if error.orig else ""
        raise Invalid(f"The servers or server groups changed while the file was being checked ({detail}); "
                      "nothing was imported. Import the file again.") from None
    return total


def refuse_names_twice(connection) -> None:
    """On SQLite the unique index on server names compares with case: a
    server added while the file was checked may hold one of its names in
    another case. Asked inside the import's transaction, which holds the
    database's write lock by now."""
    lower = func.lower(Server.__table__.c.name)
    twice = list(connection.execute(select(lower).group_by(lower).having(func.count() > 1).limit(5)).scalars())
    if twice:
        raise Invalid(f"Servers named {', '.join(repr(name) for name in twice)} were added while the file "
                      "was being checked; nothing was imported. Import the file again.")
