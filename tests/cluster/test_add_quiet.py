"""The causes of the warnings once seen at Add (issue 12, rough edge 12):

* ``a stored secret does not match this node's secret key``: the
  secondary's worker probed the primary while Add was still copying, with
  the peer row's secret still empty; and, once Add finished, it could read
  the secret (encrypted under the cluster's key) before the key file held
  that key.
* ``UNIQUE constraint failed: kombu_queue.name``: the primary's relay and
  the secondary's applier created the same change queue at the same moment
  on the server-less transport (kombu serialises queue creation within a
  process only).
"""
from __future__ import annotations

import transaction
from kombu import Connection

from ezpyr.cluster.add import declare_change_queues
from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.setup import SECONDARY, SetupService
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.broker import changes_queue
from ezpyr.secretbox import FileSecretBox, generate_key, write_key_file
from tests.backends import broker_url, delete_queues
from worker.node import NodeWorker

PRIMARY_ID = "11111111-2222-3333-4444-555555555555"


def test_a_secondarys_worker_leaves_the_primary_alone_while_add_copies(dbsession, engine, secret_box,
                                                                       tmp_path):
    dbsession.add_all([NodeIdentity(name="secondary", address="127.0.0.1:6544", role=SECONDARY, epoch=1),
                       ClusterPeer(id=PRIMARY_ID, name="primary", address="127.0.0.1:6543",
                                   broker_url_encrypted=secret_box.encrypt("sqla+sqlite:////nonexistent/b.sqlite"),
                                   secret_encrypted="", role="master", epoch=1,
                                   applier_state="being set up")])
    dbsession.commit()
    worker = NodeWorker(engine, f"sqla+sqlite:///{tmp_path}/b.sqlite", secret_box)
    worker.status_once()  # raised SecretUnreadable (the empty secret) before
    assert worker.applier is None  # nor consumes the primary's queue before it exists
    dbsession.expire_all()
    peer = dbsession.get(ClusterPeer, PRIMARY_ID)
    assert peer.applier_state == "being set up" and peer.last_error == ""


def test_the_cluster_key_reads_in_every_process_from_the_moment_finish_commits(dbsession, tmp_path):
    path = tmp_path / "secret.key"
    own, cluster = generate_key(), generate_key()
    write_key_file(path, own)
    panel = FileSecretBox(str(path))
    under_own = panel.encrypt("setup key")
    service = SetupService(dbsession, panel)

    manager = transaction.TransactionManager(explicit=True)
    with manager as txn:
        service.adopt_key(cluster, txn)
        worker = FileSecretBox(str(path))  # another process reading the file mid-commit
        under_cluster = worker.encrypt("cluster secret")  # the new key encrypts already
        assert worker.decrypt(under_own) == "setup key"
    assert path.read_text().strip() == cluster
    assert FileSecretBox(str(path)).decrypt(under_cluster) == "cluster secret"

    manager = transaction.TransactionManager(explicit=True)
    SetupService(dbsession, FileSecretBox(str(path))).adopt_key(generate_key(), manager.begin())
    manager.abort()
    assert path.read_text().strip() == cluster  # not committed: the key stays as it was


def test_add_declares_both_change_queues_before_the_secondary_finishes(backend, tmp_path):
    primary_broker, secondary_broker = broker_url(backend, tmp_path), broker_url(backend, tmp_path)
    secondary_id = "99999999-8888-7777-6666-555555555555"
    try:
        declare_change_queues(primary_broker, secondary_id, secondary_broker, PRIMARY_ID)
        for url, name in ((primary_broker, changes_queue(secondary_id).name),
                          (secondary_broker, changes_queue(PRIMARY_ID).name)):
            with Connection(url) as conn:
                ok = conn.default_channel.queue_declare(queue=name, passive=True)
                assert ok.message_count == 0
    finally:
        delete_queues(primary_broker, [changes_queue(secondary_id).name])
        delete_queues(secondary_broker, [changes_queue(PRIMARY_ID).name])
