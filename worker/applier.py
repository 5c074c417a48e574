"""The applier: consumes the other node's changes from the other node's
broker and applies them here.

It is a kombu consumer in the ``ConsumerMixin`` style: one connection,
AMQP heartbeats checked while idle, reconnection with back-off, prefetch
sized to the batch. Broker messages carry bundles of change messages. The
messages that have arrived (up to ``batch`` of them) are applied in one
database transaction that also advances the version vector, and are
acknowledged only after that commit. A message already applied is a no-op.
A message whose seq skips ahead stops the batch: it and the rest are
dropped (acknowledged unapplied) and the origin is asked to resend from the
first missing seq. A message from a newer schema revision than this node's
pauses the applier.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
import logging
import socket
import time
from dataclasses import dataclass, field

from kombu.mixins import ConsumerMixin
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ezpyr.replication.apply import ChangeMessage, apply_batch
from ezpyr.replication.broker import changes_queue, connect, describe, tune
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


class Applier(ConsumerMixin):
    """``receive`` + ``apply_pending`` are one step (tests drive them);
    ``run`` consumes until ``should_stop``, calling ``on_report`` with each
    batch's report and keeping ``state`` in words for the status page."""

    connect_max_retries = None  # keep trying; should_stop ends the wait

    def __init__(self, engine: Engine, broker_url: str, self_id: str, *,
                 batch: int = 50, heartbeat: float | None = None, on_report=None,
                 ca_file: str | None = None):
        self.engine = engine
        self.broker_url = broker_url
        self.self_id = self_id
        self.batch = batch
        self.connection = connect(broker_url, heartbeat=heartbeat, ca_file=ca_file)
        self.on_report = on_report or (lambda report: None)
        self.state = "connecting to the other node's broker"
        self._pending = []
        self._live = None  # the connection consume() runs on
        self._consumer = None  # receive()'s own consumer, outside run()

    # -- kombu's consumer pattern -----------------------------------------
    def get_consumers(self, Consumer, channel):
        return [Consumer(queues=[changes_queue(self.self_id)], callbacks=[self._collect],
                         accept=["json"], prefetch_count=self.batch)]

    def create_connection(self):
        return tune(self.connection.clone())

    def establish_connection(self):
        # ConsumerMixin's, with a shorter back-off: the broker is back within seconds
        # of a restart, and the applier should be too
        @contextmanager
        def established():
            conn = self.create_connection()
            try:
                conn.ensure_connection(self.on_connection_error, self.connect_max_retries,
                                       interval_start=0.5, interval_step=1, interval_max=5,
                                       callback=lambda: None if not self.should_stop else self._give_up())
                yield conn
            except BaseException:
                conn.collect()  # it may be dead: drop it without waiting for the broker's goodbye
                raise
            else:
                conn.release()
        return established()

    def _give_up(self):
        raise _Stopped()

    def on_connection_error(self, exc, interval):
        self.state = (f"reconnecting to the other node's broker: {describe(exc)} "
                      f"(next try in {interval:g} s)")
        log.warning("applier: %s (%s); next try in %.1f s", describe(exc), type(exc).__name__, interval)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self._live = connection
        self.state = "connected: waiting for changes"
        log.info("applier: consuming %s", changes_queue(self.self_id).name)

    def on_consume_end(self, connection, channel):
        self._requeue_pending()
        self._live = None

    def on_iteration(self):
        if self._live is not None:
            self._live.heartbeat_check()  # also while messages keep coming
        if not self._pending:
            return
        self._drain_ready(self._live)
        while self._pending and not self.should_stop:
            report = self.apply_pending()
            self.on_report(report)
            if report.paused or report.conflict:
                self.should_stop = True

    def on_decode_error(self, message, exc):
        log.warning("applier: a message that is not JSON was dropped (%s)", exc)
        message.ack()

    def run(self, **kwargs):
        """Consume until should_stop. A lost broker connection (a heartbeat
        missed twice, a reset) is said in ``state`` at once and retried with
        back-off; this node's database trouble is left to the caller (it
        restarts us)."""
        errors = self.connection.connection_errors + self.connection.channel_errors
        failures = 0
        try:
            while not self.should_stop:
                try:
                    for _ in self.consume(limit=None, safety_interval=self._safety_interval(), **kwargs):
                        failures = 0
                except errors as error:
                    delay = min(5.0, 0.5 * 2 ** failures)
                    failures += 1
                    self.state = (f"reconnecting to the other node's broker: {describe(error)} "
                                  f"(next try in {delay:g} s)")
                    log.warning("applier: connection lost: %s (%s)", describe(error), type(error).__name__)
                    self._pause(delay)
        except _Stopped:
            pass
        finally:
            self._requeue_pending()

    def _safety_interval(self) -> float:
        """How long one wait for a message may last. py-amqp's wait only
        returns after that long with no frame at all, and the broker sends
        its heartbeats every half interval: wait less, or ours never go out."""
        beat = self.connection.heartbeat or 0
        return min(1.0, beat / 4) if beat else 1.0

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.should_stop and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- one step ------------------------------------------------------------
    def _collect(self, body, message):
        self._pending.append((body, message))

    def _drain_ready(self, connection) -> None:
        """Take what is already waiting, up to a batch, without sleeping."""
        try:
            while len(self._pending) < self.batch:
                connection.drain_events(timeout=0)
        except (socket.timeout, TimeoutError):
            pass

    def receive(self, timeout: float = 0.2) -> int:
        """Outside ``run``: wait up to ``timeout`` for messages and collect
        what has arrived (up to one batch). Returns how many are pending."""
        if self._consumer is None:
            tune(self.connection).ensure_connection(max_retries=1)
            channel = self.connection.default_channel
            consumer = self.connection.Consumer(changes_queue(self.self_id), channel=channel,
                                                callbacks=[self._collect], accept=["json"],
                                                prefetch_count=self.batch)
            consumer.consume()
            self._consumer = consumer
        try:
            self.connection.drain_events(timeout=timeout)
        except (socket.timeout, TimeoutError):
            return len(self._pending)
        self._drain_ready(self.connection)
        return len(self._pending)

    def _requeue_pending(self) -> None:
        pending, self._pending = self._pending, []
        for _, message in pending:  # never applied: let the broker give them again
            try:
                message.requeue()
            except Exception:  # noqa: BLE001 - the connection may be gone; the broker redelivers
                pass

    def close(self) -> None:
        self.should_stop = True
        self._requeue_pending()
        self._consumer = None
        self.connection.release()

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
            report.paused = (f"the other node sends changes of schema revision {newer.schema_revision}, "
                             "newer than this node's: upgrade this node (ezpyr-init CONFIG)")
            return report
        try:
            with self.engine.begin() as conn:
                result = apply_batch(conn, messages)
                if result.conflict:
                    conn.rollback()  # apply none of it: the admin resolves
        except SQLAlchemyError as error:
            self._pending = batch + self._pending  # not applied: requeued when we stop
            raise DatabaseTrouble(error) from error
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
        self.state = "connected: applying changes" if self._pending else "connected: waiting for changes"
        return report


class DatabaseTrouble(Exception):
    """This node's database failed while applying: not a broker error, so
    kombu's reconnect loop lets it through to the worker, which retries."""

    def __init__(self, error: BaseException):
        super().__init__(f"this node's database: {type(getattr(error, 'orig', None) or error).__name__}")
        self.error = error


class _Stopped(Exception):
    """Raised inside kombu's reconnect loop when we are asked to stop."""
