"""Exchange and queue declarations, and broker connections. The panel and
the worker both import this module; nothing else declares queues.

Each node publishes its changes to its **own** broker: one durable direct
exchange, and one durable queue per peer, ``ezpyr.changes.<peer id>``, bound
with the peer's id as routing key. The peer's worker consumes that queue.
"""
from __future__ import annotations

from kombu import Connection, Exchange, Queue

EXCHANGE = Exchange("ezpyr.changes", type="direct", durable=True, delivery_mode=2)


def changes_queue(peer_id: str) -> Queue:
    """The queue this node's changes wait in for ``peer_id``."""
    return Queue(f"ezpyr.changes.{peer_id}", exchange=EXCHANGE, routing_key=peer_id,
                 durable=True, auto_delete=False)


def is_amqp(url: str) -> bool:
    return url.startswith(("amqp://", "pyamqp://", "amqps://"))


def connect(url: str, *, heartbeat: float = 0, timeout: float = 5.0) -> Connection:
    """A broker connection. On AMQP, publishes wait for the broker's
    confirmation (publisher confirms); the server-less SQLAlchemy transport
    stores a message before publish returns."""
    options = {}
    if is_amqp(url):
        options["confirm_publish"] = True
    return Connection(url, transport_options=options, connect_timeout=timeout,
                      heartbeat=heartbeat)


def queue_depth(connection: Connection, peer_id: str) -> tuple[int, int]:
    """(messages waiting, consumers attached) of the queue for ``peer_id``;
    consumers is -1 where the transport cannot tell (server-less ones)."""
    channel = connection.default_channel
    queue = changes_queue(peer_id)(channel)
    queue.declare()
    ok = channel.queue_declare(queue=queue.name, passive=True)
    consumers = ok.consumer_count if connection.transport.driver_type == "amqp" else -1
    return ok.message_count, consumers
