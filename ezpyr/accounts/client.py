"""Talking to a node's account agent over SSH with paramiko, as the
provisioning account, after checking the node's host key against its pin."""
from __future__ import annotations

import base64
import hashlib
import json
import socket

import paramiko

NAMES = {"this": "this node", "other": "the other node"}
BATCH = 500  # requests sent as one batch request (one exchange with the agent)
BATCH_BYTES = 512 * 1024  # and at most this much JSON in one (the agent reads lines of up to 1 MiB)


class NodeUnreachable(Exception):
    """The node cannot be reached now: its tasks wait."""


class FingerprintChanged(NodeUnreachable):
    def __init__(self, target: str, address: str, pinned: str, presented: str):
        self.target = target
        self.address = address
        self.pinned = pinned
        self.presented = presented
        super().__init__(
            f"{NAMES[target]} ({address}) presents SSH host key {presented}, but {pinned} is pinned: "
            f"refused. If its host key was changed on purpose (a reinstall), click Reset fingerprint "
            f"on {NAMES[target]} (ezpyr-accounts CONFIG reset-fingerprint {target})")


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host:
        return address, 22
    return host.strip("[]"), int(port)


def presented_fingerprint(address: str, timeout: float = 15) -> str:
    """The fingerprint the node at ``address`` presents now (key exchange
    only: nothing is sent after it)."""
    transport = _transport(address, timeout)
    try:
        return fingerprint(transport.get_remote_server_key())
    finally:
        transport.close()


def _transport(address: str, timeout: float) -> paramiko.Transport:
    host, port = split_address(address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise NodeUnreachable(f"cannot connect to {address}: {error.strerror or error}") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as error:
        transport.close()
        raise NodeUnreachable(f"no SSH session with {address}: {error}") from None
    return transport


class AgentLink:
    """One SSH session to one node's account agent; many requests go
    through it, one JSON line each."""

    def __init__(self, target: str, address: str, user: str, key_file: str, pinned: str | None,
                 timeout: float = 15):
        self.target = target
        self.address = address
        self.transport = _transport(address, timeout)
        self.presented = fingerprint(self.transport.get_remote_server_key())
        if pinned and self.presented != pinned:
            self.transport.close()
            raise FingerprintChanged(target, address, pinned, self.presented)
        try:
            key = paramiko.Ed25519Key.from_private_key_file(key_file)
        except (OSError, paramiko.SSHException) as error:
            self.transport.close()
            raise NodeUnreachable(f"cannot read the provisioning key {key_file}: {error}") from None
        try:
            self.transport.auth_publickey(user, key)
            self.channel = self.transport.open_session(timeout=timeout)
            self.channel.settimeout(max(timeout, 60))
            self.channel.exec_command("ezpyr-account-agent")
        except (paramiko.SSHException, OSError, EOFError) as error:
            self.transport.close()
            raise NodeUnreachable(f"{NAMES[target]} ({address}) refused the provisioning account "
                                  f"{user}: {error}") from None
        self.reader = self.channel.makefile("rb")

    def _read(self) -> dict:
        try:
            line = self.reader.readline()
        except (OSError, socket.timeout, paramiko.SSHException) as error:
            raise NodeUnreachable(f"the account agent on {self.address} stopped answering: {error}") from None
        if not line:
            stderr = self.channel.recv_stderr(4096).decode(errors="replace").strip() if \
                self.channel.recv_stderr_ready() else ""
            raise NodeUnreachable(f"the account agent on {self.address} ended the session"
                                  f"{': ' + stderr if stderr else ''}")
        return json.loads(line)

    def _send(self, lines: list[bytes]) -> None:
        try:
            self.channel.sendall(b"".join(lines))
        except (OSError, paramiko.SSHException) as error:
            raise NodeUnreachable(f"lost the session with {self.address}: {error}") from None

    def requests(self, requests: list[dict]):
        """Yields (request, answer) in order."""
        for chunk in self.batches(requests):
            yield from chunk

    def batches(self, requests: list[dict]):
        """Yields, for each exchange with the agent, its [(request, answer)]
        in order: up to BATCH requests go as one batch request, which the
        agent applies in one go (a request on its own goes alone)."""
        lines = [json.dumps(r).encode() + b"\n" for r in requests]
        start = 0
        while start < len(requests):
            end, size = start, 0
            while end < len(requests) and end - start < BATCH and (
                    end == start or size + len(lines[end]) <= BATCH_BYTES):
                size += len(lines[end])
                end += 1
            chunk = requests[start:end]
            if len(chunk) == 1:
                self._send(lines[start:end])
                yield [(chunk[0], self._read())]
            else:
                self._send([json.dumps({"op": "batch", "requests": chunk}).encode() + b"\n"])
                answer = self._read()
                answers = answer.get("answers") if answer.get("ok") else None
                if not isinstance(answers, list) or len(answers) != len(chunk):
                    raise NodeUnreachable(f"the account agent on {self.address} did not answer the batch: "
                                          f"{answer.get('error') or 'answers missing'}")
                yield list(zip(chunk, answers))
            start = end

    def call(self, request: dict) -> dict:
        return next(iter(self.requests([request])))[1]

    def close(self) -> None:
        try:
            self.channel.shutdown_write()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.transport.close()
