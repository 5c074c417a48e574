"""Calling the peer's cluster API: signed JSON over HTTP or HTTPS, short
timeouts.

Over ``https://`` the other node's certificate is checked against the CA
file ``ezpyr.cluster.ca_file``, or, when ``ezpyr.cluster.peer_fingerprint``
is set, against that pinned SHA-256 fingerprint of its certificate (as
``openssl x509 -fingerprint -sha256`` prints it); with neither, against the
system's CAs. A certificate that does not match is never used.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ezpyr.cluster.signing import sign_headers


class PeerUnreachable(ConnectionError):
    pass


class PeerUntrusted(PeerUnreachable):
    """The other node answered with a certificate this node does not trust."""


class PeerRefused(RuntimeError):
    """The other node answered with an error: ``message`` for people,
    ``code`` (e.g. "bad-signature", "not-granted") for decisions."""

    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(f"the other node answered {status}: {message}")
        self.status = status
        self.message = message
        self.code = code


def _why(reason, timeout: float) -> str:
    """A network failure in words an admin understands."""
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({reason.verify_message})"
    if isinstance(reason, ssl.SSLError):
        return f"the TLS handshake failed ({reason.reason or reason})"
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


def certificate_fingerprint(der: bytes) -> str:
    """``AA:BB:…``, the SHA-256 of a DER certificate as openssl prints it."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normalise_fingerprint(text: str) -> str:
    """Accepts ``AA:BB:…`` (any case, with or without colons, an optional
    ``sha256`` prefix) or ``SHA256:<base64>``; returns ``AA:BB:…``."""
    text = (text or "").strip()
    if text.upper().startswith("SHA256:") and len(text) in (50, 51):  # SHA256:<43 base64 chars>
        raw = base64.b64decode(text[7:] + "=" * (-len(text[7:]) % 4))
        return ":".join(f"{b:02X}" for b in raw)
    hexdigits = text.split("=", 1)[-1].replace(":", "").upper()
    if len(hexdigits) != 64 or any(c not in "0123456789ABCDEF" for c in hexdigits):
        raise ValueError(f"{text!r} is not a SHA-256 certificate fingerprint")
    return ":".join(hexdigits[i:i + 2] for i in range(0, 64, 2))


@dataclass(frozen=True)
class PeerTls:
    """How this node checks the other node's certificate over https."""

    ca_file: str | None = None
    fingerprint: str | None = None  # normalised AA:BB:…

    @classmethod
    def from_settings(cls, settings) -> "PeerTls":
        pin = (settings.get("ezpyr.cluster.peer_fingerprint") or "").strip()
        return cls(ca_file=(settings.get("ezpyr.cluster.ca_file") or "").strip() or None,
                   fingerprint=normalise_fingerprint(pin) if pin else None)

    def context(self) -> ssl.SSLContext:
        if self.fingerprint:
            # the pin is the trust: the certificate must be exactly this one
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=self.ca_file)


def address_host(address: str) -> str:
    """The host of a node address (``host:port``, ``[v6]:port`` or
    ``http(s)://host:port``), without brackets."""
    rest = address.strip().rpartition("://")[2]
    host = rest.rpartition(":")[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    return host.strip("[]")


def is_plain_http_beyond_loopback(address: str) -> bool:
    """True for an address the cluster API would be called at over plain
    HTTP on a host other than this machine."""
    if not address or address.lower().startswith("https://"):
        return False
    host = urlsplit(address if "//" in address else f"http://{address}").hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class ClusterClient:
    def __init__(self, address: str, node_id: str, secret: str, timeout: float = 10.0,
                 tls: PeerTls | None = None):
        self.base = address if address.startswith(("http://", "https://")) else f"http://{address}"
        parts = urlsplit(self.base)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.node_id = node_id
        self.secret = secret
        self.timeout = timeout
        self.tls = tls or PeerTls()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if not self.https:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                                 context=self.tls.context())
        connection.connect()
        if self.tls.fingerprint:
            presented = certificate_fingerprint(connection.sock.getpeercert(binary_form=True))
            if presented != self.tls.fingerprint:
                connection.close()
                raise PeerUntrusted(
                    f"the other node at {self.base} presents a certificate with fingerprint "
                    f"{presented}, not the pinned {self.tls.fingerprint} "
                    "(ezpyr.cluster.peer_fingerprint): nothing was sent")
        return connection

    def call(self, method: str, path: str, payload: dict | None = None,
             timeout: float | None = None) -> dict:
        timeout = timeout or self.timeout
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = sign_headers(self.secret, self.node_id, method, path, body)
        headers["Content-Type"] = "application/json"
        try:
            connection = self._connection(timeout)
            try:
                connection.request(method, path, body=body if method != "GET" else None,
                                   headers=headers)
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
        except PeerUntrusted:
            raise
        except (OSError, http.client.HTTPException) as error:
            raise PeerUnreachable(f"the other node at {self.base} does not answer: "
                                  f"{_why(error, timeout)}") from None
        if response.status >= 400:
            try:
                answer = json.loads(data)
                message, code = str(answer.get("error", response.reason)), str(answer.get("code", ""))
            except (ValueError, AttributeError):
                message, code = response.reason, ""
            raise PeerRefused(response.status, message, code)
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise PeerUnreachable(f"the other node at {self.base} answered something that is not "
                                  "JSON (is that address its panel?)") from None

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
