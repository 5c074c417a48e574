"""Properties of the protocol's pure parts, for every vector hypothesis
makes: comparing version vectors, merging them, their JSON, what a change's
origin did not know (unknown_to_origin), and the signed envelope."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from ezpyr.replication.apply import unknown_to_origin
from ezpyr.replication.messages import (
    SIGNATURE_HEADER, ChangeMessage, Keyring, MessageRefused, Refusal, open_bundle, seal,
)
from ezpyr.replication.vector import Ordering, VersionVector

ORIGINS = ["0b7c1f2e-aaaa-4bbb-8ccc-000000000001", "0b7c1f2e-aaaa-4bbb-8ccc-000000000002",
           "host:with:colons"]
streams = st.tuples(st.sampled_from(ORIGINS), st.integers(1, 4))
vectors = st.dictionaries(streams, st.integers(0, 50), max_size=8).map(VersionVector)

MIRROR = {Ordering.EQUAL: Ordering.EQUAL, Ordering.AHEAD: Ordering.BEHIND,
          Ordering.BEHIND: Ordering.AHEAD, Ordering.CONCURRENT: Ordering.CONCURRENT}


@given(vectors, vectors)
def test_comparing_is_the_mirror_image_from_the_other_side(a, b):
    assert b.compare(a) is MIRROR[a.compare(b)]


@given(vectors, vectors)
def test_the_ordering_says_who_lacks_what(a, b):
    ordering = a.compare(b)
    a_lacks, b_lacks = a.lacks(b), b.lacks(a)
    assert (ordering is Ordering.EQUAL) == (a_lacks == 0 and b_lacks == 0)
    assert (ordering is Ordering.CONCURRENT) == (a_lacks > 0 and b_lacks > 0)
    assert (ordering is Ordering.AHEAD) == (b_lacks > 0 and a_lacks == 0)
    # lacks counts changes: the sum over streams of how far the other is ahead
    assert a_lacks == sum(max(0, b.seq(s) - a.seq(s)) for s in set(a) | set(b))


@given(vectors)
def test_a_vector_equals_itself_and_missing_streams_count_as_zero(a):
    assert a.compare(a) is Ordering.EQUAL
    zeros = VersionVector({**{s: 0 for s in [(o, 9) for o in ORIGINS]}, **a})
    assert zeros.compare(a) is Ordering.EQUAL


@given(vectors, vectors, vectors)
def test_merge_is_the_least_upper_bound(a, b, c):
    m = a.merge(b)
    assert m.lacks(a) == 0 and m.lacks(b) == 0
    assert m.compare(b.merge(a)) is Ordering.EQUAL
    assert a.merge(b).merge(c).compare(a.merge(b.merge(c))) is Ordering.EQUAL
    assert a.merge(a).compare(a) is Ordering.EQUAL
    # no smaller vector holds both: every stream of m is one of a's or b's seqs
    assert all(seq == max(a.seq(s), b.seq(s)) for s, seq in m.items())


@given(vectors)
def test_json_round_trip(a):
    assert VersionVector.from_json(a.to_json()) == a
    assert VersionVector.from_json(a.dumps()) == a
    assert VersionVector.from_json(json.loads(a.dumps())) == a


@given(st.one_of(st.lists(st.integers()), st.dictionaries(st.text(max_size=5), st.text(max_size=3), min_size=1),
                 st.dictionaries(st.sampled_from(["nocolon", ":1", "a:b"]), st.integers(), min_size=1)))
def test_anything_else_is_refused_as_a_vector(data):
    with pytest.raises(ValueError):
        VersionVector.from_json(data)


def message(origin, epoch, seq, context: VersionVector) -> ChangeMessage:
    return ChangeMessage(origin=origin, epoch=epoch, seq=seq, changes=[], context=context.to_json())


@given(vectors, vectors, streams)
def test_unknown_to_origin_is_what_is_held_here_beyond_what_the_origin_knew(here, context, own):
    result = unknown_to_origin(here, message(own[0], own[1], 1, context))
    assert set(result) == {s for s in here if s != own and here.seq(s) > context.seq(s)}
    assert all(result[s] == here.seq(s) for s in result)


@given(vectors, vectors, streams)
def test_a_change_made_knowing_everything_held_here_is_never_a_conflict(here, extra, own):
    assert unknown_to_origin(here, message(own[0], own[1], 1, here.merge(extra))) == {}


@given(vectors, streams, st.integers(1, 50))
def test_the_origins_own_stream_is_never_a_conflict(here, own, ahead):
    here = here.merge({own: ahead})
    assert own not in unknown_to_origin(here, message(own[0], own[1], ahead + 1, VersionVector()))


bundles = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 10**6)), min_size=1, max_size=4)


@settings(max_examples=50)
@given(bundles, st.binary(min_size=1, max_size=3), st.integers(0, 10**6))
def test_any_changed_byte_breaks_the_signature(parts, junk, where):
    sender, recipient = ORIGINS[0], ORIGINS[1]
    texts = [json.dumps({"origin": sender, "epoch": e, "seq": s, "changes": []}) for e, s in parts]
    keyring = Keyring("the secret")
    body, headers = seal(texts, sender, recipient, keyring)
    opened = open_bundle(body, headers, keyring, recipient=recipient, sender=sender)
    assert [(m.epoch, m.seq) for m in opened.messages] == parts and opened.key == "current"
    at = where % len(body)
    tampered = body[:at] + junk + body[at + 1:]
    if tampered != body:
        with pytest.raises(MessageRefused) as refused:
            open_bundle(tampered, headers, keyring, recipient=recipient, sender=sender)
        assert refused.value.reason is Refusal.FORGED
    with pytest.raises(MessageRefused) as refused:
        open_bundle(body, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, Keyring("another"),
                    recipient=recipient, sender=sender)
    assert refused.value.reason is Refusal.FORGED
