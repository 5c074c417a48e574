"""The version vector as a value: for every stream (origin node id, epoch),
the highest seq a database contains.

It travels as JSON ``{"<origin>:<epoch>": seq}`` (the cluster API, the
outbox's context, the peer row's last report); :meth:`VersionVector.from_json`
and :meth:`VersionVector.to_json` are the one place that format is read and
written. A vector is read-only and compares as a mapping, so code can use it
as the dict it replaced.
"""
from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

Stream = tuple[str, int]


class Ordering(enum.Enum):
    """How one vector stands to another."""

    EQUAL = "equal"
    BEHIND = "behind"  # the other holds changes this one lacks, and not the other way
    AHEAD = "ahead"  # this one holds changes the other lacks, and not the other way
    CONCURRENT = "concurrent"  # each holds changes the other lacks: a split-brain


class VersionVector(Mapping):
    """stream → highest seq held. A stream missing counts as seq 0."""

    __slots__ = ("_seqs",)

    def __init__(self, seqs: Mapping[Stream, int] | None = None):
        self._seqs = {(str(origin), int(epoch)): int(seq)
                      for (origin, epoch), seq in (seqs or {}).items()}

    # -- the mapping ---------------------------------------------------------
    def __getitem__(self, stream: Stream) -> int:
        return self._seqs[stream]

    def __iter__(self) -> Iterator[Stream]:
        return iter(self._seqs)

    def __len__(self) -> int:
        return len(self._seqs)

    def __hash__(self) -> int:
        return hash(frozenset(self._seqs.items()))

    def __repr__(self) -> str:
        return f"VersionVector({self._seqs!r})"

    def seq(self, stream: Stream) -> int:
        """The highest seq held of ``stream`` (0: none)."""
        return self._seqs.get(stream, 0)

    # -- JSON ---------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Mapping[str, int] | str | None) -> "VersionVector":
        """From ``{"origin:epoch": seq}`` (or its text). Raises ValueError
        on anything else."""
        if isinstance(data, (str, bytes)):
            data = json.loads(data or "{}")
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("a version vector is a JSON object")
        seqs = {}
        for key, seq in data.items():
            origin, colon, epoch = str(key).rpartition(":")
            if not colon or not origin or isinstance(seq, bool) or not isinstance(seq, int):
                raise ValueError(f"{key!r}: {seq!r} is not a stream and its seq")
            seqs[(origin, int(epoch))] = seq
        return cls(seqs)

    def to_json(self) -> dict[str, int]:
        return {f"{origin}:{epoch}": seq for (origin, epoch), seq in self._seqs.items()}

    def dumps(self) -> str:
        """The JSON text stored in a column."""
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    # -- comparing ------------------------------------------------------------
    def lacks(self, other: Mapping[Stream, int]) -> int:
        """How many changes ``other`` holds that this vector does not."""
        return sum(max(0, seq - self.seq(stream)) for stream, seq in other.items())

    def compare(self, other: Mapping[Stream, int]) -> Ordering:
        other = other if isinstance(other, VersionVector) else VersionVector(other)
        i_ahead, they_ahead = other.lacks(self) > 0, self.lacks(other) > 0
        if i_ahead and they_ahead:
            return Ordering.CONCURRENT
        if i_ahead:
            return Ordering.AHEAD
        if they_ahead:
            return Ordering.BEHIND
        return Ordering.EQUAL

    def merge(self, other: Mapping[Stream, int]) -> "VersionVector":
        """The least vector holding both (each stream's highest seq)."""
        seqs = dict(self._seqs)
        for stream, seq in other.items():
            seqs[stream] = max(seq, seqs.get(stream, 0))
        return VersionVector(seqs)

    def beyond(self, known: Mapping[Stream, int], *, besides: Stream | None = None) -> dict[Stream, int]:
        """Streams where this vector holds more than ``known`` does (the
        stream ``besides`` left out), with this vector's seq."""
        return {stream: seq for stream, seq in self._seqs.items()
                if stream != besides and seq > known.get(stream, 0)}

    # -- the database -----------------------------------------------------------
    @classmethod
    def read(cls, connection: Connection) -> "VersionVector":
        """This node's vector, from its version_vector table."""
        from ezpyr.replication.models import VersionVectorEntry

        table = VersionVectorEntry.__table__
        return cls({(r.origin, r.epoch): r.seq for r in connection.execute(select(table))})
