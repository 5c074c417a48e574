"""The cluster page's account buttons, in one place: Reconcile and Reset
fingerprint. The panel, the API and ``ezpyr-accounts`` are faces over this
service; each action records its own activity entry, whichever face asks.

Reconcile runs as a job for the panel and the API (a second one asked for
while one runs follows the running one); ``ezpyr-accounts reconcile`` runs
it in its own process and prints what each node needed."""
from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ezpyr.accounts.client import NAMES, NodeUnreachable
from ezpyr.accounts.models import TARGETS
from ezpyr.accounts.runner import reconcile, reset_fingerprint
from ezpyr.accounts.settings import AccountSettings
from ezpyr.accounts.tasks import CHANNEL, AccountTaskService, targets
from ezpyr.activity.services import NoActivity
from ezpyr.jobs.services import JobService, Launch
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.wake import wake_relay
from ezpyr.validation import Invalid

RECONCILE = "accounts.reconcile"  # the job's kind

NOT_PRESENTED = ("The fingerprint confirmed is not the one the node presents now: nothing was reset. "
                 "Look again.")


def reconcile_work(engine, settings: AccountSettings, nodes: list[str]):
    """The Reconcile job: each node in turn; it fails naming every node that
    could not be reached or refused something."""
    def work(progress):
        reports = []
        for target in nodes:
            try:
                reports.append(reconcile(engine, settings, target, progress=progress))
            except NodeUnreachable as error:
                reports.append({"node": target, "error": str(error)})
        failures = [r.get("error") or "; ".join(r["errors"]) for r in reports
                    if r.get("error") or r.get("errors")]
        if failures:
            raise RuntimeError("; ".join(failures))
        return {"reconcile": reports}
    return work


class AccountActions:
    def __init__(self, dbsession: Session, settings: dict, actor: str, activity=None):
        self.dbsession = dbsession
        self.accounts = AccountSettings.from_settings(settings)
        self.actor = actor  # who the jobs name as their creator
        self.activity = activity or NoActivity()
        self.jobs = JobService(dbsession)
        self.tasks = AccountTaskService(dbsession)

    @property
    def engine(self):
        return self.dbsession.get_bind()

    def nodes(self) -> list[str]:
        """This node, and the other one once there is one."""
        return targets(self.dbsession.connection())

    def status(self) -> dict:
        """The provisioning account, and per node its SSH address, its pinned
        host key (and a different one it presented) and its tasks."""
        counts = self.tasks.counts()
        nodes = {}
        for target in TARGETS:
            pin = self.tasks.pin(target)
            nodes[target] = {
                "ssh_address": self.accounts.address(target), "problem": self.accounts.missing(target),
                "pinned": pin.fingerprint if pin else None,
                "presented": (pin.presented or None) if pin else None,
                "waiting": counts[target]["waiting"], "failed": counts[target]["failed"],
                "last_error": self.tasks.last_error(target)}
        return {"provisioning_user": self.accounts.user, "key_file": self.accounts.key_file, "nodes": nodes}

    # -- Reconcile ----------------------------------------------------------------------
    def start_reconcile(self) -> Launch:
        """Make each node's managed accounts match the users table, as a job."""
        running = self.jobs.running(RECONCILE)
        if running is not None:
            return Launch(running)
        nodes = self.nodes()
        problems = [f"{NAMES[target]}: {self.accounts.missing(target)}" for target in nodes
                    if self.accounts.missing(target)]
        if len(problems) == len(nodes):
            raise Invalid("No node's accounts can be reached: " + "; ".join(problems) + ".")
        job = self.jobs.create(RECONCILE, self.actor, "reconciling system accounts")
        self.activity.record("accounts.reconcile", ", ".join(nodes))
        return Launch(job, reconcile_work(self.engine, self.accounts, nodes))

    def reconcile_now(self, nodes: list[str] | None = None, *, dry_run: bool = False) -> list[dict]:
        """The same, in this process, node by node: a report per node (an
        ``error`` for a node that cannot be reached). A dry run changes
        nothing and records nothing."""
        nodes = nodes or self.nodes()
        reports = []
        for target in nodes:
            try:
                reports.append(reconcile(self.engine, self.accounts, target, dry_run=dry_run))
            except NodeUnreachable as error:
                reports.append({"node": target, "error": str(error)})
        if not dry_run:
            self.activity.record("accounts.reconcile", ", ".join(nodes))
        return reports

    # -- Reset fingerprint --------------------------------------------------------------
    def reset_fingerprint(self, target: str, presented: str, *, read_now: bool = False) -> dict:
        """Pin ``presented`` for ``target`` after its host key changed on
        purpose. The admin confirms the fingerprint the node presented when
        it was refused (the panel and the API show it), or one just read
        from the node (``read_now``: ezpyr-accounts). Its waiting account
        tasks go on."""
        if target not in TARGETS:
            raise Invalid("The node is this or other.", "node")
        pin = self.tasks.pin(target)
        if pin is None:
            raise Invalid(f"No host key is pinned for {NAMES[target]} yet: it is pinned on first use.", "node")
        if not read_now and (not pin.presented or presented != pin.presented):
            raise Invalid(NOT_PRESENTED, "presented")
        result = reset_fingerprint(self.engine, self.accounts, target, presented)
        self.activity.record("accounts.reset_fingerprint", target, f"{result['old']} -> {result['new']}")
        node_id = self.dbsession.scalar(select(NodeIdentity.id))
        if node_id:
            # the node's account runner goes on at once, once this is committed
            event.listen(self.dbsession, "after_commit", lambda _s: wake_relay(node_id, CHANNEL), once=True)
        return result
