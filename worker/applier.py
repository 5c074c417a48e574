"""The applier: consumes the peer's changes from the peer's broker and
applies them here.

Broker messages carry bundles of change messages. They are taken in
batches (``batch`` broker messages); one database transaction applies the batch
and advances the version vector; the messages are acknowledged only after
that commit. A message already applied is a no-op. A message whose seq
skips ahead stops the batch: it and the rest are dropped (acknowledged
unapplied) and the origin is asked to resend from the first missing seq.
A message from a newer schema revision than this node's pauses the applier.
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from ezpyr.replication.apply import ChangeMessage, apply_batch
from ezpyr.replication.broker import changes_queue, connect
from ezpyr.replication.schema import is_newer_revision

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    applied: int = 0
    duplicates: int = 0
    gap_from: tuple | None = None  # (origin, epoch, first missing seq)
    paused: str = ""
    conflict: str = ""  # split-brain found: nothing of the batch applied, messages kept
    conflict_epoch: int = 0  # the other node's epoch, as its refused change carries it
    last_commit_time: float = 0.0
    lags: list = field(default_factory=list)  # seconds from origin commit to apply


class Applier:
    def __init__(self, engine: Engine, broker_url: str, self_id: str, *,
                 prefetch: int = 50, batch: int = 20):
        self.engine = engine
        self.broker_url = broker_url
        self.self_id = self_id
        self.prefetch = prefetch
        self.batch = batch
        self._connection = None
        self._consumer = None
        self._pending = []

    def _collect(self, body, message):
        self._pending.append((body, message))

    def _ensure(self):
        if self._consumer is None:
            options = {}
            connection = connect(self.broker_url)
            connection.ensure_connection(max_retries=1)
            if connection.transport.driver_type != "amqp":
                # a server-less transport polls its store: poll often
                connection.transport.polling_interval = 0.02
            channel = connection.channel()
            queue = changes_queue(self.self_id)(channel)
            queue.declare()
            consumer = connection.Consumer(queue, channel=channel, callbacks=[self._collect],
                                           accept=["json"], prefetch_count=self.prefetch, **options)
            consumer.consume()
            self._connection, self._consumer = connection, consumer
        return self._connection

    def close(self):
        if self._connection is not None:
            try:
                if self._pending:  # never applied: let the broker give them again
                    for _, message in self._pending:
                        try:
                            message.requeue()
                        except Exception:  # noqa: BLE001 - the connection may be gone
                            pass
                self._connection.release()
            finally:
                self._connection = None
                self._consumer = None
                self._pending = []

    def receive(self, timeout: float = 0.2) -> int:
        """Wait up to ``timeout`` for messages; collect what has arrived
        (up to one batch). Returns how many are pending."""
        connection = self._ensure()
        deadline = time.monotonic() + timeout
        try:
            connection.drain_events(timeout=timeout)
            while len(self._pending) < self.batch and time.monotonic() < deadline + timeout:
                connection.drain_events(timeout=0.001 if self._pending else max(0.0, deadline - time.monotonic()))
        except (socket.timeout, TimeoutError):
            pass
        return len(self._pending)

    def apply_pending(self) -> BatchReport:
        report = BatchReport()
        if not self._pending:
            return report
        batch, self._pending = self._pending[: self.batch], self._pending[self.batch:]
        messages = [ChangeMessage(**{k: item[k] for k in ChangeMessage.__dataclass_fields__ if k in item})
                    for body, _ in batch for item in body.get("bundle", [body])]
        newer = next((m for m in messages if is_newer_revision(m.schema_revision)), None)
        if newer is not None:
            for _, message in batch:
                message.requeue()
            report.paused = (f"the peer sends changes of schema revision {newer.schema_revision}, "
                             "newer than this node's: upgrade this node (ezpyr-init CONFIG)")
            return report
        with self.engine.begin() as conn:
            result = apply_batch(conn, messages)
            if result.conflict:
                conn.rollback()  # apply none of it: the admin resolves
        if result.conflict:
            for _, message in batch:
                message.requeue()
            report.conflict = result.conflict
            report.conflict_epoch = result.conflict_epoch
            return report
        report.applied, report.duplicates, report.gap_from = (
            result.applied, result.duplicates, result.gap)
        report.last_commit_time = now = time.time()
        for change in result.applied_messages:
            if change.created_at:
                created = dt.datetime.fromisoformat(change.created_at).replace(tzinfo=dt.timezone.utc)
                report.lags.append(now - created.timestamp())
        for _, message in batch:
            message.ack()
        return report
