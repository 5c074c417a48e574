"""This node's view of the cluster (node-local, never replicated)."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, LongText, Timestamp, utcnow
from ezpyr.node.models import Role


class Link(enum.StrEnum):
    """What an admin chose for the link to the other node."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class ClusterPeer(Base):
    """The other node, as this node knows it. At most one row. The worker
    keeps the status columns current; pages only read them."""

    __tablename__ = "cluster_peer"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the peer's node id
    name: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(255))  # the peer's panel, host:port
    # the peer's broker, as reached from here: a URL with its password, so
    # stored encrypted with this node's secret key
    broker_url_encrypted: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)  # the cluster secret (HMAC key)
    # during a rotation (ezpyr-cluster rotate-secret): the next secret, received and
    # accepted but not signed with yet; then the previous one, accepted until the
    # other node's first change message signed with the current one arrives
    next_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    # this node's own streams as far as it had numbered them when it began signing with
    # the current secret: what it may have signed with the previous one (JSON vector)
    signed_before_switch: Mapped[str | None] = mapped_column(LongText, nullable=True)
    role: Mapped[str] = mapped_column(String(32), default=Role.SLAVE)  # last known
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    # what the admin chose (Disconnect: no probing, no shipping, changes kept)
    link: Mapped[str] = mapped_column(String(16), default=Link.CONNECTED)
    reachable: Mapped[bool] = mapped_column(Boolean, default=False)
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    peer_vector: Mapped[str] = mapped_column(LongText, default="{}")  # JSON, as the peer reported it
    backlog_unsent: Mapped[int] = mapped_column(Integer, default=0)
    backlog_queued: Mapped[int] = mapped_column(Integer, default=0)
    queue_consumers: Mapped[int] = mapped_column(Integer, default=0)
    lag_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    applier_state: Mapped[str] = mapped_column(Text, default="")
    # both nodes hold changes the other lacks: automatic sync stops until resolved
    split_brain_since: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    split_brain_detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class GrantedHost(Base):
    """An address allowed to call this node's cluster API."""

    __tablename__ = "granted_hosts"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    granted_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class ApiNonce(Base):
    """Nonces of accepted cluster API requests, kept for the freshness
    window so that a replayed request is refused."""

    __tablename__ = "api_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, index=True)


class SecondarySetup(Base):
    """On a secondary awaiting setup: which primary may set it up, and the
    one-time setup key (encrypted) that the primary's Add must sign with.
    The key expires at ``expires_at``; one Add may use it (``used_at`` is
    set when it begins); the row is deleted when that Add finishes or is
    aborted, so the key dies with it."""

    __tablename__ = "secondary_setup"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    primary_address: Mapped[str] = mapped_column(String(255))
    setup_key_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)


class WorkerState(Base):
    """This node's worker as it last reported itself (node-local; one row).
    A heartbeat older than WORKER_STALE_SECONDS means it is not running."""

    __tablename__ = "worker_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    relay_state: Mapped[str] = mapped_column(Text, default="")
    # JSON: cumulative counts of the lag measured at each probe (/metrics)
    lag_histogram: Mapped[str] = mapped_column(Text, default="")
