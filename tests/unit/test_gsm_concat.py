"""Reassembly of concatenated parts."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from smssync.gsm.concat import Reassembler
from smssync.gsm.encode import encode_deliver
from smssync.gsm.fields import Concat
from smssync.gsm.pdu import decode_deliver
from smssync.gsm.segments import split

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_parts_out_of_order_and_repeats() -> None:
    buf = Reassembler()
    assert buf.add("+1", 7, 3, 3, "c", now=0.0) is None
    assert buf.add("+1", 7, 3, 1, "a", now=1.0) is None
    assert buf.add("+1", 7, 3, 1, "A", now=2.0) is None  # a repeat is ignored
    assert len(buf) == 1
    done = buf.add("+1", 7, 3, 2, "b", now=3.0)
    assert done is not None
    assert (done.text, done.complete, done.missing, done.first_seen) == ("abc", True, (), 0.0)
    assert len(buf) == 0


def test_groups_are_keyed_by_originator_reference_and_total() -> None:
    buf = Reassembler()
    assert buf.add("+1", 7, 2, 1, "a", now=0) is None
    assert buf.add("+2", 7, 2, 2, "x", now=0) is None
    assert buf.add("+1", 8, 2, 2, "y", now=0) is None
    assert buf.add("+1", 7, 3, 2, "z", now=0) is None
    done = buf.add("+1", 7, 2, 2, "b", now=0)
    assert done is not None and done.text == "ab"
    assert len(buf) == 3


def test_out_of_range_sequence_is_ignored() -> None:
    buf = Reassembler()
    assert buf.add("+1", 1, 2, 0, "a", now=0) is None
    assert buf.add("+1", 1, 2, 3, "a", now=0) is None
    assert len(buf) == 0


def test_expired_hands_over_what_arrived() -> None:
    buf = Reassembler()
    buf.add("+1", 1, 4, 3, "c", now=10.0)
    buf.add("+1", 1, 4, 1, "a", now=20.0)
    buf.add("+2", 2, 2, 1, "new", now=50.0)
    assert buf.expired(now=40.0, timeout_s=30.0) == []
    (old,) = buf.expired(now=41.0, timeout_s=30.0)
    assert (old.originator, old.text, old.complete, old.missing) == ("+1", "ac", False, (2, 4))
    assert len(buf) == 1
    assert buf.expired(now=41.0, timeout_s=30.0) == []


def test_surrogate_pair_split_by_a_sender_is_rejoined() -> None:
    # Some senders cut UCS-2 between the two halves of a pair; the parts decode to halves.
    high, low = "\ud83d", "\ude00"
    for_parts = [f"x{high}", f"{low}y"]
    buf = Reassembler()
    patched = []
    for i, piece in enumerate(for_parts, start=1):
        # Our encoder never splits a pair, so put the halves in by hand: an empty text gives
        # "... UDL=06, UDH 05 00 03 05 02 i", and the raw UTF-16 goes after the header.
        base = encode_deliver("+1", "", WHEN, concat=Concat(5, 2, i), coding="ucs2")
        raw = piece.encode("utf-16-be", "surrogatepass")
        patched.append(base[:-14] + f"{6 + len(raw):02X}" + base[-12:] + raw.hex().upper())
    parts = [decode_deliver(p) for p in patched]
    assert parts[0].text == f"x{high}"
    assert buf.add_deliver(parts[1], now=0) is None
    done = buf.add_deliver(parts[0], now=1)
    assert done is not None and done.text == "x😀y"


def test_single_deliver_comes_straight_back() -> None:
    buf = Reassembler()
    done = buf.add_deliver(decode_deliver(encode_deliver("Bank", "hi", WHEN)), now=5)
    assert done is not None
    assert (done.text, done.total, done.complete, done.timestamp) == ("hi", 1, True, WHEN)
    assert len(buf) == 0


@given(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=500),
    st.randoms(),
)
def test_shuffled_delivers_reassemble(text: str, rnd: object) -> None:
    parts = split(text)
    pdus = [
        encode_deliver("+44", p, WHEN, concat=Concat(3, len(parts), i) if len(parts) > 1 else None)
        for i, p in enumerate(parts, start=1)
    ]
    order = list(range(len(pdus)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    buf = Reassembler()
    results = [buf.add_deliver(decode_deliver(pdus[i]), now=float(i)) for i in order]
    assert all(r is None for r in results[:-1])
    last = results[-1]
    assert last is not None and last.complete and last.text == text
