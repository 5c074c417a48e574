"""Waking the relay when a change commits.

The worker's relay sleeps until something is to be sent: whoever commits
an outbox entry (the panel, a CLI, the cluster API) sends one empty
datagram to the relay of that node. The address is a Linux abstract Unix
socket named after the node id, so it needs no file, no setting and no
clean-up, and it exists only while that node's worker runs. A wake-up
carries nothing and is only a hint: a lost one delays a change by the
relay's safety interval, never loses it (the outbox is the record).
"""
from __future__ import annotations

import os
import select
import socket
import sys

_sender: socket.socket | None = None
_sender_pid = 0


def address(node_id: str, channel: str = "relay") -> str | None:
    """The wake-up address of ``channel`` (the relay, or the accounts
    runner) for ``node_id`` (None where abstract sockets do not exist: the
    loop then checks on its safety interval)."""
    if not sys.platform.startswith("linux") or not node_id:
        return None
    return f"\0ezpyr.{channel}.{node_id}"


def wake_relay(node_id: str, channel: str = "relay") -> None:
    """Tell the relay of ``node_id`` that the outbox has something new.
    Never blocks and never fails: no worker listening is normal."""
    global _sender, _sender_pid
    target = address(node_id, channel)
    if target is None:
        return
    try:
        if _sender is None or _sender_pid != os.getpid():  # one per process, new after fork
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
            _sender_pid = os.getpid()
        _sender.sendto(b"", target)
    except OSError:
        pass  # nobody listening, or its buffer is full (it is awake then anyway)


class WakeListener:
    """The relay's end: wait(timeout) returns True when woken."""

    def __init__(self, node_id: str, channel: str = "relay"):
        self.node_id = node_id
        self._socket: socket.socket | None = None
        target = address(node_id, channel)
        if target is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.bind(target)
            except OSError:  # another worker of this node holds it: it gets the wake-ups
                sock.close()
            else:
                sock.setblocking(False)
                self._socket = sock

    @property
    def listening(self) -> bool:
        return self._socket is not None

    def ready(self) -> bool:
        """Whether a wake-up is waiting (it stays waiting for ``wait``)."""
        if self._socket is None:
            return False
        return bool(select.select([self._socket], [], [], 0)[0])

    def wait(self, timeout: float) -> bool:
        """Sleep until a wake-up or ``timeout`` seconds; drains every
        wake-up waiting, so a burst of commits wakes the relay once."""
        if self._socket is None:
            select.select([], [], [], max(0.0, timeout))
            return False
        ready, _, _ = select.select([self._socket], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            while True:
                self._socket.recv(16)
        except (BlockingIOError, InterruptedError):
            pass
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
