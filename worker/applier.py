"""The applier: consumes the other node's changes from the other node's
broker and applies them here.

It is a kombu consumer in the ``ConsumerMixin`` style: one connection,
AMQP heartbeats checked while idle, reconnection with back-off, prefetch
sized to the batch. Broker messages carry signed bundles of change messages
(``ezpyr.replication.messages``). Each one's signature is checked before
anything in it is read: an unsigned, forged, re-labelled or malformed one
is refused: recorded (``ezpyr.replication.refusals``), logged, and rejected
on the broker without requeueing, never applied and never acknowledged as
applied. The messages that have arrived (up to ``batch`` of them, or their
bodies up to ``batch_bytes``) are
applied in one database transaction that also advances the version vector,
and are acknowledged only after that commit. A message already applied (a
redelivery, or a genuine message replayed) is a no-op.
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

from ezpyr.meta import replicated_tables
from ezpyr.replication.apply import apply_batch
from ezpyr.replication.broker import changes_queue, connect, describe, tune
from ezpyr.replication.messages import KeySource, MessageRefused, Refusal, open_bundle
from ezpyr.replication.refusals import record_refusal
from ezpyr.replication.schema import is_newer_revision

log = logging.getLogger(__name__)

# Broker messages applied in one transaction (and the prefetch), and the most
# bytes of their bodies held and applied at once: a catch-up of messages of
# one change each applies 500 per commit, and a backlog of large bundles
# (up to 4 MB each) is never held more than about 16 MB at a time.
BATCH = 500
BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class BatchReport:
    applied: int = 0
    duplicates: int = 0
    gap_from: tuple | None = None  # (origin, epoch, first missing seq)
    paused: str = ""
    conflict: str = ""  # split-brain found: nothing of the batch applied, messages kept
    conflict_epoch: int = 0  # the other node's epoch, as its refused change carries it
    refused: list = field(default_factory=list)  # (Refusal, detail) of each broker message refused
    last_commit_time: float = 0.0
    lags: list = field(default_factory=list)  # seconds from origin commit to apply


class Applier(ConsumerMixin):
    """``receive`` + ``apply_pending`` are one step (tests drive them);
    ``run`` consumes until ``should_stop``, calling ``on_report`` with each
    batch's report and keeping ``state`` in words for the status page."""

    connect_max_retries = None  # keep trying; should_stop ends the wait

    def __init__(self, engine: Engine, broker_url: str, self_id: str, keys: KeySource, *,
                 peer_id: str | None = None, batch: int = BATCH, batch_bytes: int = BATCH_BYTES,
                 heartbeat: float | None = None, on_report=None, ca_file: str | None = None):
        self.engine = engine
        self.broker_url = broker_url
        self.self_id = self_id
        self.keys = keys
        self.peer_id = peer_id  # the only sender accepted (None: whoever signs with the secret)
        self.batch = batch  # broker messages per transaction, and the prefetch
        self.batch_bytes = batch_bytes  # ... and their bodies' bytes, held and applied at once
        self.connection = connect(broker_url, heartbeat=heartbeat, ca_file=ca_file)
        self.on_report = on_report or (lambda report: None)
        self.state = "connecting to the other node's broker"
        self._pending = []
        self._pending_bytes = 0
        self._live = None  # the connection consume() runs on
        self._consumer = None  # receive()'s own consumer, outside run()

    # -- kombu's consumer pattern -----------------------------------------
    def get_consumers(self, Consumer, channel):
        # on_message: the raw message, not decoded by kombu (its signature is checked first)
        return [Consumer(queues=[changes_queue(self.self_id)], on_message=self._collect,
                         prefetch_count=self.batch)]

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
    def _collect(self, message):
        self._pending.append(message)
        self._pending_bytes += _size(message)

    def _keep(self, messages: list) -> None:
        """Hold ``messages`` as the pending ones."""
        self._pending = messages
        self._pending_bytes = sum(_size(m) for m in messages)

    def _drain_ready(self, connection) -> None:
        """Take what is already waiting, up to a batch, without sleeping.
        What is not taken stays with the broker and the socket (the
        prefetch counts messages, not bytes): no more than about a batch's
        bytes is ever held here."""
        try:
            while len(self._pending) < self.batch and self._pending_bytes < self.batch_bytes:
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
                                                on_message=self._collect, prefetch_count=self.batch)
            consumer.consume()
            self._consumer = consumer
        try:
            self.connection.drain_events(timeout=timeout)
        except (socket.timeout, TimeoutError):
            return len(self._pending)
        self._drain_ready(self.connection)
        return len(self._pending)

    def _requeue_pending(self) -> None:
        pending = self._pending
        self._keep([])
        for message in pending:  # never applied: let the broker give them again
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
        take, size = 0, 0
        for message in self._pending[: self.batch]:
            if take and size + _size(message) > self.batch_bytes:
                break
            take, size = take + 1, size + _size(message)
        batch = self._pending[:take]
        self._keep(self._pending[take:])
        try:
            with self.engine.begin() as conn:
                # the keyring as it is now, read in the transaction that applies
                keyring = self.keys.keyring(conn)
                if keyring is None:
                    for message in batch:
                        message.requeue()
                    report.paused = "this node has no cluster secret yet to check the other node's changes with"
                    return report
                batch, messages, signed_with_current = self._open(batch, keyring, report)
                newer = next((m for m in messages if is_newer_revision(m.schema_revision)), None)
                if newer is not None:
                    for message in batch:
                        message.requeue()
                    report.paused = (f"the other node sends changes of schema revision {newer.schema_revision}, "
                                     "newer than this node's: upgrade this node (ezpyr-init CONFIG)")
                    return report
                result = apply_batch(conn, messages)
                if result.conflict:
                    conn.rollback()  # apply none of it: the admin resolves
        except SQLAlchemyError as error:
            self._keep(batch + self._pending)  # not applied: requeued when we stop
            raise DatabaseTrouble(error) from error
        if result.conflict:
            for message in batch:
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
        for message in batch:
            message.ack()
        if signed_with_current and keyring.previous:
            self.keys.retire_previous(keyring)  # the other node signs with the new secret now
        self.state = "connected: applying changes" if self._pending else "connected: waiting for changes"
        return report


    def _open(self, batch: list, keyring, report: BatchReport) -> tuple[list, list, bool]:
        """Check each broker message's signature and read its change
        messages. The refused ones are recorded (committed) and rejected
        without requeueing. Returns (the accepted broker messages, their
        change messages, whether one was signed with the current secret)."""
        accepted, messages, refused, current = [], [], [], False
        tables = {t.name for t in replicated_tables()}
        for message in batch:
            try:
                opened = open_bundle(message.body, message.headers, keyring,
                                     recipient=self.self_id, sender=self.peer_id)
                # a newer revision may name tables this one lacks: that pauses, below
                unknown = {c.table for m in opened.messages if not is_newer_revision(m.schema_revision)
                           for c in m.changes} - tables
                if unknown:
                    raise MessageRefused(Refusal.MALFORMED, f"unknown table {sorted(unknown)[0][:64]!r}")
            except MessageRefused as refusal:
                refused.append((message, refusal))
                continue
            accepted.append(message)
            messages.extend(opened.messages)
            current = current or opened.key == "current"
        if refused:
            try:
                with self.engine.begin() as conn:
                    for message, refusal in refused:
                        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
                        record_refusal(conn, refusal.reason, refusal.detail, body)
            except SQLAlchemyError as error:
                self._keep(batch + self._pending)  # nothing decided: requeued when we stop
                raise DatabaseTrouble(error) from error
            for message, refusal in refused:
                log.warning("applier: refused a change message from the broker (%s): %s",
                            refusal.reason.value, refusal)
                message.reject(requeue=False)
                report.refused.append((refusal.reason, refusal.detail))
        return accepted, messages, current


def _size(message) -> int:
    body = message.body
    return len(body) if isinstance(body, (bytes, str)) else 0


class DatabaseTrouble(Exception):
    """This node's database failed while applying: not a broker error, so
    kombu's reconnect loop lets it through to the worker, which retries."""

    def __init__(self, error: BaseException):
        super().__init__(f"this node's database: {type(getattr(error, 'orig', None) or error).__name__}")
        self.error = error


class _Stopped(Exception):
    """Raised inside kombu's reconnect loop when we are asked to stop."""
