"""Exchange and queue declarations, and broker connections. The panel and
the worker both import this module; nothing else declares queues.

Each node publishes its changes to its **own** broker: one durable direct
exchange, and one durable queue per peer, ``ezpyr.changes.<peer id>``, bound
with the peer's id as routing key. The peer's worker consumes that queue.
"""
from __future__ import annotations

import datetime as dt
import errno
import socket
import ssl
from urllib.parse import urlsplit

from kombu import Connection, Exchange, Queue

EXCHANGE = Exchange("ezpyr.changes", type="direct", durable=True, delivery_mode=2)

# AMQP heartbeats: a connection that stays silent for two of them is dead.
HEARTBEAT_SECONDS = 10.0
# How often a consumer of a server-less broker looks for new messages.
POLLING_INTERVAL = 0.25


def changes_queue(peer_id: str) -> Queue:
    """The queue this node's changes wait in for ``peer_id``."""
    return Queue(f"ezpyr.changes.{peer_id}", exchange=EXCHANGE, routing_key=peer_id,
                 durable=True, auto_delete=False)


def is_amqp(url: str) -> bool:
    return url.startswith(("amqp://", "pyamqp://", "amqps://"))


def tls_options(url: str, ca_file: str | None = None) -> dict | bool:
    """kombu's ``ssl`` argument: for ``amqps://`` the broker's certificate
    must chain to ``ca_file`` (``ezpyr.broker_ca_file``; else the system's
    CAs) and name the URL's host; other URLs use no TLS."""
    if not url.startswith("amqps://"):
        return False
    return {"cert_reqs": ssl.CERT_REQUIRED,
            "ca_certs": ca_file or ssl.get_default_verify_paths().cafile,
            "server_hostname": urlsplit(url).hostname}


def connect(url: str, *, heartbeat: float | None = None, timeout: float = 5.0,
            ca_file: str | None = None) -> Connection:
    """A broker connection. On AMQP, heartbeats are on (``heartbeat``
    seconds; the owner calls ``heartbeat_check`` at least twice in each)
    and publishes wait for the broker's confirmation (publisher confirms);
    the server-less SQLAlchemy transport stores a message before publish
    returns and is polled every POLLING_INTERVAL seconds."""
    options = {}
    if is_amqp(url):
        options["confirm_publish"] = True
        heartbeat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
        # No wait on the socket outlasts two heartbeats: a declare or a
        # publisher confirm on a link that went silent fails instead of
        # hanging for ever (a consumer's own waits are shorter still).
        options["read_timeout"] = options["write_timeout"] = 2 * (heartbeat or HEARTBEAT_SECONDS)
    else:
        heartbeat = 0
    connection = Connection(url, transport_options=options, connect_timeout=timeout,
                            heartbeat=heartbeat, ssl=tls_options(url, ca_file))
    return tune(connection)


def tune(connection: Connection) -> Connection:
    """Settings a transport takes only on the transport object (kept by
    clones too, so call it on each)."""
    if connection.transport.driver_type != "amqp":
        connection.transport.polling_interval = POLLING_INTERVAL
    return connection


def queue_depth(connection: Connection, peer_id: str) -> tuple[int, int]:
    """(messages waiting, consumers attached) of the queue for ``peer_id``;
    consumers is -1 where the transport cannot tell (server-less ones)."""
    channel = connection.default_channel
    queue = changes_queue(peer_id)(channel)
    queue.declare()
    ok = channel.queue_declare(queue=queue.name, passive=True)
    consumers = ok.consumer_count if connection.transport.driver_type == "amqp" else -1
    return ok.message_count, consumers


def drop_consumed(connection: Connection, older_than: float = 60.0) -> int:
    """The server-less SQLAlchemy transport marks a delivered message
    invisible and never deletes it; delete those older than ``older_than``
    seconds (an unacknowledged one is put back from the consumer's memory
    when it is rejected, so its row is not needed). Returns how many; 0 on
    other transports."""
    if connection.transport.driver_type != "sql":
        return 0
    channel = connection.default_channel
    message = channel.message_cls
    cutoff = dt.datetime.now() - dt.timedelta(seconds=older_than)
    session = channel.session
    try:
        count = (session.query(message)
                 .filter(message.visible.is_(False), message.sent_at < cutoff)
                 .delete(synchronize_session=False))
        session.commit()
    except Exception:
        session.rollback()
        raise
    return count


def describe(error: BaseException) -> str:
    """A broker error in words an admin understands (never a traceback or
    a driver's internals)."""
    cause = error.__cause__ or error.__context__
    if cause is not None and type(error).__name__ == "OperationalError" and type(error).__module__.startswith("kombu"):
        return describe(cause)  # kombu wraps the transport's own error
    text = str(error)
    if isinstance(error, ConnectionRefusedError) or "Connection refused" in text or getattr(error, "errno", None) == errno.ECONNREFUSED:
        return "the broker refused the connection (is it running?)"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "the broker did not answer in time"
    if "heartbeat" in text.lower() or "Too many heartbeats missed" in text:
        return "the connection went silent (heartbeats missed): the network or the broker stopped"
    if isinstance(error, ConnectionResetError) or "reset by peer" in text:
        return "the broker closed the connection"
    if "ACCESS_REFUSED" in text or "Login was refused" in text:
        return "the broker refused the login (check the user and password in the broker URL)"
    if isinstance(error, socket.gaierror):
        return "the broker's host name does not resolve"
    if "database is locked" in text:
        return "the broker's store is busy"
    if "unable to open database file" in text:
        return "the broker's store cannot be opened (check the path in the broker URL)"
    if isinstance(error, OSError) and error.strerror:
        return f"network error: {error.strerror.lower()}"
    name = type(error).__name__
    return f"broker error ({name})"
