"""One node's worker: two long-lived loops and a supervisor.

* relay (``worker.relay.RelayLoop``): this node's outbox → this node's
  broker; sleeps until a commit wakes it;
* applier (``worker.applier.Applier``): the other node's broker → this
  node's database; a kombu consumer, started and stopped by the supervisor;
* status (this module): every ``probe_interval`` seconds, asks the other
  node for its status over the cluster API, settles roles, and records in
  one transaction what the panel shows: the worker's own heartbeat, what
  the relay and the applier are doing, backlog and lag.

When the admin disconnects the other node, the relay holds changes back
(they wait in the outbox), the applier stops, and the other node is not
probed; Connect resumes all three.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable
from ezpyr.cluster.models import ClusterPeer, Link, WorkerState
from ezpyr.ops.metrics import LagHistogram
from ezpyr.cluster.roles import Meeting, declare_split_brain, meet
from ezpyr.cluster.secret import PeerKeys
from ezpyr.cluster.setup import SECONDARY
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.apply import applied_seq, version_vector
from ezpyr.replication.capture import sequence_committed
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.outbox import prune, unsent_count
from ezpyr.replication.vector import VersionVector
from ezpyr.secretbox import SecretBox
from worker.applier import Applier, BatchReport, DatabaseTrouble
from worker.relay import RelayLoop

log = logging.getLogger(__name__)
PEER = ClusterPeer.__table__
WORKER = WorkerState.__table__
PRUNE_INTERVAL = 60.0
PAUSE_RETRY = 30.0  # a paused applier (newer schema) looks again after this long
RECORD_INTERVAL = 4.0  # heartbeats are written at least this often (pages call 15 s stale)


class NodeWorker:
    def __init__(self, engine: Engine, broker_url: str, secret_box: SecretBox, *,
                 probe_interval: float = 2.0, heartbeat: float | None = None,
                 safety_interval: float = 5.0, keep_days: float = 7.0, keep_rows: int = 100_000,
                 tls: PeerTls | None = None, broker_ca_file: str | None = None):
        self.engine = engine
        self.broker_url = broker_url
        self.secret_box = secret_box
        self.keys = PeerKeys(engine, secret_box)  # the cluster secret(s): signing and checking
        self.probe_interval = probe_interval
        self.heartbeat = heartbeat  # AMQP heartbeat seconds (None: the default)
        self.safety_interval = safety_interval
        self.keep_days = keep_days
        self.keep_rows = keep_rows
        self.tls = tls  # how the other node's https certificate is checked
        self.broker_ca_file = broker_ca_file  # the CA that amqps:// brokers' certificates must chain to
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.relay: RelayLoop | None = None
        self.applier: Applier | None = None
        self._applier_thread: threading.Thread | None = None
        self._applier_key = None
        self._applier_error = ""
        self._resend_asked: dict[tuple, float] = {}
        self._next_prune = 0.0
        self.paused_reason = ""  # set by the applier, shown by the status loop
        self._paused_until = 0.0
        self.node_id = ""
        self._last_recorded: dict = {}
        self._next_record = 0.0
        self.lag_histogram = LagHistogram()

    # -- reading this node's state ----------------------------------------
    def _node_and_peer(self):
        """This node, and its other node once there is one to talk to: a
        secondary's peer row, while Add is still copying, has no secret yet
        (nothing to probe with) and no queue to consume (the primary
        declares it before it finishes)."""
        with self.engine.connect() as conn:
            node = conn.execute(select(NodeIdentity.__table__)).mappings().first()
            peer = conn.execute(select(PEER)).mappings().first()
        if node is not None and node["role"] == SECONDARY:
            peer = None
        return node, peer

    def _relay_peer(self) -> tuple[str | None, bool]:
        """For the relay, on each wake-up: the other node's id, and whether
        shipping to it is paused (Disconnect)."""
        with self.engine.connect() as conn:
            peer = conn.execute(select(PEER.c.id, PEER.c.link)).first()
        if peer is None:
            return None, False
        return peer.id, peer.link == Link.DISCONNECTED

    def _client(self, node, peer) -> ClusterClient:
        return ClusterClient(peer["address"], node["id"],
                             self.secret_box.decrypt(peer["secret_encrypted"]), tls=self.tls)

    # -- the applier, run and watched -------------------------------------------
    def _applier_wanted(self, peer) -> bool:
        return (peer is not None and peer["link"] != Link.DISCONNECTED
                and not peer["split_brain_since"] and time.monotonic() >= self._paused_until)

    def _manage_applier(self, node, peer) -> None:
        running = self._applier_thread is not None and self._applier_thread.is_alive()
        key = (peer["id"], peer["broker_url_encrypted"]) if peer is not None else None
        if running and (not self._applier_wanted(peer) or key != self._applier_key):
            self._stop_applier()
            running = False
        if not running and self._applier_wanted(peer) and not self.stop_event.is_set():
            if self.applier is not None:
                self.applier.connection.release()
            self.applier = Applier(self.engine, self.secret_box.decrypt(peer["broker_url_encrypted"]),
                                   node["id"], self.keys, peer_id=peer["id"], heartbeat=self.heartbeat,
                                   ca_file=self.broker_ca_file,
                                   on_report=lambda report: self._on_report(node, peer, report))
            self._applier_key = key
            self._applier_thread = threading.Thread(target=self._run_applier, args=(self.applier,),
                                                    name="applier", daemon=True)
            self._applier_thread.start()

    def _stop_applier(self, timeout: float = 10.0) -> None:
        if self.applier is not None:
            self.applier.should_stop = True
        if self._applier_thread is not None:
            self._applier_thread.join(timeout)
            self._applier_thread = None

    def _run_applier(self, applier: Applier) -> None:
        try:
            applier.run()
            self._applier_error = ""
        except DatabaseTrouble as error:
            self._applier_error = f"{error} (retrying)"
            log.warning("applier: %s", error)
        except Exception as error:  # noqa: BLE001 - reported; the supervisor starts it again
            self._applier_error = f"stopped after an unexpected error ({type(error).__name__}); restarting"
            log.exception("applier stopped")
        finally:
            applier.connection.release()

    def _on_report(self, node, peer, report: BatchReport) -> None:
        if report.paused:
            self.paused_reason = report.paused
            self._paused_until = time.monotonic() + PAUSE_RETRY
            log.warning("applier paused: %s", report.paused)
        elif report.conflict:
            with self.engine.begin() as conn:
                outcome = declare_split_brain(conn, report.conflict, report.conflict_epoch or None)
            log.warning("cluster: %s", outcome)
        elif report.applied:
            self.paused_reason = ""
        if report.gap_from:
            self._ask_resend(node, peer, *report.gap_from)

    def _ask_resend(self, node, peer, origin, epoch, seq):
        key = (origin, epoch, seq)
        now = time.monotonic()
        if now - self._resend_asked.get(key, 0) < 5.0:
            return
        self._resend_asked[key] = now
        try:
            answer = self._client(node, peer).resend(origin, epoch, seq)
            log.info("asked %s to resend %s:%s from %s: %s", peer["address"], origin, epoch, seq, answer)
        except PeerRefused as error:
            with self.engine.begin() as conn:
                conn.execute(update(PEER).values(
                    applier_state=f"needs a full resync: {error.message}", updated_at=utcnow()))
        except PeerUnreachable as error:
            log.info("resend request failed: %s", error)

    # -- the status loop -----------------------------------------------------
    def _status_loop(self):
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.status_once()
            except Exception as error:  # noqa: BLE001 - this node's database, most likely
                log.warning("status: %s", error)
            self.stop_event.wait(max(0.05, self.probe_interval - (time.monotonic() - started)))

    def status_once(self) -> None:
        node, peer = self._node_and_peer()
        self._manage_applier(node, peer)
        values = {}
        if peer is not None:
            values = self._probe(node, peer)
            # the peer row as the probe may have changed it (split-brain, role)
            node, peer = self._node_and_peer()
            self._manage_applier(node, peer)
            if peer is None:  # removed meanwhile (a new Add is setting up)
                values = {}
            else:
                values["applier_state"] = self._applier_words(peer, values.pop("catching_up", None))
                values["updated_at"] = utcnow()
                self.lag_histogram.observe(values["lag_seconds"])
        now = utcnow()
        relay_state = self.relay.state if self.relay else "not started"
        # Write only what changed, and the heartbeats every RECORD_INTERVAL:
        # an idle worker then costs almost nothing, and pages stay current.
        same = {k: v for k, v in values.items() if k not in ("updated_at", "last_heartbeat_at", "lag_seconds")}
        same["relay_state"] = relay_state
        if same == self._last_recorded and time.monotonic() < self._next_record:
            return
        self._last_recorded, self._next_record = same, time.monotonic() + RECORD_INTERVAL
        with self.engine.begin() as conn:
            if values:
                conn.execute(update(PEER).where(PEER.c.id == peer["id"]).values(**values))
            done = conn.execute(update(WORKER).where(WORKER.c.id == 1).values(
                pid=os.getpid(), heartbeat_at=now, stopped_at=None, relay_state=relay_state,
                lag_histogram=self.lag_histogram.as_json()))
            if done.rowcount == 0:
                conn.execute(insert(WORKER).values(id=1, pid=os.getpid(), started_at=now,
                                                   heartbeat_at=now, relay_state=relay_state,
                                                   lag_histogram=self.lag_histogram.as_json()))

    def _applier_words(self, peer, catching_up: str | None) -> str:
        if peer["split_brain_since"]:
            return "stopped: split-brain (resolve it to resume)"
        if self.paused_reason and time.monotonic() < self._paused_until + self.probe_interval:
            return f"paused: {self.paused_reason}"
        if peer["link"] == Link.DISCONNECTED:
            return "paused: disconnected by an admin"
        if self._applier_error:
            return self._applier_error
        state = self.applier.state if self.applier is not None else "starting"
        return f"{state}; {catching_up}" if catching_up else state

    def _probe(self, node, peer) -> dict:
        """Ask the other node how it is; settle roles; measure backlog and
        lag. Returns the peer row's new values."""
        values = {"queue_consumers": -1 if self.relay is None or self.relay.queue_consumers is None
                  else self.relay.queue_consumers}
        peer_vector = VersionVector.from_json(peer["peer_vector"])
        if peer["link"] != Link.DISCONNECTED:
            sequence_committed(self.engine)  # so that this node's vector counts all it committed
            with self.engine.connect() as conn:
                mine = version_vector(conn)  # read before theirs: theirs is the later picture
            try:
                status = self._client(node, peer).status()
            except (PeerUnreachable, PeerRefused) as error:
                values.update(reachable=False, last_error=str(error))
            else:
                peer_vector = VersionVector.from_json(status.get("vector", {}))
                with self.engine.begin() as conn:
                    outcome = meet(conn, mine, status)
                if self.keys.retire_if_switched(status, mine):
                    log.info("cluster secret rotated: the previous secret is no longer accepted")
                if outcome:
                    log.warning("cluster: %s", outcome.message)
                values.update(
                    reachable=True, last_heartbeat_at=utcnow(), last_error="",
                    role=status.get("role", peer["role"]), epoch=int(status.get("epoch", peer["epoch"])),
                    name=status.get("name", peer["name"]),
                    peer_vector=peer_vector.dumps(),
                )
                if time.monotonic() >= self._next_prune:
                    with self.engine.begin() as conn:
                        prune(conn, {k: v for k, v in peer_vector.items() if k[0] == node["id"]},
                              keep_days=self.keep_days, keep_rows=self.keep_rows)
                    self._next_prune = time.monotonic() + PRUNE_INTERVAL
                if outcome.kind is not Meeting.SPLIT_BRAIN and not peer["split_brain_since"]:
                    values["catching_up"] = self._catch_up_tail(node, peer, peer_vector)
        values.update(self._backlog(node, peer_vector))
        values["lag_seconds"] = self._lag(node, peer_vector)
        return values

    def _backlog(self, node, peer_vector) -> dict:
        """Changes of this node's streams the peer has not applied, by the
        vector it last reported (exact while it answers; while it does not,
        it cannot have applied more): unsent here, and sent but not applied."""
        with self.engine.connect() as conn:
            mine = {k: v for k, v in version_vector(conn).items() if k[0] == node["id"]}
            unsent = unsent_count(conn)
            numbered = unsent_count(conn, numbered_only=True)
        behind = sum(max(0, seq - peer_vector.get(stream, 0)) for stream, seq in mine.items())
        return {"backlog_unsent": unsent, "backlog_queued": max(0, behind - numbered)}

    def _lag(self, node, peer_vector) -> float:
        """Age of the oldest change of this node's current stream that the
        peer has not applied (0 when it has them all)."""
        have = peer_vector.get((node["id"], node["epoch"]), 0)
        outbox = OutboxEntry.__table__
        with self.engine.connect() as conn:
            oldest = conn.execute(
                select(func.min(outbox.c.created_at)).where(
                    outbox.c.origin == node["id"], outbox.c.epoch == node["epoch"],
                    (outbox.c.seq > have) | outbox.c.seq.is_(None))
            ).scalar()
        return 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())

    def _catch_up_tail(self, node, peer, peer_vector) -> str | None:
        """If the peer's own stream is ahead of what this node applied and
        nothing is arriving, a message at the end was lost: ask for it."""
        stream = (peer["id"], int(peer["epoch"]))
        theirs = peer_vector.get(stream, 0)
        with self.engine.connect() as conn:
            mine = applied_seq(conn, *stream)
        if theirs > mine:
            behind_since = self._resend_asked.setdefault(("tail",) + stream, time.monotonic())
            if time.monotonic() - behind_since > 3.0:
                self._ask_resend(node, peer, stream[0], stream[1], mine + 1)
                self._resend_asked[("tail",) + stream] = time.monotonic()
            return f"catching up: {theirs - mine} change(s) behind the other node"
        self._resend_asked.pop(("tail",) + stream, None)
        return None

    # -- running -------------------------------------------------------------
    def start(self):
        sequence_committed(self.engine)  # what was committed while no worker ran, before meeting anyone
        node, _ = self._node_and_peer()
        self.node_id = node["id"]
        self.relay = RelayLoop(self.engine, self.broker_url, node["id"], self._relay_peer, self.keys,
                               safety_interval=self.safety_interval, heartbeat=self.heartbeat,
                               ca_file=self.broker_ca_file)
        for name, target in (("relay", self.relay.run), ("status", self._status_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 10.0):
        """Stop every loop, requeue what was not applied, close every
        connection, and record that the worker stopped."""
        self.stop_event.set()
        if self.relay is not None:
            self.relay.stop()
        self._stop_applier(timeout)
        for thread in self.threads:
            thread.join(timeout)
        try:
            with self.engine.begin() as conn:
                conn.execute(update(WORKER).where(WORKER.c.id == 1).values(
                    stopped_at=utcnow(), relay_state="stopped"))
        except Exception as error:  # noqa: BLE001 - the database may be what stopped us
            log.warning("could not record the stop: %s", error)
