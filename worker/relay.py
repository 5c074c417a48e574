"""The relay: publishes this node's outbox, in order, to its own broker.

It keeps one connection to that broker for as long as it runs, and sleeps
until a commit wakes it (see ``ezpyr.replication.wake``), checking the
outbox anyway every ``safety_interval`` seconds. Consecutive entries travel
together, up to ``bundle`` of them in one broker message, so one
confirmation covers many; each broker message is signed with the cluster
secret as it is now (``ezpyr.replication.messages``). An entry is marked sent only after the broker
confirmed it (AMQP publisher confirms; the SQLAlchemy transport has stored
it when publish returns). A crash between publish and mark sends it again,
which the other node ignores.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

from kombu import Producer
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.engine import Engine

from ezpyr.replication.messages import KeySource, outbox_message_json, seal
from ezpyr.replication.broker import (
    EXCHANGE, changes_queue, connect, describe, drop_consumed, is_amqp, queue_depth,
)
from ezpyr.replication.capture import read_committed, sequence_committed as sequence, sequence_pending
from ezpyr.replication.outbox import mark_sent, unsent
from ezpyr.replication.wake import WakeListener, wake_relay

log = logging.getLogger(__name__)
BUNDLE_BYTES = 4 * 1024 * 1024


class Unroutable(RuntimeError):
    pass


class NoClusterSecret(RuntimeError):
    """Nothing can be signed: this node has no cluster secret (yet)."""


class Relay:
    """Publishing, one step at a time (``run_once``); ``RelayLoop`` runs it."""

    def __init__(self, engine: Engine, broker_url: str, sender: str, peer_id: str, keys: KeySource,
                 batch: int = 1000, bundle: int = 200, heartbeat: float | None = None,
                 ca_file: str | None = None):
        self.engine = engine
        self.broker_url = broker_url
        self.sender = sender
        self.peer_id = peer_id
        self.keys = keys
        self.batch = batch
        self.bundle = bundle  # outbox entries per broker message (one confirm each)
        self.connection = connect(broker_url, heartbeat=heartbeat, ca_file=ca_file)
        self._producer = None
        self._returned = []
        self._confirmed: list[int] = []  # confirmed by the broker, not marked sent yet

    def _ensure(self) -> Producer:
        if self._producer is None:
            self.connection.ensure_connection(max_retries=1)
            channel = self.connection.default_channel
            on_return = self._on_return if is_amqp(self.broker_url) else None
            self._producer = Producer(channel, exchange=EXCHANGE, on_return=on_return)
            changes_queue(self.peer_id)(channel).declare()
        return self._producer

    def _on_return(self, exception, exchange, routing_key, message):
        self._returned.append(routing_key)

    def reset(self) -> None:
        """Forget the channel after a broker error; the next step reconnects."""
        self._producer = None
        self._returned = []
        try:
            self.connection.collect()  # drop the dead socket without talking to it
        except Exception:  # noqa: BLE001 - nothing more to release
            pass

    def close(self) -> None:
        try:
            self.mark_confirmed()
        except Exception:  # noqa: BLE001 - this node's database is down: they are sent again
            pass
        self._producer = None
        self.connection.release()

    def _bundles(self, rows):
        """Consecutive entries, at most ``bundle`` of them and about
        BUNDLE_BYTES of changes per broker message (one big entry alone)."""
        part, size = [], 0
        for row in rows:
            if part and (len(part) >= self.bundle or size + len(row.changes) > BUNDLE_BYTES):
                yield part
                part, size = [], 0
            part.append(row)
            size += len(row.changes)
        if part:
            yield part

    def run_once(self, mark_later: bool = False) -> int:
        """Number what was committed, then publish up to one batch of
        unsent entries; returns how many were published.

        One transaction marks what the broker confirmed last time (when
        ``mark_later`` left it for this round), numbers, and reads what is
        unsent; ``mark_later`` leaves this round's marks to the next round
        (or ``mark_confirmed``), saving a commit per round: an entry the
        broker confirmed but not yet marked is sent again after a crash,
        which the other node ignores."""
        with self.engine.begin() as conn:
            read_committed(conn)
            if self._confirmed:
                mark_sent(conn, self._confirmed)
            sequence_pending(conn, every_epoch=False)
            rows = unsent(conn, self.batch)
            keyring = self.keys.keyring(conn) if rows else None
        self._confirmed = []
        if not rows:
            return 0
        if keyring is None:
            raise NoClusterSecret("this node has no cluster secret to sign its changes with")
        producer = self._ensure()
        # kombu's retry: a connection lost mid-publish is revived and the
        # publish repeated (a duplicate is a no-op on the other node); past
        # two tries the error reaches the loop, which says so and backs off.
        publish = self.connection.ensure(producer, producer.publish, max_retries=2,
                                         interval_start=0.2, interval_step=0.3, interval_max=0.5)
        sent = []
        try:
            for part in self._bundles(rows):
                body, headers = seal([outbox_message_json(row) for row in part], self.sender,
                                     self.peer_id, keyring)
                # the signed bytes travel as they are ("binary": no transport re-encodes them)
                publish(
                    body, content_type="application/json", content_encoding="binary", headers=headers,
                    routing_key=self.peer_id, delivery_mode=2, mandatory=True, retry=False,
                )
                if self._returned:
                    raise Unroutable(f"the broker had no queue for {self.peer_id}")
                sent.extend(row.id for row in part)
        finally:
            # what the broker confirmed is sent, even if a later part failed
            self._confirmed = sent
            if not mark_later or len(sent) < len(rows):
                self.mark_confirmed()
        return len(sent)

    def mark_confirmed(self) -> None:
        """Mark sent, in a transaction of its own, what the broker confirmed
        and is not marked yet."""
        if self._confirmed:
            with self.engine.begin() as conn:
                mark_sent(conn, self._confirmed)
            self._confirmed = []

    def queue_depth(self) -> tuple[int, int]:
        self._ensure()
        return queue_depth(self.connection, self.peer_id)

    def drop_consumed(self) -> int:
        self._ensure()
        return drop_consumed(self.connection)


def _broker_errors(connection) -> tuple:
    return (connection.recoverable_connection_errors + connection.connection_errors
            + connection.channel_errors + (KombuOperationalError, Unroutable, OSError))


class RelayLoop:
    """The relay's thread: sleeps until woken, publishes everything unsent,
    keeps its broker connection alive (heartbeats), measures the queue for
    the status page, and says what it is doing in ``state``.

    ``peer`` is a callable returning (peer id or None, shipping paused?),
    read on every wake-up: Disconnect holds changes back here.
    """

    def __init__(self, engine: Engine, broker_url: str, node_id: str, peer, keys: KeySource, *,
                 safety_interval: float = 5.0, heartbeat: float | None = None,
                 depth_interval: float = 2.0, ca_file: str | None = None):
        self.engine = engine
        self.broker_url = broker_url
        self.node_id = node_id
        self.peer = peer
        self.keys = keys
        self.safety_interval = safety_interval
        self.heartbeat = heartbeat
        self.depth_interval = depth_interval
        self.ca_file = ca_file
        self.stop_event = threading.Event()
        self.wake = WakeListener(node_id)
        self.state = "starting"
        self.queue_consumers: int | None = None  # last measured; None = unknown
        self.published = 0

    def stop(self) -> None:
        self.stop_event.set()
        wake_relay(self.node_id)

    def run(self) -> None:
        relay, failures = None, 0
        next_depth = next_cleanup = 0.0
        try:
            while not self.stop_event.is_set():
                try:
                    peer_id, paused = self.peer()
                except Exception as error:  # noqa: BLE001 - this node's database is down
                    self.state = f"waiting: cannot read this node's database ({type(error).__name__})"
                    self.stop_event.wait(min(5.0, 0.5 * 2 ** failures))
                    failures += 1
                    continue
                if peer_id is None:
                    sequence(self.engine)  # numbered now, sent once another node is added
                    self.state = "idle: no other node yet (changes are kept in the outbox)"
                    self._sleep(relay)
                    continue
                if relay is None or relay.peer_id != peer_id:
                    if relay is not None:
                        relay.close()
                    relay = Relay(self.engine, self.broker_url, self.node_id, peer_id, self.keys,
                                  heartbeat=self.heartbeat, ca_file=self.ca_file)
                try:
                    now = time.monotonic()
                    if now >= next_depth:
                        _, self.queue_consumers = relay.queue_depth()
                        next_depth = now + self.depth_interval
                    if now >= next_cleanup:
                        relay.drop_consumed()
                        next_cleanup = now + 60.0
                    if paused:
                        sequence(self.engine)
                        self.state = "paused: disconnected by an admin (changes are kept here until Connect)"
                        self._sleep(relay)
                        continue
                    while not self.stop_event.is_set():
                        count = relay.run_once(mark_later=True)
                        self.published += count
                        # less than a batch: all that was numbered is sent; a
                        # commit since then has woken us again (no second
                        # round of queries only to find nothing)
                        if count < relay.batch:
                            break
                        self.state = "publishing"
                    failures = 0
                    self.state = "connected to this node's broker"
                    self._sleep(relay)
                except _broker_errors(relay.connection) as error:
                    self._failed(relay, error, failures)
                    failures += 1
                except NoClusterSecret as error:
                    self.state = f"waiting: {error}"
                    self.stop_event.wait(min(5.0, 0.5 * 2 ** failures))
                    failures += 1
                except Exception as error:  # noqa: BLE001 - this node's database, most likely
                    self.state = f"retrying: {type(error).__name__} while reading the outbox"
                    log.warning("relay: %s", error)
                    self.stop_event.wait(min(5.0, 0.5 * 2 ** failures))
                    failures += 1
        finally:
            if relay is not None:
                relay.close()
            self.wake.close()

    def _failed(self, relay: Relay, error: BaseException, failures: int) -> None:
        delay = min(10.0, 0.5 * 2 ** failures)
        self.state = f"reconnecting to this node's broker: {describe(error)} (next try in {delay:g} s)"
        self.queue_consumers = None
        log.warning("relay: %s (%s); next try in %.1f s", describe(error), type(error).__name__, delay)
        relay.reset()
        self.stop_event.wait(delay)

    def _sleep(self, relay: Relay | None) -> None:
        """Until a commit wakes us, the safety interval passes, or the
        connection's heartbeat is due (checked twice per heartbeat)."""
        timeout = self.safety_interval
        beat = relay.connection.get_heartbeat_interval() if relay and relay._producer else 0
        if beat:
            timeout = min(timeout, beat / 2)
            try:  # read what the broker sent (its heartbeats, confirms) without waiting
                relay.connection.drain_events(timeout=0)
            except socket.timeout:
                pass
            # a connection silent for two heartbeats raises here (the loop reconnects)
            relay.connection.heartbeat_check()
        if relay is not None and relay._confirmed and not self.wake.ready():
            relay.mark_confirmed()  # nothing new came: no next round to mark them in
        if timeout > 0 and not self.stop_event.is_set():
            self.wake.wait(timeout)
