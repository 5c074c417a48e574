"""The relay: publishes this node's outbox, in order, to its own broker.

Consecutive entries travel together, up to ``bundle`` of them in one broker
message, so one confirmation covers many. An entry is marked sent only
after the broker confirmed it (AMQP publisher
confirms; the SQLAlchemy transport has stored it when publish returns). A
crash between publish and mark sends it again, which the peer ignores.
"""
from __future__ import annotations

import logging

from kombu import Producer
from sqlalchemy.engine import Engine

from ezpyr.replication.apply import ChangeMessage
from ezpyr.replication.broker import EXCHANGE, changes_queue, connect, is_amqp
from ezpyr.replication.outbox import mark_sent, unsent

log = logging.getLogger(__name__)
BUNDLE_BYTES = 4 * 1024 * 1024


class Unroutable(RuntimeError):
    pass


class Relay:
    def __init__(self, engine: Engine, broker_url: str, peer_id: str, batch: int = 1000,
                 bundle: int = 200):
        self.engine = engine
        self.broker_url = broker_url
        self.peer_id = peer_id
        self.batch = batch
        self.bundle = bundle  # outbox entries per broker message (one confirm each)
        self._connection = None
        self._producer = None
        self._returned = []

    def _ensure(self):
        if self._producer is None:
            self._connection = connect(self.broker_url)
            self._connection.ensure_connection(max_retries=1)
            channel = self._connection.channel()
            on_return = self._on_return if is_amqp(self.broker_url) else None
            self._producer = Producer(channel, exchange=EXCHANGE, on_return=on_return)
            changes_queue(self.peer_id)(channel).declare()
        return self._producer

    def _on_return(self, exception, exchange, routing_key, message):
        self._returned.append(routing_key)

    def close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            finally:
                self._connection = None
                self._producer = None

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

    def run_once(self) -> int:
        """Publish up to one batch of unsent entries; returns how many."""
        with self.engine.connect() as conn:
            rows = unsent(conn, self.batch)
        if not rows:
            return 0
        try:
            producer = self._ensure()
            sent = []
            for part in self._bundles(rows):
                producer.publish(
                    {"bundle": [ChangeMessage.from_outbox(row).__dict__ for row in part]},
                    routing_key=self.peer_id,
                    serializer="json",
                    delivery_mode=2,
                    mandatory=True,
                    retry=False,
                )
                if self._returned:
                    raise Unroutable(f"the broker had no queue for {self.peer_id}")
                sent.extend(row.id for row in part)
        except Exception:
            self.close()
            raise
        with self.engine.begin() as conn:
            mark_sent(conn, sent)
        return len(sent)
