"""Calling the peer's cluster API: signed JSON over HTTP, short timeouts."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from ezpyr.cluster.signing import sign_headers


class PeerUnreachable(ConnectionError):
    pass


class PeerRefused(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"the other node answered {status}: {message}")
        self.status = status
        self.message = message


def _why(reason, timeout: float) -> str:
    """A network failure in words an admin understands."""
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is its panel running?)"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(reason, ConnectionResetError):
        return "the connection was reset"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


class ClusterClient:
    def __init__(self, address: str, node_id: str, secret: str, timeout: float = 10.0):
        self.base = address if address.startswith("http") else f"http://{address}"
        self.node_id = node_id
        self.secret = secret
        self.timeout = timeout

    def call(self, method: str, path: str, payload: dict | None = None,
             timeout: float | None = None) -> dict:
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = sign_headers(self.secret, self.node_id, method, path, body)
        headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=body if method != "GET" else None,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", error.reason)
            except ValueError:
                message = str(error.reason)
            raise PeerRefused(error.code, message) from None
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise PeerUnreachable(f"the other node at {self.base} does not answer: "
                                  f"{_why(reason, timeout or self.timeout)}") from None

    def hello(self) -> dict:
        return self.call("GET", "/cluster/api/hello")

    def status(self) -> dict:
        return self.call("GET", "/cluster/api/status")

    def resend(self, origin: str, epoch: int, seq: int) -> dict:
        return self.call("POST", "/cluster/api/resend", {"origin": origin, "epoch": epoch, "seq": seq})


class RemotePeer:
    """The other node as verify sees it (ezpyr.replication.verify.Peer):
    each call asks for a bounded page of work, with its own timeout."""

    def __init__(self, client: ClusterClient, timeout: float | None = None):
        self.client = client
        self.timeout = timeout

    def _call(self, path: str, payload: dict) -> dict:
        return self.client.call("POST", path, payload, timeout=self.timeout)

    def checksum(self, table, after, upto, limit, splits=None):
        page = {"table": table, "after": after, "upto": upto, "limit": limit}
        if splits is not None:
            page["splits"] = splits
        return self._call("/cluster/api/checksums", page)

    def row_hashes(self, table, after, upto, limit):
        return self._call("/cluster/api/row-hashes",
                          {"table": table, "after": after, "upto": upto, "limit": limit})

    def provenance(self, table, ids):
        out = {}
        for start in range(0, len(ids), 1000):
            out.update(self._call("/cluster/api/provenance",
                                  {"table": table, "ids": ids[start:start + 1000]}))
        return out

    def rows(self, table, ids):
        out = {}
        for start in range(0, len(ids), 1000):
            out.update(self._call("/cluster/api/rows", {"table": table, "ids": ids[start:start + 1000]}))
        return out
