"""Counting failed sign-ins so that an attacker cannot aim a lockout.

Policy (``lockout_threshold`` T and ``lockout_minutes`` M are panel
settings; every count lives for a window of M minutes from its first
failure, on this node only):

* one account from one address: T failures close that account **to that
  address** until the window ends;
* one address: 4 T failures, whatever the accounts, close the panel's
  sign-in **to that address** (a username sprayed across accounts);
* one account from all addresses: 4 T failures close the account to
  addresses it has never signed in from, unless it has two-factor sign-in
  (the right password and the right code still get in);
* all accounts from all addresses: 20 T failures do the same for every
  account.

So a foreign address can lock out only itself: the account's owner, from an
address they signed in from before (this node's activity log), or with
their second factor, still gets in.

Counting cannot race: each attempt is counted *before* its password or code
is checked, by one upsert per key (``INSERT … ON DUPLICATE KEY UPDATE
failures = failures + 1`` on MariaDB, ``ON CONFLICT … DO UPDATE`` on
SQLite) in a transaction of its own, committed at once; the count it reads
back is its own. An attempt that succeeds takes its count back.

Names typed that belong to no account are counted under a digest, never
stored or shown as typed (a mistyped name is often a password).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import LoginThrottle
from ezpyr.meta import utcnow

ADDRESS_FACTOR = 4
ACCOUNT_FACTOR = 4
ALL_FACTOR = 20
# A successful sign-in from an address within this long makes it the account's own.
KNOWN_ADDRESS_DAYS = 90

T = LoginThrottle.__table__


@dataclass(frozen=True)
class Attempt:
    """Who tries to sign in, from where; ``username`` is empty for a name
    that belongs to no account (``label`` then stands for it)."""

    username: str
    label: str
    address: str

    @classmethod
    def of(cls, typed: str, address: str, exists: bool) -> "Attempt":
        if exists:
            return cls(typed, typed, address or "")
        digest = hashlib.sha256(typed.encode("utf-8", "replace")).hexdigest()[:16]
        return cls("", "?" + digest, address or "")

    def keys(self) -> dict[str, tuple[str, str, str]]:
        """key -> (kind, username, address)"""
        keys = {f"pair:{self.label}|{self.address}": ("pair", self.username, self.address),
                f"address:{self.address}": ("address", "", self.address),
                "all": ("all", "", "")}
        if self.username:
            keys[f"account:{self.username}"] = ("account", self.username, "")
        return keys


@dataclass
class Verdict:
    closed: bool
    why: str = ""  # "pair", "address", "account", "all"
    minutes_left: int = 0
    failures: int = 0  # on the pair, for the "attempts left" message


class Throttle:
    def __init__(self, engine: Engine, threshold: int, minutes: int):
        self.engine = engine
        self.threshold = threshold
        self.minutes = minutes

    def limits(self) -> dict[str, int]:
        t = self.threshold
        return {"pair": t, "address": ADDRESS_FACTOR * t, "account": ACCOUNT_FACTOR * t, "all": ALL_FACTOR * t}

    # -- counting ------------------------------------------------------------------
    def count(self, attempt: Attempt) -> dict[str, int]:
        """Count one attempt under each of its keys, atomically (one upsert
        per key), committed at once; returns each key's count including
        this attempt. A deadlock between concurrent attempts is retried."""
        for tries in range(5):
            try:
                return self._count(attempt)
            except OperationalError as error:
                if not _deadlock(error) or tries == 4:
                    raise
        raise AssertionError("unreachable")

    def _count(self, attempt: Attempt) -> dict[str, int]:
        now = utcnow()
        cutoff = now - dt.timedelta(minutes=self.minutes)
        counts = {}
        engine = self.engine
        if engine.dialect.name != "sqlite":  # no gap locks between concurrent first failures
            engine = engine.execution_options(isolation_level="READ COMMITTED")
        with engine.begin() as conn:
            for key, (kind, username, address) in attempt.keys().items():
                conn.execute(_upsert(conn.dialect.name, now, cutoff).values(
                    key=key, kind=kind, username=username, address=address, failures=1,
                    window_started_at=now))
                counts[key] = conn.execute(select(T.c.failures).where(T.c.key == key)).scalar_one()
        return counts

    def take_back(self, attempt: Attempt, dbsession, attempts: int = 1, done: bool = True) -> None:
        """A step that succeeded is no failure: the counts of its
        ``attempts`` go back down; when the whole sign-in is ``done`` the
        account-from-this-address count is cleared. In the caller's
        transaction."""
        keys = list(attempt.keys())
        if done:
            dbsession.execute(delete(T).where(T.c.key == keys[0]))
            keys = keys[1:]
        dbsession.execute(update(T).where(T.c.key.in_(keys)).values(
            failures=case((T.c.failures > attempts, T.c.failures - attempts), else_=0)))

    # -- deciding -------------------------------------------------------------------
    def verdict(self, counts: dict[str, int], attempt: Attempt, *, own_address: bool,
                second_factor: bool, counted: bool = True) -> Verdict:
        """Whether this attempt may go on. ``counts`` include the attempt
        when ``counted``; a count equal to the limit then still passes (it
        is the last allowed try)."""
        limits = self.limits()
        over = (lambda n, limit: n > limit) if counted else (lambda n, limit: n >= limit)
        keys = attempt.keys()
        pair_key = next(iter(keys))
        order = [(pair_key, "pair"), (f"address:{attempt.address}", "address")]
        if not (own_address or second_factor):
            order += [(f"account:{attempt.username}", "account"), ("all", "all")]
        for key, kind in order:
            if key in counts and over(counts[key], limits[kind]):
                return Verdict(True, kind, self._minutes_left(key), counts.get(pair_key, 0))
        return Verdict(False, failures=counts.get(pair_key, 0))

    def current(self, attempt: Attempt) -> dict[str, int]:
        """Each key's count in its live window (not counting anything)."""
        cutoff = utcnow() - dt.timedelta(minutes=self.minutes)
        with self.engine.connect() as conn:
            rows = conn.execute(select(T.c.key, T.c.failures).where(
                T.c.key.in_(list(attempt.keys())), T.c.window_started_at >= cutoff)).all()
        return dict(rows)

    def _minutes_left(self, key: str) -> int:
        with self.engine.connect() as conn:
            started = conn.execute(select(T.c.window_started_at).where(T.c.key == key)).scalar()
        if started is None:
            return self.minutes
        left = started + dt.timedelta(minutes=self.minutes) - utcnow()
        return max(1, int(left.total_seconds() // 60) + 1)

    # -- what admins see --------------------------------------------------------------
    def throttled(self, dbsession) -> list[dict]:
        """Every key over its limit now: kind, account, address, failures, until."""
        cutoff = utcnow() - dt.timedelta(minutes=self.minutes)
        limits = self.limits()
        rows = dbsession.execute(select(LoginThrottle).where(
            LoginThrottle.window_started_at >= cutoff)).scalars()
        out = []
        for row in rows:
            if row.failures >= limits.get(row.kind, self.threshold):
                out.append({"kind": row.kind, "username": row.username, "address": row.address,
                            "failures": row.failures,
                            "until": row.window_started_at + dt.timedelta(minutes=self.minutes)})
        return sorted(out, key=lambda r: (r["kind"], r["username"], r["address"]))

    def is_locked(self, dbsession, username: str) -> bool:
        """Whether any address, or the account as a whole, is held back from it."""
        cutoff = utcnow() - dt.timedelta(minutes=self.minutes)
        limits = self.limits()
        rows = dbsession.execute(select(T.c.kind, T.c.failures).where(
            T.c.username == username, T.c.window_started_at >= cutoff)).all()
        return any(failures >= limits[kind] for kind, failures in rows)

    def unlock(self, dbsession, username: str) -> bool:
        """Clear every count of the account (from any address); whether it was locked."""
        was = self.is_locked(dbsession, username)
        dbsession.execute(delete(T).where(T.c.username == username, T.c.kind.in_(("pair", "account"))))
        return was

    @staticmethod
    def unlock_address(dbsession, address: str) -> bool:
        return dbsession.execute(delete(T).where(
            or_(T.c.key == f"address:{address}", (T.c.kind == "pair") & (T.c.address == address))
        )).rowcount > 0


def _upsert(dialect: str, now: dt.datetime, cutoff: dt.datetime):
    """INSERT a first failure, or add one to the count (a new window when
    the old one ran out): one statement, so concurrent attempts cannot
    both read the same count."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.mysql import insert as dialect_insert
    stmt = dialect_insert(T)
    stale = T.c.window_started_at < cutoff
    # failures first: MariaDB applies the assignments in order, and the
    # second must still see the old window
    bump = {"failures": case((stale, 1), else_=T.c.failures + 1),
            "window_started_at": case((stale, now), else_=T.c.window_started_at)}
    if dialect == "sqlite":
        return stmt.on_conflict_do_update(index_elements=[T.c.key], set_=bump)
    return stmt.on_duplicate_key_update(**bump)


def _deadlock(error: OperationalError) -> bool:
    code = error.orig.args[0] if getattr(error.orig, "args", None) else None
    return code in (1213, 1205) or "locked" in str(error.orig).lower()


def own_address(dbsession, username: str, address: str) -> bool:
    """Whether ``username`` signed in from ``address`` on this node lately."""
    if not (username and address):
        return False
    since = utcnow() - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
    return dbsession.scalar(select(ActivityEntry.id).where(
        ActivityEntry.action == "auth.login", ActivityEntry.username == username,
        ActivityEntry.remote_addr == address, ActivityEntry.at >= since).limit(1)) is not None
