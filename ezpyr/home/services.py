"""What an admin sees first: this node, the cluster, counts, recent activity
on this node and anything that waits for them."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ezpyr.access.models import AccessRule
from ezpyr.activity.models import ActivityEntry
from ezpyr.cluster.services import ClusterService, ClusterState
from ezpyr.guard.models import CommandRule
from ezpyr.jobs.models import Job
from ezpyr.meta import utcnow
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.models import User, UserGroup

RECENT_ACTIVITY = 10
# Failed jobs are shown for this long.
FAILED_JOBS_SHOWN = dt.timedelta(days=1)


@dataclass
class Attention:
    """Something waiting for an admin: what, and where to deal with it."""
    kind: str  # split_brain, worker_down, peer_unreachable, peer_worker, applier_paused, job_failed
    message: str
    route: str = "cluster.view"


@dataclass
class Overview:
    cluster: ClusterState | None
    counts: dict[str, int]
    recent: list[ActivityEntry]
    attention: list[Attention] = field(default_factory=list)


class HomeService:
    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def overview(self, has_node: bool) -> Overview:
        """``has_node``: ezpyr-init has given this node its identity."""
        state = ClusterService(self.dbsession).state() if has_node else None
        return Overview(state, self.counts(), self.recent_activity(), self.attention(state))

    def counts(self) -> dict[str, int]:
        def count(column, *where):
            return self.dbsession.scalar(select(func.count(column)).where(*where))

        return {
            "users": count(User.id),
            "suspended users": count(User.id, User.suspended.is_(True)),
            "user groups": count(UserGroup.id),
            "servers": count(Server.id),
            "server groups": count(ServerGroup.id),
            "access rules": count(AccessRule.id),
            "command rules": count(CommandRule.id),
        }

    def recent_activity(self) -> list[ActivityEntry]:
        return list(self.dbsession.scalars(
            select(ActivityEntry).order_by(ActivityEntry.id.desc()).limit(RECENT_ACTIVITY)))

    def attention(self, state: ClusterState | None) -> list[Attention]:
        items = []
        peer = state.peer if state is not None else None
        now = utcnow()
        if peer is not None:
            if peer.split_brain_since:
                items.append(Attention(
                    "split_brain",
                    f"Split-brain since {peer.split_brain_since:%Y-%m-%d %H:%M:%S} UTC: both nodes hold "
                    "changes the other lacks and automatic sync has stopped. Run Verify on the "
                    "cluster page and resolve it."))
            if state.worker.problem:
                items.append(Attention("worker_down", state.worker.problem + (
                    " Changes are neither sent nor received without it, and the cluster "
                    "status below is stale.")))
            if state.status == "unreachable":
                items.append(Attention(
                    "peer_unreachable",
                    f"The other node ({peer.address}) is unreachable; {state.backlog} change(s) "
                    "wait for it. Disconnect silences this while it is down for maintenance."))
            elif state.status == "connected" and peer.queue_consumers == 0:
                items.append(Attention(
                    "peer_worker",
                    f"The other node's worker is not attached to this node's broker: changes "
                    f"wait for it ({state.backlog} now)."))
            if (peer.applier_state or "").startswith("paused"):
                items.append(Attention("applier_paused", f"Replication here is {peer.applier_state}."))
        for job in self.dbsession.scalars(
                select(Job).where(Job.state == "failed", Job.finished_at >= now - FAILED_JOBS_SHOWN)
                .order_by(Job.finished_at.desc()).limit(5)):
            items.append(Attention(
                "job_failed", f"{job.title} failed at {job.finished_at:%H:%M:%S} UTC: "
                f"{job.error or 'no reason recorded'}"))
        return items
