"""Add: the primary's side of setting up a cluster with a secondary.

Checks the secondary (version, build, schema revision, state), hands it the
cluster secret and the key for secrets at rest, copies every replicated
table as one snapshot taken at a known version vector, in chunks, and only
then records the secondary as this node's slave. Any failure aborts the
secondary's half-made copy and leaves this node as it was.
"""
from __future__ import annotations

import secrets
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, update

from ezpyr import __version__
from ezpyr.accounts.runner import accounts_after_add
from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable
from ezpyr.cluster.models import ClusterPeer, Link
from ezpyr.cluster.services import BUILD
from ezpyr.cluster.setup import SECONDARY, NotSealed, seal, transfer_box, unseal
from ezpyr.cluster.snapshot import read_snapshot, table_counts
from ezpyr.replication.capture import sequence_committed
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity, Role
from ezpyr.replication.broker import changes_queue, connect, describe
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.schema import code_revision
from ezpyr.validation import Invalid

# Snapshot chunks sent to the secondary at once, each in its own request
# (and its own transaction there).
SENDERS = 2

ADDRESS_HELP = ("host:port of the secondary's panel, e.g. 10.0.0.2:6543, "
                "or https://host:port when its cluster API is served over TLS")


def check_address(address: str) -> str:
    address = (address or "").strip()
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    if (scheme not in ("", "http", "https") or not host or "/" in rest or not port.isdigit()
            or not 0 < int(port) < 65536 or any(c.isspace() for c in address)):
        raise Invalid(f"That is not an address ({ADDRESS_HELP}).", "address")
    return address



def check_secondary(hello: dict) -> None:
    """Each mismatch has its own message."""
    if hello.get("version") != __version__:
        raise Invalid(f"The secondary runs ezpyr {hello.get('version')}, this node {__version__}: "
                      "install the same version on both.")
    if str(hello.get("build")) != BUILD:
        raise Invalid(f"The secondary is build {hello.get('build')}, this node build {BUILD}: "
                      "install the same build on both.")
    if hello.get("schema_revision") != code_revision():
        raise Invalid(f"The secondary's database is at schema revision {hello.get('schema_revision')}, "
                      f"this node's at {code_revision()}: run ezpyr-init on the older one.")
    if hello.get("role") != SECONDARY:
        raise Invalid(f"The secondary is in state {hello.get('role')!r}, not awaiting setup: "
                      "reinstall it with ezpyr-init CONFIG --secondary <this node's address>.")


def _call(client, method, path, body=None):
    try:
        return client.call(method, path, body)
    except PeerUnreachable as error:
        raise Invalid(f"The secondary did not answer: {error}.") from None
    except PeerRefused as error:
        if error.code == "bad-signature":
            raise Invalid("The secondary refused the setup key: check the key it printed "
                          "(each key works once).") from None
        if error.code == "not-granted":
            raise Invalid("The secondary does not accept requests from this node's address: install "
                          "it with ezpyr-init CONFIG --secondary <this node's address>.") from None
        raise Invalid(f"The secondary refused: {error.message}") from None


def _sealed_call(client, setup_key, path, body):
    """A setup request whose payload and answer travel sealed under the
    setup key (the broker's password, the rows and their password hashes)."""
    try:
        return unseal(setup_key, _call(client, "POST", path, seal(setup_key, body)))
    except NotSealed as error:
        raise Invalid(f"The secondary's answer to {path} could not be read: {error}.") from None


def declare_change_queues(own_broker: str, secondary_id: str, secondary_broker: str, primary_id: str,
                          ca_file: str | None = None):
    """Both change queues, before the secondary finishes: its worker and
    this node's start consuming and relaying as soon as it has, and two
    processes creating one queue at once on the server-less transport
    collide on its unique name (``UNIQUE constraint failed:
    kombu_queue.name``)."""
    for url, peer_id, whose in ((own_broker, secondary_id, "this node's"),
                                (secondary_broker, primary_id, "the secondary's")):
        try:
            with connect(url, ca_file=ca_file) as broker:
                changes_queue(peer_id)(broker.default_channel).declare()
        except Exception as error:  # noqa: BLE001 - said in words; Add aborts
            raise Invalid(f"Cannot prepare the change queue on {whose} broker: {describe(error)}.") from None


def add_secondary(engine, secret_box, settings, address, setup_key, progress=None) -> dict:
    """The job; its preconditions are checked by ``ClusterActions.add``."""
    progress = progress or (lambda done, total, message=None: None)
    with engine.connect() as conn:
        node = conn.execute(select(NodeIdentity.__table__)).mappings().one()
    client = ClusterClient(address, node["id"], setup_key, timeout=60, tls=PeerTls.from_settings(settings))
    progress(0, 1, "checking the secondary")
    hello = _call(client, "GET", "/cluster/api/setup/hello")
    check_secondary(hello)
    primary = {"id": node["id"], "name": node["name"], "epoch": node["epoch"],
               "address": settings.get("ezpyr.node_address", ""),
               "broker_url": settings.get("ezpyr.broker_public_url") or settings.get("ezpyr.broker_url", "")}
    begun = _sealed_call(client, setup_key, "/cluster/api/setup/begin", {"primary": primary})
    try:
        sequence_committed(engine)  # the copy's vector then counts all that was committed
        # SENDERS threads send chunks while this one reads the next: the
        # secondary loads (and its database writes) one chunk while it
        # receives and opens another, and the primary reads a third.
        with engine.connect() as conn, ThreadPoolExecutor(SENDERS, thread_name_prefix="add-copy") as sender:
            vector, chunks = read_snapshot(conn)
            counts = table_counts(conn)  # inside the snapshot now
            total = sum(counts.values())
            done = 0
            progress(0, total, f"rows copied to the secondary: 0 of {total:,}")
            in_flight = deque()

            def wait_oldest():
                nonlocal done
                rows, sent = in_flight.popleft()
                sent.result()
                done += rows
                progress(done, total, f"rows copied to the secondary: {done:,} of {total:,}")

            table = None
            for chunk in chunks:
                if chunk.table != table:
                    # a table's rows go once every row they may refer to is
                    # committed there (chunks in flight commit in any order)
                    while in_flight:
                        wait_oldest()
                    table = chunk.table
                in_flight.append((len(chunk.rows), sender.submit(
                    _sealed_call, client, setup_key, "/cluster/api/setup/chunk",
                    {"table": chunk.table, "rows": chunk.rows})))
                if len(in_flight) > SENDERS:
                    wait_oldest()
            while in_flight:
                wait_oldest()
            conn.rollback()
        progress(total, total, "preparing the change queues of both nodes")
        declare_change_queues(settings["ezpyr.broker_url"], hello["node_id"], begun["broker_url"], node["id"],
                              settings.get("ezpyr.broker_ca_file") or None)
        secret = secrets.token_urlsafe(32)
        box = transfer_box(setup_key)
        _sealed_call(client, setup_key, "/cluster/api/setup/finish", {
            "vector": vector.to_json(), "counts": counts, "epoch": node["epoch"],
            "secret": box.encrypt(secret.encode()).decode(),
            "data_key": box.encrypt(secret_box.export_key().encode()).decode(),
        })
    except Exception:
        try:
            client.call("POST", "/cluster/api/setup/abort", seal(setup_key, {}))
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass
        raise
    with engine.begin() as conn:
        conn.execute(ClusterPeer.__table__.insert().values(
            id=hello["node_id"], name=hello.get("name", ""), address=address,
            broker_url_encrypted=secret_box.encrypt(begun["broker_url"]),
            secret_encrypted=secret_box.encrypt(secret), role=Role.SLAVE, epoch=node["epoch"],
            link=Link.CONNECTED, peer_vector=vector.dumps()))
        conn.execute(update(NodeIdentity.__table__).values(role=Role.MASTER))
        outbox = OutboxEntry.__table__
        for (origin, epoch), seq in vector.items():  # the copy holds these already
            conn.execute(update(outbox).where(outbox.c.origin == origin, outbox.c.epoch == epoch,
                                              outbox.c.seq <= seq, outbox.c.sent_at.is_(None))
                         .values(sent_at=utcnow()))
    accounts = accounts_after_add(engine, settings, progress, total)
    progress(total, total, "done")
    return {"rows": total, "tables": counts, "secondary": address, "accounts": accounts}
