"""nicbook.entropy.bits: bit writer, bit reader, vectorised bit packing and varints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nicbook.entropy import BitReader, BitWriter, decode_uvarint, encode_uvarint, pack_bits
from nicbook.errors import BitstreamError

codes = st.lists(
    st.integers(0, 64).flatmap(lambda n: st.tuples(st.integers(0, 2**n - 1), st.just(n))), max_size=60
)


def test_pack_bits_known_bytes():
    assert pack_bits([0b101, 0b1, 0b0000], [3, 1, 4]) == (bytes([0b10110000]), 8)
    assert pack_bits([1], [1], pad_with_ones=True) == (bytes([0xFF]), 1)
    assert pack_bits([], []) == (b"", 0)
    with pytest.raises(ValueError):
        pack_bits([4], [2])


@settings(max_examples=100, deadline=None)
@given(codes=codes, pad_with_ones=st.booleans())
def test_writer_and_reader_round_trip(codes, pad_with_ones):
    values = [v for v, _ in codes]
    lengths = [n for _, n in codes]
    scalar = BitWriter()
    for value, n in codes:
        scalar.write(value, n)
    vector = BitWriter()
    half = len(codes) // 2
    vector.write_codes(np.array(values[:half], dtype=np.uint64), lengths[:half])
    for value, n in codes[half:]:
        vector.write(value, n)
    packed, n_bits = pack_bits(np.array(values, dtype=np.uint64), lengths, pad_with_ones=pad_with_ones)
    assert n_bits == sum(lengths) == scalar.bit_count == vector.bit_count
    assert (
        scalar.to_bytes(pad_with_ones=pad_with_ones) == vector.to_bytes(pad_with_ones=pad_with_ones) == packed
    )
    reader = BitReader(packed, n_bits)
    for value, n in codes:
        assert reader.peek(n) == value
        assert reader.read(n) == value
    assert reader.bits_left == 0


def test_reader_past_end():
    reader = BitReader(bytes([0b10100000]), n_bits=3)
    assert reader.peek(8) == 0b10100000
    assert reader.read(2) == 0b10
    with pytest.raises(BitstreamError):
        reader.read(2)
    with pytest.raises(BitstreamError):
        BitReader(b"").read(1)


@given(st.integers(0, 2**64))
def test_uvarint_round_trip(value):
    data = encode_uvarint(value) + b"tail"
    assert decode_uvarint(data) == (value, len(data) - 4)


def test_uvarint_errors():
    with pytest.raises(BitstreamError):
        decode_uvarint(b"\x80")
    with pytest.raises(BitstreamError):
        decode_uvarint(b"\xff" * 20)
