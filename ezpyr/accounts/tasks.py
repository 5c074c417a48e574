"""Account tasks follow users: every commit that creates, changes or
deletes a user or a user's SSH key queues, in the same transaction, the
requests that bring that user's system account on each node to match.
The worker applies them in order (:mod:`ezpyr.accounts.runner`), so a node
that is away gets them when it is back.

Changes a node applies from the other node (replication) queue nothing:
account work is the master's.
"""
from __future__ import annotations

import json
import weakref

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, attributes

from ezpyr.accounts import requests
from ezpyr.accounts.models import AccountTask, PinnedHostKey
from ezpyr.cluster.models import ClusterPeer
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import REPLAYING
from ezpyr.replication.wake import wake_relay
from ezpyr.users.models import User, UserKey

TOUCHED = "ezpyr.accounts.touched"
WAKE = "ezpyr.accounts.wake"
CHANNEL = "accounts"
TASKS = AccountTask.__table__


def _touch(target, event_: tuple) -> None:
    session = attributes.instance_state(target).session
    if session is not None and not session.info.get(REPLAYING):
        session.info.setdefault(TOUCHED, []).append(event_)


@event.listens_for(User, "after_insert")
def _user_inserted(_mapper, _connection, user):
    _touch(user, ("user", user.id))


@event.listens_for(User, "after_update")
def _user_updated(_mapper, _connection, user):
    history = attributes.get_history(user, "username")
    if history.deleted and history.deleted[0] != user.username:
        _touch(user, ("rename", history.deleted[0], user.username))
    _touch(user, ("user", user.id))


@event.listens_for(User, "after_delete")
def _user_deleted(_mapper, _connection, user):
    _touch(user, ("remove", user.username))


@event.listens_for(UserKey, "after_insert")
@event.listens_for(UserKey, "after_delete")
def _key_changed(_mapper, _connection, key):
    _touch(key, ("user", key.user_id))


def desired(connection, user_ids=None) -> dict[str, dict]:
    """username -> the ensure request for that user's account, as the
    users table says now (all users when ``user_ids`` is None): one query,
    each user with its keys."""
    users, keys = User.__table__, UserKey.__table__
    stmt = (select(users.c.username, users.c.suspended, keys.c.public_key)
            .select_from(users.outerjoin(keys, keys.c.user_id == users.c.id)))
    if user_ids is not None:
        stmt = stmt.where(users.c.id.in_(list(user_ids)))
    found: dict[str, tuple[bool, list[str]]] = {}
    for username, suspended, public_key in connection.execute(stmt):
        _suspended, keys_of = found.setdefault(username, (bool(suspended), []))
        if public_key is not None:
            keys_of.append(public_key)
    return {username: requests.ensure(username, keys_of, suspended)
            for username, (suspended, keys_of) in found.items()}


def targets(connection) -> list[str]:
    """This node always; the other node once there is one."""
    has_peer = connection.execute(select(ClusterPeer.__table__.c.id)).first() is not None
    return ["this", "other"] if has_peer else ["this"]


def queue(connection, reqs: list[dict], to: list[str]) -> int:
    """Queue ``reqs`` for each node in ``to``, in this order."""
    now = utcnow()
    rows = [{"target": target, "username": r.get("username") or r.get("to"),
             "request": json.dumps(r), "state": "waiting", "attempts": 0, "error": "",
             "created_at": now, "updated_at": now} for target in to for r in reqs]
    if rows:
        connection.execute(insert(TASKS), rows)
    return len(rows)


@event.listens_for(Session, "before_commit")
def _queue_account_tasks(session: Session) -> None:
    if session.info.get(REPLAYING) or not session.info.get(TOUCHED):
        return
    session.flush()
    touched = session.info.pop(TOUCHED, [])
    renames = [requests.rename(e[1], e[2]) for e in touched if e[0] == "rename"]
    removes = [requests.remove(e[1]) for e in touched if e[0] == "remove"]
    user_ids = list(dict.fromkeys(e[1] for e in touched if e[0] == "user"))
    connection = session.connection()
    ensures = list(desired(connection, user_ids).values()) if user_ids else []
    if queue(connection, renames + removes + ensures, targets(connection)):
        session.info[WAKE] = _node_id(connection)


_node_ids: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _node_id(connection) -> str | None:
    """This node's id, whose accounts runner to wake: read once per engine
    (a node keeps its id; the wake-up is only a hint, and a node made
    later is read when it exists)."""
    engine = connection.engine
    node_id = _node_ids.get(engine)
    if node_id is None:
        node = connection.execute(select(NodeIdentity.__table__.c.id)).first()
        node_id = node.id if node else None
        if node_id:
            _node_ids[engine] = node_id
    return node_id


@event.listens_for(Session, "after_commit")
def _wake_runner(session: Session) -> None:
    node_id = session.info.pop(WAKE, None)
    if node_id:
        wake_relay(node_id, CHANNEL)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(TOUCHED, None)
    session.info.pop(WAKE, None)


class AccountTaskService:
    """What the pages and commands show of the account tasks and pins."""

    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def states(self, usernames: list[str]) -> dict[str, dict[str, dict]]:
        """username -> node -> {"state": ok|waiting|failed, "detail": …}:
        the latest unfinished task of that user on that node decides."""
        result = {name: {} for name in usernames}
        if not usernames:
            return result
        rows = self.dbsession.execute(
            select(TASKS.c.username, TASKS.c.target, TASKS.c.state, TASKS.c.error)
            .where(TASKS.c.username.in_(usernames)).order_by(TASKS.c.id))
        for username, target, state, error in rows:
            current = result[username].get(target)
            if current is None or current["state"] != "waiting":
                result[username][target] = {
                    "state": state,
                    "detail": error or ("not applied yet" if state == "waiting" else "")}
        return result

    def counts(self) -> dict[str, dict[str, int]]:
        """node -> {"waiting": n, "failed": n}."""
        result = {t: {"waiting": 0, "failed": 0} for t in ("this", "other")}
        for target, state, n in self.dbsession.execute(
                select(TASKS.c.target, TASKS.c.state, func.count()).group_by(TASKS.c.target, TASKS.c.state)):
            result.setdefault(target, {"waiting": 0, "failed": 0})[state] = n
        return result

    def last_error(self, target: str) -> str:
        return self.dbsession.scalar(
            select(TASKS.c.error).where(TASKS.c.target == target, TASKS.c.state == "waiting",
                                        TASKS.c.error != "").order_by(TASKS.c.id).limit(1)) or ""

    def pin(self, target: str) -> PinnedHostKey | None:
        return self.dbsession.get(PinnedHostKey, target)
