"""The cluster page's actions, in one place: Add, Verify, Make master,
Resolve (its preview and the resolution itself), and Disconnect/Connect.

Each action checks its preconditions (a refusal is an ``Invalid`` with the
message the admin reads, nothing changed), creates the job row, records
the activity and returns a ``Launch``: the job and the work to start once
the caller's transaction has committed. The panel's views and
``ezpyr-cluster`` are faces over this service: the panel redirects to the
job's page, the command follows the same job row with a progress bar on
the terminal.

Add, Make master and Resolve change who is master or what the nodes hold:
one of them runs at a time on a node, whoever starts it (the jobs table's
unique lock refuses a second, even from another process at the same
moment). A Verify asked for while one runs follows the running one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ezpyr.activity.services import NoActivity
from ezpyr.cluster.add import add_secondary, check_address
from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable, RemotePeer, address_host
from ezpyr.cluster.models import ClusterPeer, Link
from ezpyr.node.models import Role
from ezpyr.cluster.resolve import Decision, Plan, decide, losses, resolve, unique_clashes
from ezpyr.cluster.roles import TakeoverNeedsConfirmation, make_master
from ezpyr.cluster.services import ClusterService
from ezpyr.jobs.models import JobState
from ezpyr.jobs.services import JobService, Launch, Progress, Work
from ezpyr.replication.capture import WRITABLE_ROLES
from ezpyr.replication.verify import PeerAnswerInvalid, chunk_rows_setting, timeout_setting, verify
from ezpyr.validation import Invalid

# the lock of the actions that change roles or data: one at a time
CHANGE_LOCK = "cluster-change"
VERIFY_LOCK = "cluster-verify"

NO_PEER = "No other node is configured: there is nothing to {what}."


@dataclass
class ResolvePlan:
    """What a resolution would do: every differing row decided, and the
    versions it drops."""

    decisions: list[Decision]
    lost: list[dict] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return len(self.decisions)

    @property
    def summary(self) -> str:
        return f"{self.decided} rows decided, {len(self.lost)} versions dropped"


class ClusterActions:
    def __init__(self, dbsession: Session, secret_box, settings: dict, actor: str, activity=None):
        self.dbsession = dbsession
        self.secret_box = secret_box
        self.settings = settings
        self.actor = actor  # who the jobs name as their creator
        self.activity = activity or NoActivity()
        self.cluster = ClusterService(dbsession)
        self.jobs = JobService(dbsession)

    @property
    def engine(self):
        return self.dbsession.get_bind()

    def _peer(self, what: str) -> ClusterPeer:
        peer = self.cluster.peer()
        if peer is None:
            raise Invalid(NO_PEER.format(what=what))
        return peer

    def _client(self, peer: ClusterPeer, timeout: float = 10.0) -> ClusterClient:
        return ClusterClient(peer.address, self.cluster.node().id,
                             self.secret_box.decrypt(peer.secret_encrypted), timeout=timeout,
                             tls=PeerTls.from_settings(self.settings))

    def _launch(self, kind: str, message: str, work: Work, lock: str) -> Launch:
        job = self.jobs.create(kind, self.actor, message, lock=lock)
        return Launch(job, work)

    # -- Disconnect / Connect ---------------------------------------------------
    def disconnect(self) -> ClusterPeer:
        """Stop probing the other node; this node's changes stay queued."""
        peer = self.cluster.set_link(Link.DISCONNECTED)
        self.activity.record("cluster.disconnect", peer.address)
        return peer

    def connect(self) -> ClusterPeer:
        """Resume probing; the backlog drains when the other node is up."""
        peer = self.cluster.set_link(Link.CONNECTED)
        self.activity.record("cluster.connect", peer.address)
        return peer

    # -- Add ------------------------------------------------------------------
    def add(self, address: str, setup_key: str) -> Launch:
        address = check_address(address)
        setup_key = (setup_key or "").strip()
        if not setup_key:
            raise Invalid("The setup key is required (the secondary printed it at install).", "setup_key")
        node = self.cluster.node()
        if self.cluster.peer() is not None:
            raise Invalid("This node already has another node; a cluster has two.")
        if node.role not in WRITABLE_ROLES:
            raise Invalid(f"This node is {node.role}: add the secondary from the master.")
        host = address_host(address)
        if not self.cluster.is_granted(host):
            raise Invalid(f"{host} is not granted: run ezpyr-grant-host CONFIG {host} on this node first.",
                          "address")
        engine, box, settings = self.engine, self.secret_box, self.settings

        def work(progress: Progress) -> dict:
            return add_secondary(engine, box, settings, address, setup_key, progress)

        launch = self._launch("add", f"add the secondary at {address}", work, CHANGE_LOCK)
        self.activity.record("cluster.add", address)
        return launch

    # -- Verify ---------------------------------------------------------------
    def verify(self) -> Launch:
        """Compare every replicated table with the other node's (during a
        split-brain, with the change that made each differing row)."""
        peer = self._peer("verify against")
        running = self.jobs.running("verify")
        if running is not None:
            return Launch(running)
        engine, settings = self.engine, self.settings
        remote = RemotePeer(self._client(peer), timeout_setting(settings))
        with_provenance = bool(peer.split_brain_since)

        def work(progress: Progress) -> dict:
            progress(0, 1, "comparing tables with the other node")
            try:
                with engine.connect() as conn:
                    reports = verify(conn, remote, with_provenance=with_provenance, progress=progress,
                                     chunk_rows=chunk_rows_setting(settings))
            except (PeerUnreachable, PeerRefused, PeerAnswerInvalid) as error:
                raise Invalid(f"Cannot verify: {error}") from None
            return {"in_sync": all(r.in_sync for r in reports), "tables": [r.as_dict() for r in reports]}

        launch = self._launch("verify", f"verify against {peer.address}", work, VERIFY_LOCK)
        self.activity.record("cluster.verify", peer.address)
        return launch

    # -- Make master ----------------------------------------------------------
    def make_master(self, force: bool = False) -> Launch:
        """On the slave: graceful switchover, or (``force``, after the
        warning the first try returned) a takeover."""
        node, peer = self.cluster.node(), self.cluster.peer()
        if peer is None:
            raise Invalid("No other node is configured: this node is already the only one taking changes.")
        if node.role != Role.SLAVE:
            raise Invalid(f"This node is {node.role}; Make master is for the slave.")
        if peer.split_brain_since is not None:
            raise Invalid("The nodes are in a split-brain: resolve it first (Verify, then Resolve).")
        engine, box, tls = self.engine, self.secret_box, PeerTls.from_settings(self.settings)

        def work(progress: Progress) -> dict:
            try:
                return make_master(engine, box, force=force, progress=progress, tls=tls)
            except TakeoverNeedsConfirmation as warning:
                return {"needs_confirmation": True, "warning": warning.message, "reason": warning.reason}

        launch = self._launch("make-master", "forced takeover" if force else
                              f"switch over from the master at {peer.address}", work, CHANGE_LOCK)
        self.activity.record("cluster.make_master", peer.address, "forced" if force else "graceful")
        return launch

    # -- Resolve --------------------------------------------------------------
    def verify_report(self, job_id: str) -> dict:
        """The result of a finished Verify, which a resolution decides on."""
        job = self.jobs.get(job_id)
        if job is None or job.kind != "verify" or job.state != JobState.DONE:
            raise Invalid("No such Verify result: run Verify, then resolve from its result.", "verify_job")
        return json.loads(job.result)

    def resolve_plan(self, report: dict, plan: Plan) -> ResolvePlan:
        """Every differing row of ``report`` decided by ``plan``; refused
        when this node cannot resolve, a row has no choice, or two kept
        rows would claim one name."""
        node, peer = self.cluster.node(), self.cluster.peer()
        if peer is None or peer.split_brain_since is None:
            raise Invalid("There is no split-brain to resolve.")
        if node.role not in WRITABLE_ROLES:
            raise Invalid(f"Resolve on the master, at {peer.address}: this node takes no changes.")
        decisions = decide(report, plan)
        clashes = unique_clashes(self.dbsession.connection(), decisions)
        if clashes:
            raise Invalid("These choices would leave two rows with one name: " + "; ".join(clashes))
        return ResolvePlan(decisions, losses(decisions))

    def resolve(self, report: dict, plan: Plan) -> Launch:
        """Back up both nodes, apply the choices here, resync the other node."""
        chosen = self.resolve_plan(report, plan)
        peer = self.cluster.peer()
        engine, box, settings, actor = self.engine, self.secret_box, self.settings, self.actor

        def work(progress: Progress) -> dict:
            return resolve(engine, box, settings, chosen.decisions, actor, progress)

        launch = self._launch("resolve", "resolve the split-brain", work, CHANGE_LOCK)
        self.activity.record("cluster.resolve", peer.address, chosen.summary)
        return launch
