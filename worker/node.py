"""One node's worker: three loops over this node's database.

* relay:     this node's outbox → this node's broker (every few ms);
* applier:   the peer's broker → this node's database (blocks on the queue);
* heartbeat: once a second, the peer's status over the cluster API, the
             depth of the peer's queue here, and the lag; recorded in
             ``cluster_peer`` for the panel to read.

When the admin disconnects the peer, the applier and the heartbeat stop
touching the peer; the relay keeps queuing this node's changes.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerUnreachable
from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.roles import declare_split_brain, meet
from ezpyr.cluster.services import vector_from_json, vector_to_json
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.apply import applied_seq, version_vector
from ezpyr.replication.broker import connect, queue_depth
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.outbox import prune, unsent_count
from ezpyr.secretbox import SecretBox
from worker.applier import Applier
from worker.relay import Relay

log = logging.getLogger(__name__)
PEER = ClusterPeer.__table__


class NodeWorker:
    def __init__(self, engine: Engine, broker_url: str, secret_box: SecretBox, *,
                 relay_interval: float = 0.005, heartbeat_interval: float = 1.0,
                 keep_days: float = 7.0, keep_rows: int = 100_000):
        self.engine = engine
        self.broker_url = broker_url
        self.secret_box = secret_box
        self.relay_interval = relay_interval
        self.heartbeat_interval = heartbeat_interval
        self.keep_days = keep_days
        self.keep_rows = keep_rows
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self._resend_asked: dict[tuple, float] = {}
        self.paused_reason = ""  # set by the applier, shown by the heartbeat

    # -- reading this node's state ----------------------------------------
    def _node_and_peer(self):
        with self.engine.connect() as conn:
            node = conn.execute(select(NodeIdentity.__table__)).mappings().first()
            peer = conn.execute(select(PEER)).mappings().first()
        return node, peer

    def _record(self, peer_id: str, **values) -> None:
        values["updated_at"] = utcnow()
        with self.engine.begin() as conn:
            conn.execute(update(PEER).where(PEER.c.id == peer_id).values(**values))

    def _client(self, node, peer) -> ClusterClient:
        return ClusterClient(peer["address"], node["id"],
                             self.secret_box.decrypt(peer["secret_encrypted"]))

    # -- loops -------------------------------------------------------------
    def _relay_loop(self):
        relay, relay_peer = None, None
        while not self.stop_event.is_set():
            try:
                _, peer = self._node_and_peer()
                if peer is None:
                    self.stop_event.wait(0.5)
                    continue
                if relay is None or relay_peer != peer["id"]:
                    if relay is not None:
                        relay.close()
                    relay, relay_peer = Relay(self.engine, self.broker_url, peer["id"]), peer["id"]
                if relay.run_once() == 0:
                    self.stop_event.wait(self.relay_interval)
            except Exception as error:  # noqa: BLE001 - keep relaying after broker trouble
                log.warning("relay: %s", error)
                if relay is not None:
                    relay.close()
                self.stop_event.wait(1.0)

    def _apply_loop(self):
        applier, applier_key = None, None
        while not self.stop_event.is_set():
            try:
                node, peer = self._node_and_peer()
                if peer is None or peer["link"] == "disconnected" or peer["split_brain_since"]:
                    if applier is not None:
                        applier.close()
                        applier = None
                    self.stop_event.wait(0.5)
                    continue
                key = (peer["id"], peer["broker_url"])
                if applier is None or applier_key != key:
                    if applier is not None:
                        applier.close()
                    applier, applier_key = Applier(self.engine, peer["broker_url"], node["id"]), key
                applier.receive(timeout=0.05)
                report = applier.apply_pending()
                if report.paused:
                    self.paused_reason = report.paused
                    self._record(peer["id"], applier_state=f"paused: {report.paused}")
                    applier.close()
                    applier = None
                    self.stop_event.wait(5.0)
                    continue
                if report.conflict:
                    with self.engine.begin() as conn:
                        outcome = declare_split_brain(conn, report.conflict, report.conflict_epoch or None)
                    log.warning("cluster: %s", outcome)
                    applier.close()
                    applier = None
                    continue
                if report.applied:
                    self.paused_reason = ""
                if report.gap_from:
                    self._ask_resend(node, peer, *report.gap_from)
            except Exception as error:  # noqa: BLE001 - reconnect after broker trouble
                log.warning("applier: %s", error)
                if applier is not None:
                    applier.close()
                    applier = None
                self.stop_event.wait(1.0)

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
            self._record(peer["id"], applier_state=f"needs a full resync: {error.message}")
        except PeerUnreachable as error:
            log.info("resend request failed: %s", error)

    def _heartbeat_loop(self):
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.heartbeat_once()
            except Exception as error:  # noqa: BLE001
                log.warning("heartbeat: %s", error)
            self.stop_event.wait(max(0.05, self.heartbeat_interval - (time.monotonic() - started)))

    def heartbeat_once(self) -> None:
        node, peer = self._node_and_peer()
        if peer is None:
            return
        values = {}
        try:
            with connect(self.broker_url) as broker:
                _, values["queue_consumers"] = queue_depth(broker, peer["id"])
        except Exception as error:  # noqa: BLE001 - the local broker is down
            values["last_error"] = f"this node's broker: {error}"
        peer_vector = vector_from_json(json.loads(peer["peer_vector"] or "{}"))
        if peer["link"] != "disconnected":
            with self.engine.connect() as conn:
                mine = version_vector(conn)  # read before theirs: theirs is the later picture
            try:
                status = self._client(node, peer).status()
            except (PeerUnreachable, PeerRefused) as error:
                values.update(reachable=False, last_error=str(error))
            else:
                peer_vector = vector_from_json(status.get("vector", {}))
                with self.engine.begin() as conn:
                    outcome = meet(conn, mine, status)
                if outcome:
                    log.warning("cluster: %s", outcome)
                values.update(
                    reachable=True, last_heartbeat_at=utcnow(), last_error=values.get("last_error", ""),
                    role=status.get("role", peer["role"]), epoch=int(status.get("epoch", peer["epoch"])),
                    name=status.get("name", peer["name"]),
                    peer_vector=json.dumps(vector_to_json(peer_vector)),
                )
                with self.engine.begin() as conn:
                    prune(conn, {k: v for k, v in peer_vector.items() if k[0] == node["id"]},
                          keep_days=self.keep_days, keep_rows=self.keep_rows)
                if outcome and outcome.startswith("split-brain") or peer["split_brain_since"]:
                    state = "stopped: split-brain (resolve it to resume)"
                else:
                    state = self._catch_up_tail(node, peer, peer_vector)
                values["applier_state"] = (f"paused: {self.paused_reason}" if self.paused_reason
                                           else state)
        values.update(self._backlog(node, peer_vector))
        values["lag_seconds"] = self._lag(node, peer_vector)
        self._record(peer["id"], **values)

    def _backlog(self, node, peer_vector) -> dict:
        """Changes of this node's streams the peer has not applied, by the
        vector it last reported (exact while it answers; while it does not,
        it cannot have applied more): unsent here, and sent but not applied."""
        with self.engine.connect() as conn:
            mine = {k: v for k, v in version_vector(conn).items() if k[0] == node["id"]}
            unsent = unsent_count(conn)
        behind = sum(max(0, seq - peer_vector.get(stream, 0)) for stream, seq in mine.items())
        return {"backlog_unsent": unsent, "backlog_queued": max(0, behind - unsent)}

    def _lag(self, node, peer_vector) -> float:
        """Age of the oldest change of this node's current stream that the
        peer has not applied (0 when it has them all)."""
        have = peer_vector.get((node["id"], node["epoch"]), 0)
        outbox = OutboxEntry.__table__
        with self.engine.connect() as conn:
            oldest = conn.execute(
                select(func.min(outbox.c.created_at)).where(
                    outbox.c.origin == node["id"], outbox.c.epoch == node["epoch"],
                    outbox.c.seq > have)
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
        return "running"

    # -- running -------------------------------------------------------------
    def start(self):
        for target in (self._relay_loop, self._apply_loop, self._heartbeat_loop):
            thread = threading.Thread(target=target, name=target.__name__.strip("_"), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 5.0):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
