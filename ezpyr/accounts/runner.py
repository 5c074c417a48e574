"""Applying account work on a node: the waiting tasks, in order
(:func:`apply_waiting`, run by the worker's accounts loop), and
:func:`reconcile`, which compares a node's managed accounts with the users
table and fixes the difference. Both go through one SSH session per node
(:class:`~ezpyr.accounts.client.AgentLink`), the node's host key checked
against its pin first."""
from __future__ import annotations

import json
import logging
import threading

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from ezpyr.accounts import requests
from ezpyr.accounts.client import NAMES, AgentLink, FingerprintChanged, NodeUnreachable
from ezpyr.accounts.models import AccountTask, PinnedHostKey
from ezpyr.accounts.settings import AccountSettings
from ezpyr.accounts.tasks import CHANNEL, desired, queue
from ezpyr.cluster.models import ClusterPeer
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import WRITABLE_ROLES
from ezpyr.replication.wake import WakeListener
from ezpyr.validation import Invalid

log = logging.getLogger(__name__)
TASKS = AccountTask.__table__
PINS = PinnedHostKey.__table__
CHUNK = 1000  # tasks read from the database at a time


def open_link(engine: Engine, settings: AccountSettings, target: str) -> AgentLink:
    """A session with ``target``'s agent. Pins the host key on first use;
    a different key raises FingerprintChanged (and is recorded, for the
    Reset page to show)."""
    reason = settings.missing(target)
    if reason:
        raise NodeUnreachable(reason)
    address = settings.address(target)
    with engine.connect() as conn:
        pin = conn.execute(select(PINS).where(PINS.c.target == target)).mappings().first()
    try:
        link = AgentLink(target, address, settings.user, settings.key_file,
                         pin["fingerprint"] if pin else None, settings.timeout)
    except FingerprintChanged as error:
        with engine.begin() as conn:
            # only against the pin compared with: a reset meanwhile stands
            conn.execute(update(PINS).where(PINS.c.target == target, PINS.c.fingerprint == error.pinned)
                         .values(presented=error.presented, presented_at=utcnow()))
        raise
    if pin is None:
        with engine.begin() as conn:
            conn.execute(PINS.insert().values(target=target, address=address, fingerprint=link.presented,
                                              presented="", pinned_at=utcnow()))
        log.info("pinned %s's SSH host key %s (%s)", NAMES[target], link.presented, address)
    return link


def _wait(engine, target: str, reason: str) -> None:
    """Record why ``target``'s tasks wait (written only when the reason
    changes: an idle node away for hours writes nothing)."""
    with engine.begin() as conn:
        conn.execute(update(TASKS).where(TASKS.c.target == target, TASKS.c.state == "waiting",
                                         TASKS.c.error != reason)
                     .values(error=reason, updated_at=utcnow()))


def apply_waiting(engine: Engine, settings: AccountSettings, target: str) -> dict:
    """Apply ``target``'s waiting tasks in order, through one session with
    its agent for as long as tasks keep coming (those queued meanwhile go
    in the same session), many tasks per batch request. A node that cannot
    be reached (or presents another host key) leaves them waiting, the
    reason recorded on each; a request the agent refuses or fails is
    marked failed (with its own error) and the next one goes on."""
    report = {"node": target, "applied": 0, "failed": 0, "waiting": 0, "error": ""}
    with engine.connect() as conn:
        if conn.scalar(select(func.count()).select_from(TASKS).where(
                TASKS.c.target == target, TASKS.c.state == "waiting")) == 0:
            return report
    link = None
    try:
        link = open_link(engine, settings, target)
        while True:
            with engine.connect() as conn:
                tasks = conn.execute(select(TASKS.c.id, TASKS.c.username, TASKS.c.request)
                                     .where(TASKS.c.target == target, TASKS.c.state == "waiting")
                                     .order_by(TASKS.c.id).limit(CHUNK)).all()
            if not tasks:
                break
            position = 0
            for answers in link.batches([json.loads(t.request) for t in tasks]):
                # each batch's outcome is recorded as soon as it is known
                done, failed = [], []
                for task, (_request, answer) in zip(tasks[position:], answers):
                    if answer.get("ok"):
                        done.append(task)
                    else:
                        failed.append((task, answer.get("error", "refused")))
                position += len(answers)
                _record(engine, target, done, failed)
                report["applied"] += len(done)
                report["failed"] += len(failed)
    except NodeUnreachable as error:
        report["error"] = str(error)
        _wait(engine, target, str(error))
        log.warning("account tasks for %s wait: %s", NAMES[target], error)
    finally:
        if link is not None:
            link.close()
    with engine.connect() as conn:
        report["waiting"] = conn.scalar(select(func.count()).select_from(TASKS).where(
            TASKS.c.target == target, TASKS.c.state == "waiting"))
    return report


def _record(engine, target: str, done: list, failed: list) -> None:
    """Applied tasks go (and earlier failures of the same users with them);
    refused ones are marked failed with the agent's message."""
    if not done and not failed:
        return
    with engine.begin() as conn:
        if done:
            conn.execute(delete(TASKS).where(TASKS.c.id.in_([t.id for t in done])))
            last = {}
            for task in done:
                last[task.username] = task.id
            for username, task_id in last.items():
                conn.execute(delete(TASKS).where(TASKS.c.target == target, TASKS.c.username == username,
                                                 TASKS.c.state == "failed", TASKS.c.id < task_id))
        for task, error in failed:
            conn.execute(update(TASKS).where(TASKS.c.id == task.id).values(
                state="failed", error=error, attempts=TASKS.c.attempts + 1, updated_at=utcnow()))


def reconcile(engine: Engine, settings: AccountSettings, target: str, *, dry_run: bool = False,
              progress=None) -> dict:
    """Compare ``target``'s managed accounts with the users table and (unless
    ``dry_run``) fix the difference: missing accounts made, accounts whose
    keys, lock or shell differ changed, accounts of deleted users removed.
    Accounts ezpyr does not manage never appear in the agent's list, so
    they are never touched."""
    progress = progress or (lambda done, total, message=None: None)
    with engine.connect() as conn:
        upto = conn.scalar(select(func.max(TASKS.c.id))) or 0
        wanted = desired(conn)
    link = open_link(engine, settings, target)
    try:
        listing = link.call({"op": "list"})
        if not listing.get("ok"):
            raise NodeUnreachable(f"the agent on {link.address} could not list accounts: {listing.get('error')}")
        actual = {a["username"]: a for a in listing["accounts"]}
        create = sorted(u for u in wanted if u not in actual)
        change = sorted(u for u, r in wanted.items() if u in actual and (
            actual[u]["keys"] != r["keys"] or actual[u]["locked"] != r["locked"]
            or not actual[u].get("shell_ok", True)))
        remove = sorted(u for u in actual if u not in wanted)
        report = {"node": target, "address": link.address, "dry_run": dry_run, "create": create,
                  "change": change, "remove": remove, "to_do": len(create) + len(change) + len(remove),
                  "errors": []}
        if dry_run or not report["to_do"]:
            return report
        todo = [wanted[u] for u in create + change] + [requests.remove(u) for u in remove]
        total = len(todo)
        progress(0, total, f"accounts on {NAMES[target]}")
        for done, (request, answer) in enumerate(link.requests(todo), 1):
            if not answer.get("ok"):
                report["errors"].append(f"{request.get('username')}: {answer.get('error')}")
            progress(done, total, f"accounts on {NAMES[target]}")
    finally:
        link.close()
    if not report["errors"]:
        # the node now matches the users table as it was read: the tasks
        # queued before that are done
        with engine.begin() as conn:
            conn.execute(delete(TASKS).where(TASKS.c.target == target, TASKS.c.id <= upto))
    return report


def reset_fingerprint(engine: Engine, settings: AccountSettings, target: str, presented: str) -> dict:
    """Pin ``presented`` (the fingerprint the admin confirmed) for ``target``."""
    address = settings.address(target)
    with engine.begin() as conn:
        pin = conn.execute(select(PINS).where(PINS.c.target == target)).mappings().first()
        if pin is None:
            raise Invalid(f"No host key is pinned for {NAMES[target]} yet: it is pinned on first use.")
        if not presented:
            raise Invalid("Confirm the fingerprint the node presents now.")
        conn.execute(update(PINS).where(PINS.c.target == target).values(
            fingerprint=presented, presented="", presented_at=None, address=address, pinned_at=utcnow()))
        conn.execute(update(TASKS).where(TASKS.c.target == target, TASKS.c.state == "waiting")
                     .values(error=""))
    log.warning("%s's SSH host key pin reset: %s -> %s", NAMES[target], pin["fingerprint"], presented)
    return {"node": target, "old": pin["fingerprint"], "new": presented}


class AccountsLoop:
    """The worker's accounts loop: applies the waiting tasks of both nodes,
    each node in a thread of its own (a node that is slow or away never
    holds the other back), when woken by a commit that queued some and
    every ``retry_interval``."""

    def __init__(self, engine: Engine, settings: AccountSettings, stop_event: threading.Event):
        self.engine = engine
        self.settings = settings
        self.stop_event = stop_event
        self.threads: list[threading.Thread] = []
        self.kicks = {target: threading.Event() for target in ("this", "other")}
        self._seen: tuple | None = None  # (master, other node reachable) at the last look

    def start(self) -> None:
        self.threads = [threading.Thread(target=self.run, name="accounts", daemon=True)]
        self.threads += [threading.Thread(target=self.apply_loop, args=(target,), name=f"accounts-{target}",
                                          daemon=True) for target in self.kicks]
        for thread in self.threads:
            thread.start()

    def master(self) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(NodeIdentity.__table__.c.role)) in WRITABLE_ROLES

    def run(self) -> None:
        """Wakes both nodes' threads on each commit that queued tasks (and on
        the retry interval); reconciles after a takeover or a return."""
        with self.engine.connect() as conn:
            node = conn.execute(select(NodeIdentity.__table__)).mappings().first()
        listener = WakeListener(node["id"] if node else "", CHANNEL)
        try:
            while not self.stop_event.is_set():
                for kick in self.kicks.values():
                    kick.set()
                try:
                    self.look()
                except Exception as error:  # noqa: BLE001 - the loop must go on; tasks stay waiting
                    log.warning("accounts loop: %s", error)
                listener.wait(self.settings.retry_interval)
        finally:
            listener.close()

    def apply_loop(self, target: str) -> None:
        kick = self.kicks[target]
        while not self.stop_event.is_set():
            kick.wait(self.settings.retry_interval)
            kick.clear()
            try:
                if self.master():  # account work is the master's
                    apply_waiting(self.engine, self.settings, target)
            except Exception as error:  # noqa: BLE001 - the loop must go on; tasks stay waiting
                log.warning("accounts loop (%s): %s", NAMES[target], error)

    def look(self) -> None:
        with self.engine.connect() as conn:
            role = conn.scalar(select(NodeIdentity.__table__.c.role))
            peer_up = conn.scalar(select(ClusterPeer.__table__.c.reachable))
        # peer_up: None while there is no other node, then its last probe
        seen, self._seen = self._seen, (role in WRITABLE_ROLES, peer_up)
        if role in WRITABLE_ROLES and seen is not None and (
                not seen[0] or (peer_up and seen[1] is False)):
            self.reconcile_after_rejoin(became_master=not seen[0])

    def reconcile_after_rejoin(self, became_master: bool) -> None:
        """This node became master (a takeover), or the other node is back
        after being away: make both nodes' accounts match the users table."""
        nodes = ("this", "other") if became_master else ("other",)
        for target in nodes:
            if self.settings.missing(target):
                continue
            try:
                report = reconcile(self.engine, self.settings, target)
            except NodeUnreachable as error:
                log.warning("reconcile of %s's accounts waits: %s", NAMES[target], error)
            else:
                log.info("reconciled %s's accounts: %s", NAMES[target],
                         {k: report[k] for k in ("create", "change", "remove", "errors")})


def accounts_after_add(engine: Engine, settings: dict, progress, rows_done: int) -> dict:
    """Add's last step: the secondary's accounts, counted in Add's progress.
    When the secondary's sshd cannot be reached they are queued instead, and
    made when it answers."""
    accounts = AccountSettings.from_settings(settings)
    if accounts.missing("other"):
        return {"skipped": accounts.missing("other")}

    def counted(done, total, message=None):
        progress(rows_done + done, rows_done + total, message)

    try:
        return reconcile(engine, accounts, "other", progress=counted)
    except NodeUnreachable as error:
        with engine.begin() as conn:
            queue(conn, list(desired(conn).values()), ["other"])
        return {"waiting": str(error)}
