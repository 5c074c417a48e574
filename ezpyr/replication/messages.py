"""Change messages as they travel between the nodes, and their signature.

A **change message** is one committed transaction of its origin: its stream
(origin, epoch), its seq, the ordered row changes, who made it, when, at
which schema revision, and the origin's version vector at the time (the
``context``: a node that holds something the origin did not know has a
conflict). :class:`ChangeMessage` is its schema; nothing else parses one.

The relay sends consecutive messages together as one **bundle** per broker
message. The broker message's body is the JSON text

    {"v": 1, "from": <sender node id>, "to": <recipient node id>,
     "bundle": [<change message>, ...]}

and its ``x-ezpyr-signature`` header is HMAC-SHA256 over exactly those
bytes, with a key derived from the cluster secret (HKDF, so the key that
signs messages is not the one that signs cluster API requests). Origin,
epoch and seq are inside the signed bytes, and so are the sender and the
recipient: a message cannot be altered, re-labelled or reflected back to
its sender without the signature failing. The applier checks the signature
before it parses anything (:func:`open_bundle`).

While the cluster secret is being rotated a node accepts up to three
secrets (:class:`Keyring`): the one it signs with, the next one (received,
not yet signed with) and the previous one (still accepted until the other
node's first message signed with the current one arrives).
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from ezpyr.replication.vector import VersionVector

VERSION = 1
SIGNATURE_HEADER = "x-ezpyr-signature"
KEY_PURPOSE = b"ezpyr change messages v1"


# -- the schema -------------------------------------------------------------------

# Fields a newer version may add are ignored here (not refused): a message
# of a newer schema revision must reach the check that pauses the applier.

class RowChange(BaseModel):
    """One row written or deleted: its table, key, and full image after the change."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    table: StrictStr = Field(min_length=1, max_length=64)
    op: Literal["upsert", "delete"]
    pk: StrictStr = Field(min_length=1, max_length=64)
    row: dict[str, Any] | None = None


class ChangeMessage(BaseModel):
    """One committed transaction of the origin."""

    model_config = ConfigDict(extra="ignore")

    origin: StrictStr = Field(min_length=1, max_length=36)
    epoch: StrictInt = Field(ge=0)
    seq: StrictInt = Field(ge=1)
    changes: list[RowChange]
    actor: StrictStr = ""
    schema_revision: StrictStr = ""
    created_at: StrictStr = ""
    context: dict[str, StrictInt] = Field(default_factory=dict)  # the origin's vector then

    @property
    def stream(self) -> tuple[str, int]:
        return (self.origin, self.epoch)

    @property
    def known(self) -> VersionVector:
        """What the origin held when it made this change."""
        return VersionVector.from_json(self.context)

    @classmethod
    def from_outbox(cls, entry) -> "ChangeMessage":
        return cls.model_validate_json(outbox_message_json(entry))

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> "ChangeMessage":
        return cls.model_validate_json(text)


class Bundle(BaseModel):
    """The signed body of one broker message."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    v: Literal[1]
    sender: StrictStr = Field(alias="from", max_length=36)
    recipient: StrictStr = Field(alias="to", max_length=36)
    bundle: list[ChangeMessage]


def outbox_message_json(entry) -> str:
    """An outbox row as a change message's JSON text. The row's changes and
    context are JSON already and go in as they are stored (not parsed and
    written again)."""
    return "".join((
        '{"origin":', json.dumps(entry.origin), ',"epoch":', str(int(entry.epoch)),
        ',"seq":', str(int(entry.seq)), ',"changes":', entry.changes,
        ',"actor":', json.dumps(entry.actor or ""),
        ',"schema_revision":', json.dumps(entry.schema_revision or ""),
        ',"created_at":', json.dumps(entry.created_at.isoformat() if entry.created_at else ""),
        ',"context":', entry.context or "{}", "}",
    ))


# -- keys ------------------------------------------------------------------------------

def message_key(secret: str) -> bytes:
    """The key that signs change messages, derived from the cluster secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PURPOSE).derive(secret.encode())


@dataclass(frozen=True)
class Keyring:
    """The cluster secrets this node signs with and accepts."""

    current: str
    next: str | None = None  # received during a rotation, not signed with yet
    previous: str | None = None  # accepted until the other node signs with ``current``

    def __post_init__(self):
        if not self.current:
            raise ValueError("a keyring needs the cluster secret")

    def signing_key(self) -> bytes:
        return _key(self.current)

    def key_id(self) -> str:
        """Names the secret signed with, without revealing it (the other
        node compares it with its own)."""
        return secret_id(self.current)

    def accepted(self) -> list[tuple[str, bytes]]:
        """(which, key) in the order they are tried."""
        return [(which, _key(secret)) for which, secret in
                (("current", self.current), ("next", self.next), ("previous", self.previous)) if secret]


_keys: dict[str, bytes] = {}


def secret_id(secret: str) -> str:
    return hmac.new(_key(secret), b"key id", hashlib.sha256).hexdigest()[:16]


def _key(secret: str) -> bytes:
    key = _keys.get(secret)
    if key is None:
        if len(_keys) > 16:
            _keys.clear()
        key = _keys[secret] = message_key(secret)
    return key


class KeySource(Protocol):
    """Where the relay and the applier find the keyring (read again often:
    a rotation changes it while they run)."""

    def keyring(self, connection=None) -> Keyring | None:
        """``connection``: read it there (in the caller's transaction) rather
        than on a connection of its own."""

    def retire_previous(self, keyring: Keyring) -> None: ...


class FixedKeys:
    """One keyring that never changes (tests, tools)."""

    def __init__(self, current: str, next: str | None = None, previous: str | None = None):
        self._keyring = Keyring(current, next, previous)

    def keyring(self, connection=None) -> Keyring:
        return self._keyring

    def retire_previous(self, keyring: Keyring) -> None:
        pass


# -- signing and checking ------------------------------------------------------------------

def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def seal(messages_json: list[str], sender: str, recipient: str, keyring: Keyring) -> tuple[bytes, dict]:
    """The body and headers of one broker message carrying these change
    messages (each a JSON text, as :func:`outbox_message_json` makes it)."""
    body = "".join((
        '{"v":', str(VERSION), ',"from":', json.dumps(sender), ',"to":', json.dumps(recipient),
        ',"bundle":[', ",".join(messages_json), "]}",
    )).encode()
    return body, {SIGNATURE_HEADER: _mac(keyring.signing_key(), body)}


class Refusal(enum.Enum):
    """Why a broker message was refused (kept out of the database)."""

    NO_KEY = "no-key"  # this node has no cluster secret: it cannot check anything
    UNSIGNED = "unsigned"
    FORGED = "bad-signature"  # signed, but not with a key this node accepts
    MALFORMED = "malformed"  # signed, but not a bundle of change messages
    MISADDRESSED = "misaddressed"  # signed for another node (reflected back)
    WRONG_ORIGIN = "wrong-origin"  # carries changes of a stream that is not its sender's

    @property
    def words(self) -> str:
        return REFUSAL_WORDS[self]


REFUSAL_WORDS = {
    Refusal.NO_KEY: "this node has no cluster secret to check it with",
    Refusal.UNSIGNED: "it carries no signature",
    Refusal.FORGED: "its signature does not match (not made with the cluster secret)",
    Refusal.MALFORMED: "it is signed but is not a bundle of change messages",
    Refusal.MISADDRESSED: "it is signed for another node",
    Refusal.WRONG_ORIGIN: "it carries changes of a node other than its sender",
}


class MessageRefused(Exception):
    def __init__(self, reason: Refusal, detail: str = ""):
        super().__init__(f"{reason.words}{': ' + detail if detail else ''}")
        self.reason = reason
        self.detail = detail


@dataclass
class OpenedBundle:
    messages: list[ChangeMessage]
    key: str  # which key of the keyring verified it: "current", "next" or "previous"


def open_bundle(body: bytes | str, headers: dict | None, keyring: Keyring | None, *,
                recipient: str, sender: str | None) -> OpenedBundle:
    """The change messages of a broker message, once its signature is
    checked against every key of ``keyring``. Raises MessageRefused."""
    if isinstance(body, str):
        body = body.encode()
    given = (headers or {}).get(SIGNATURE_HEADER)
    if keyring is None:
        raise MessageRefused(Refusal.NO_KEY)
    if not given or not isinstance(given, (str, bytes)):
        raise MessageRefused(Refusal.UNSIGNED)
    if isinstance(given, bytes):
        given = given.decode("ascii", "replace")
    which = next((name for name, key in keyring.accepted()
                  if hmac.compare_digest(_mac(key, body), given)), None)
    if which is None:
        raise MessageRefused(Refusal.FORGED)
    try:
        bundle = Bundle.model_validate_json(body)
    except ValidationError as error:
        raise MessageRefused(Refusal.MALFORMED, f"{error.error_count()} error(s)") from None
    if bundle.recipient != recipient:
        raise MessageRefused(Refusal.MISADDRESSED, f"to {bundle.recipient[:8]}")
    strangers = {m.origin for m in bundle.bundle if m.origin != bundle.sender}
    if (sender is not None and bundle.sender != sender) or strangers:
        raise MessageRefused(Refusal.WRONG_ORIGIN, f"from {bundle.sender[:8]}")
    return OpenedBundle(bundle.bundle, which)
