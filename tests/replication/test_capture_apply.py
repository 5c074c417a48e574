"""Change capture into the outbox and applying it on a second node: two
real databases per back end."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

import ezpyr.replication.capture  # noqa: F401 - installs the capture listeners
from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import LoginThrottle
from ezpyr.database import make_engine, make_session_factory
from ezpyr.meta import replicated_tables, utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.apply import apply_batch, version_vector
from ezpyr.replication.capture import ACTOR, NodeIsReadOnly, read_committed, sequence_pending
from ezpyr.replication.messages import ChangeMessage
from ezpyr.replication.models import OutboxEntry
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.groups import UserGroupService
from ezpyr.users.models import UserGroup
from ezpyr.users.services import UserService
from ezpyr.replication.writes import applying
from tests.backends import drop_database, new_database
from tests.conftest import migrate


class Node:
    def __init__(self, url, role):
        self.url = url
        self.engine = make_engine({"sqlalchemy.url": url})
        self.sessions = make_session_factory(self.engine)
        with self.sessions() as s:
            node = NodeIdentity(name=f"node-{role}", address="", role=role, epoch=1)
            s.add(node)
            s.commit()
            self.id = node.id

    def outbox(self):
        """The outbox as the relay publishes it: numbered first."""
        with self.engine.begin() as conn:
            sequence_pending(conn)
        with self.sessions() as s:
            return list(s.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))

    def tables(self):
        with self.engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                    for t in replicated_tables()}

    def apply(self, message):
        """One message through the applier's one apply path; returns
        "applied", "duplicate" or ("gap", first missing seq)."""
        with self.engine.begin() as conn:
            result = apply_batch(conn, [message])
        if result.gap:
            return ("gap", result.gap[2])
        return "applied" if result.applied else "duplicate"


@pytest.fixture
def nodes(backend, tmp_path_factory):
    urls = [new_database(backend, tmp_path_factory) for _ in range(2)]
    for url in urls:
        migrate(url)
    master, slave = Node(urls[0], "master"), Node(urls[1], "slave")
    yield master, slave
    for node in (master, slave):
        node.engine.dispose()
    for url in urls:
        drop_database(url)


def ship(master, slave, start=0):
    results = []
    for entry in master.outbox()[start:]:
        results.append(slave.apply(ChangeMessage.from_json(ChangeMessage.from_outbox(entry).to_json())))
    return results


def test_each_commit_is_one_outbox_entry_with_gap_free_seq(nodes, passwords):
    master, _ = nodes
    with master.sessions() as s:
        s.info[ACTOR] = "root_admin"
        group = UserGroupService(s).create("ops")
        UserService(s, passwords).create("alice", "x", group_id=group.id, skip_policy=True)
        s.commit()
        group.description = "Operations"
        s.commit()
    with master.sessions() as s:  # committed, not numbered yet: the relay's sequencer does that
        assert [e.seq for e in s.scalars(select(OutboxEntry))] == [None, None]
    with master.engine.connect() as conn:
        assert version_vector(conn) == {}
    entries = master.outbox()
    assert [(e.origin, e.epoch, e.seq) for e in entries] == [(master.id, 1, 1), (master.id, 1, 2)]
    first = json.loads(entries[0].changes)
    assert [(c["table"], c["op"]) for c in first] == [("user_groups", "upsert"), ("users", "upsert")]
    assert first[1]["row"]["username"] == "alice" and first[1]["row"]["group_id"] == first[0]["pk"]
    assert entries[0].actor == "root_admin" and entries[0].schema_revision
    with master.engine.connect() as conn:
        assert version_vector(conn) == {(master.id, 1): 2}


def test_changes_applied_on_the_slave_make_the_same_tables(nodes, passwords):
    master, slave = nodes
    with master.sessions() as s:
        web = ServerGroup(name="web")
        s.add_all([web, Server(name="www1", host="10.0.0.1", group=web),
                   Server(name="www2", host="10.0.0.2", group=web)])
        s.commit()
        www1 = s.scalars(select(Server).where(Server.name == "www1")).one()
        www1.port = 2222
        s.delete(s.scalars(select(Server).where(Server.name == "www2")).one())
        s.commit()
        for server in list(web.servers):
            server.group = None
        s.delete(web)
        s.commit()
    assert ship(master, slave) == ["applied"] * 3
    assert slave.tables() == master.tables()
    with slave.engine.connect() as conn:
        assert version_vector(conn) == {(master.id, 1): 3}


def test_a_csv_import_applied_on_the_slave_makes_the_same_tables(nodes, secret_box):
    """The import job's insert (Core, a thousand rows a statement) is
    recorded as one entry per thousand rows of its one transaction."""
    from ezpyr.jobs.services import run_job
    from ezpyr.servers.imports import Importer, ServerImports
    from tests.servers.conftest import HEADER, csv_rows

    master, slave = nodes
    with master.sessions() as s:
        s.add(ServerGroup(name="web"))
        s.commit()
        launch = ServerImports(s, secret_box, "node-master", Importer("root_admin", "", "root_admin")).start(
            (HEADER + csv_rows(2100, group="web")).encode(), "fleet.csv")
        s.commit()
    run_job(master.engine, launch.job.id, launch.work)
    entries = master.outbox()
    assert [len(json.loads(e.changes)) for e in entries] == [1, 1000, 1000, 100]  # the group, then the import
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert ship(master, slave) == ["applied"] * 4
    assert slave.tables() == master.tables()
    with slave.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Server)) == 2100


def test_redelivery_is_a_no_op_and_a_gap_is_not_applied(nodes):
    master, slave = nodes
    with master.sessions() as s:
        for name in ("a", "b", "c"):
            s.add(UserGroup(name=name))
            s.commit()
    entries = [ChangeMessage.from_outbox(e) for e in master.outbox()]
    assert slave.apply(entries[0]) == "applied"
    assert slave.apply(entries[0]) == "duplicate"
    assert slave.apply(entries[2]) == ("gap", 2)
    with slave.sessions() as s:
        assert sorted(s.scalars(select(UserGroup.name))) == ["a"]
    assert slave.apply(entries[1]) == "applied"
    assert slave.apply(entries[2]) == "applied"
    assert slave.tables() == master.tables()


def test_a_rolled_back_transaction_leaves_no_entry_and_no_gap(nodes):
    master, _ = nodes
    with master.sessions() as s:
        s.add(UserGroup(name="kept"))
        s.commit()
        s.add(UserGroup(name="dropped"))
        s.flush()
        s.rollback()
        s.add(UserGroup(name="kept2"))
        s.commit()
    assert [e.seq for e in master.outbox()] == [1, 2]
    assert "dropped" not in master.outbox()[1].changes


def test_node_local_tables_are_never_captured(nodes):
    master, _ = nodes
    with master.sessions() as s:
        s.add_all([ActivityEntry(action="auth.login", username="x"),
                   LoginThrottle(key="all", kind="all", failures=1, window_started_at=utcnow())])
        s.commit()
    assert master.outbox() == []


def test_the_slave_refuses_every_write_and_keeps_nothing(nodes):
    _, slave = nodes
    with slave.sessions() as s:
        s.add(UserGroup(name="sneaky"))
        with pytest.raises(NodeIsReadOnly, match="does not accept changes"):
            s.commit()
        s.rollback()
    with slave.sessions() as s:
        assert s.scalars(select(UserGroup)).all() == []
    assert slave.outbox() == []


def test_verify_is_clean_when_equal_and_names_the_rows_that_differ(nodes):
    from sqlalchemy import update as sql_update

    from ezpyr.replication.verify import LocalPeer, verify
    master, slave = nodes
    with master.sessions() as s:
        s.add_all([UserGroup(name=f"g{i}") for i in range(40)] + [ServerGroup(name="web")])
        s.commit()
    ship(master, slave)
    with master.engine.connect() as a, slave.engine.connect() as b:
        reports = verify(a, LocalPeer(b))
        assert all(r.in_sync for r in reports)
        assert {r.table: r.rows_here for r in reports}["user_groups"] == 40
    groups = UserGroup.__table__
    with slave.engine.begin() as conn, applying(conn):  # drift the slave behind replication's back
        conn.execute(sql_update(groups).where(groups.c.name == "g7").values(description="drift"))
        conn.execute(groups.delete().where(groups.c.name == "g8"))
    with master.engine.connect() as a, slave.engine.connect() as b:
        reports = {r.table: r for r in verify(a, LocalPeer(b))}
    assert reports["server_groups"].in_sync
    ug = reports["user_groups"]
    assert not ug.in_sync and (ug.rows_here, ug.rows_there) == (40, 39)
    by_name = {d["here"]["name"]: d for d in ug.differing}
    assert set(by_name) == {"g7", "g8"}
    assert by_name["g7"]["there"]["description"] == "drift" and by_name["g8"]["there"] is None


def test_verify_names_two_rows_changed_the_same_way_in_one_page(nodes):
    """CRC32 is linear: XORing the plain CRCs of a page's rows let two rows
    changed alike, at the same distance from the end of their text, cancel
    out, and the page looked unchanged."""
    from ezpyr.replication.verify import LocalPeer, verify
    master, slave = nodes
    with master.sessions() as s:
        s.add_all([UserGroup(name=f"g{i}", description="team") for i in range(10, 50)])
        s.commit()
    ship(master, slave)
    groups = UserGroup.__table__
    with slave.engine.begin() as conn, applying(conn):  # the same one-letter change in two rows, behind replication's back
        conn.execute(groups.update().where(groups.c.name.in_(["g17", "g33"])).values(description="tean"))
    with master.engine.connect() as a, slave.engine.connect() as b:
        ug = {r.table: r for r in verify(a, LocalPeer(b))}["user_groups"]
    assert sorted(d["here"]["name"] for d in ug.differing) == ["g17", "g33"]


def test_a_batch_skips_what_it_has_and_stops_at_a_gap(nodes):
    master, slave = nodes
    with master.sessions() as s:
        for name in ("a", "b", "c", "d", "e"):
            s.add(UserGroup(name=name))
            s.commit()
        s.delete(s.scalars(select(UserGroup).where(UserGroup.name == "b")).one())
        s.commit()
    messages = [ChangeMessage.from_outbox(e) for e in master.outbox()]
    with slave.engine.begin() as conn:
        first = apply_batch(conn, messages[:2])
    assert (first.applied, first.duplicates, first.gap) == (2, 0, None)
    with slave.engine.begin() as conn:  # 1-2 again, 4 missing: 3 applies, stops before 5
        result = apply_batch(conn, messages[:3] + messages[4:])
    assert (result.applied, result.duplicates, result.gap) == (1, 2, (master.id, 1, 4))
    with slave.engine.connect() as conn:
        assert version_vector(conn) == {(master.id, 1): 3}
    with slave.engine.begin() as conn:
        assert apply_batch(conn, messages).applied == 3
    assert slave.tables() == master.tables()


def test_retention_keeps_what_the_peer_has_not_applied(nodes):
    from ezpyr.replication.outbox import mark_sent, prune
    master, _ = nodes
    with master.sessions() as s:
        for i in range(10):
            s.add(UserGroup(name=f"r{i}"))
            s.commit()
    entries = master.outbox()
    with master.engine.begin() as conn:
        mark_sent(conn, [e.id for e in entries[:8]])
        # the peer applied 1..6; keep only the newest 3 rows otherwise
        assert prune(conn, {(master.id, 1): 6}, keep_days=7, keep_rows=3) == 6
    assert [e.seq for e in master.outbox()] == [7, 8, 9, 10]
    with master.engine.begin() as conn:  # nothing the peer lacks goes, however old
        assert prune(conn, {(master.id, 1): 6}, keep_days=0, keep_rows=0) == 0


def test_cluster_bookkeeping_is_never_captured(nodes):
    from ezpyr.cluster.models import ApiNonce, GrantedHost
    from ezpyr.jobs.models import Job
    master, _ = nodes
    with master.sessions() as s:
        s.add_all([GrantedHost(address="127.0.0.1"), ApiNonce(nonce="n1"), Job(kind="verify")])
        node = s.scalars(select(NodeIdentity)).one()
        node.address = "127.0.0.1:1"
        s.commit()
    assert master.outbox() == []


@pytest.mark.parametrize("relay_round", [False, True], ids=["every-epoch", "relay-round"])
def test_concurrent_writers_and_a_running_sequencer_give_one_gap_free_stream(nodes, relay_round):
    """Eight writers commit side by side while the sequencer numbers what
    has committed: every entry gets exactly one seq, 1..n without a gap, and
    the slave that applies them in seq order ends with the master's tables.
    The relay's round (READ COMMITTED, the current epoch only) gives the
    same."""
    import threading

    master, slave = nodes
    errors = []

    def writer(w):
        try:
            for i in range(15):
                with master.sessions() as s:
                    group = s.scalars(select(UserGroup).where(UserGroup.name == f"w{w}")).first()
                    if group is None:
                        s.add(UserGroup(name=f"w{w}", description="0"))
                    else:  # the same row again and again: order matters for these
                        group.description = str(i)
                    s.commit()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    done = threading.Event()

    def sequencer():
        while not done.is_set():
            with master.engine.begin() as conn:
                if relay_round:
                    read_committed(conn)
                    sequence_pending(conn, every_epoch=False)
                else:
                    sequence_pending(conn)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    numbering = threading.Thread(target=sequencer)
    numbering.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    numbering.join()
    assert not errors, errors
    entries = master.outbox()
    assert sorted(e.seq for e in entries) == list(range(1, 8 * 15 + 1))
    for entry in sorted(entries, key=lambda e: e.seq):
        assert slave.apply(ChangeMessage.from_outbox(entry)) == "applied"
    assert slave.tables() == master.tables()


@pytest.mark.parametrize("chunk_rows, split_rows", [(1, 1000), (3, 1000), (1000, 1000), (20, 4), (1000, 2)])
def test_verify_in_small_pages_realigns_after_rows_only_on_either_side(nodes, chunk_rows, split_rows):
    from ezpyr.meta import utcnow
    from ezpyr.replication.verify import LocalPeer, verify
    master, slave = nodes
    with master.sessions() as s:
        s.add_all([UserGroup(name=f"g{i:02d}") for i in range(30)])
        s.commit()
    ship(master, slave)
    groups = UserGroup.__table__
    with master.engine.connect() as conn:
        ids = sorted(conn.execute(select(groups.c.id)).scalars())
    here_only = [ids[5][:34] + "g" + c for c in "ghijklmn"]  # between ids[5] and ids[6]
    there_only = [ids[20][:34] + "h" + c for c in "ghij"] + ["0" * 8 + ids[0][8:]]  # and before all
    for node, extra in ((master, here_only), (slave, there_only)):
        with node.engine.begin() as conn, applying(conn):  # behind replication's back
            conn.execute(groups.insert(), [{"id": i, "name": f"x{n}-{node.id[:4]}", "description": "",
                                            "created_at": utcnow()} for n, i in enumerate(extra)])
    with slave.engine.begin() as conn, applying(conn):
        conn.execute(groups.update().where(groups.c.id == ids[29]).values(description="drift"))
    with master.engine.connect() as a, slave.engine.connect() as b:
        ug = {r.table: r for r in verify(a, LocalPeer(b), chunk_rows=chunk_rows,
                                         split_rows=split_rows)}["user_groups"]
    assert (ug.rows_here, ug.rows_there) == (38, 35)
    assert [d["id"] for d in ug.differing] == sorted(here_only + there_only + [ids[29]])
