"""The channel buffer the service reads a target's output from: the same
bytes in the same order as paramiko's own, whatever the reads' sizes."""
from __future__ import annotations

import random

from paramiko.buffered_pipe import BufferedPipe

from ezpyr.gateway.passage import ChunkPipe


def test_reads_of_any_size_give_what_paramikos_buffer_gives():
    rng = random.Random(7)
    ours, theirs = ChunkPipe(), BufferedPipe()
    for _ in range(500):
        if rng.random() < 0.5:
            data = rng.randbytes(rng.randrange(1, 3000))
            ours.feed(data)
            theirs.feed(data)
        elif len(theirs):  # (a read of an empty buffer waits)
            size = rng.randrange(1, 5000)
            assert ours.read(size) == theirs.read(size)
        assert len(ours) == len(theirs) and ours.read_ready() == theirs.read_ready()
    assert ours.empty() == theirs.empty() and len(ours) == 0
    ours.close()
    assert ours.read(10) == b""


def test_this_paramiko_has_the_hooks_the_chunk_pipe_needs():
    """Sessions use ChunkPipe only where paramiko calls the two hooks; on
    the paramiko installed here they must, or the service runs slower."""
    from ezpyr.gateway.passage import CHUNKS_FIT
    assert CHUNKS_FIT
